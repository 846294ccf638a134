"""``hectl set-maintenance``."""

from __future__ import annotations

import click

from hectl import maintenance, notify, parse
from hectl.commands.options import format_options, pick_format, timeout_option
from hectl.context import AppContext
from hectl.errors import signals_interrupt
from hectl.output import Output


def _ttl(ctx: click.Context, param: click.Parameter, value: str | None) -> float | None:
    if value is None:
        return None
    try:
        return parse.duration(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


def _reason(ctx: click.Context, param: click.Parameter, value: str) -> str:
    try:
        return maintenance.check_reason(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


@click.command("set-maintenance")
@click.option(
    "--mode",
    required=True,
    type=click.Choice(maintenance.MODES),
    help="global: whole cluster; local: this host; none: clear both.",
)
@click.option("--reason", default="", callback=_reason, help="Why (shown in vm-status and the audit log).")
@click.option("--ttl", callback=_ttl, metavar="DURATION", help="Expire by itself after e.g. 90s, 30m, 2h, 1d.")
@format_options
@timeout_option("Hard limit for each storage operation [default: [storage] timeout].")
@click.pass_obj
def command(app: AppContext, mode: str, reason: str, ttl: float | None, fmt: str, as_json: bool, timeout: float | None) -> Output:
    """Set global or local maintenance, or clear it (--mode none).

    Global maintenance is stored on shared storage and seen by every host;
    local maintenance is this host's and its agent publishes it. Each change is
    appended to the audit log.

    Concurrent changes queue on the domain's update lock (exit 5 when it is not
    obtained within the timeout; nothing changed). A write that times out or is
    interrupted (SIGINT 130, SIGTERM 143, SIGHUP 129) may still land: the
    outcome is reported as unknown and logged so.
    """
    if ttl is not None and mode == "none":
        raise click.BadParameter("--ttl makes no sense with --mode none", param_hint="--ttl")
    app.storage_timeout = timeout
    cfg = app.config
    plugins = app.plugins
    notifier = notify.register(plugins, cfg)
    with signals_interrupt():  # SIGTERM/SIGHUP mid-write: say "outcome unknown" and log it, like SIGINT
        result = maintenance.set_maintenance(
            mode,
            reason=reason,
            ttl=ttl,
            store=app.store,
            state_dir=cfg.paths.state_dir,
            audit_log=cfg.audit_log,
            host_id=cfg.host.id,
            hostname=cfg.host.hostname,
            clock=app.clock,
            notify=plugins.notify_maintenance_change,
        )
    if any(c["scope"] == "local" for c in result["changes"]):  # type: ignore[attr-defined]
        handed = app.backend(connect=False).on_local_maintenance(mode == "local", app.timeout)
        if handed:
            result["storage_action"] = handed
    if notifier is not None:
        notifier.wait(cfg.notify.timeout)
    return Output("set-maintenance", result, pick_format(fmt, as_json), quiet_text=True)
