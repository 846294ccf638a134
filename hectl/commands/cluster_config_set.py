"""``hectl cluster-config set``."""

from __future__ import annotations

import click

from hectl import config as config_mod
from hectl.commands.options import KeyValue, format_options, pick_format
from hectl.context import AppContext
from hectl.errors import signals_interrupt
from hectl.output import Output
from hectl.storage import cluster


def _pairs(ctx: click.Context, param: click.Parameter, values: tuple[str, ...]) -> dict[str, dict[str, str]]:
    changes: dict[str, dict[str, str]] = {}
    for item in values:
        name, sep, value = item.partition("=")
        section, dot, key = name.strip().partition(".")
        if not sep or not dot:
            raise click.BadParameter(f"'{item}' is not SECTION.KEY=VALUE")
        if not config_mod.is_shared(section, key):
            raise click.BadParameter(f"{name.strip()} is not a shared key (shared: {config_mod.shared_keys_text()})")
        if value.strip():
            try:
                config_mod.parse_value(section, key, value.strip())
            except ValueError as exc:
                raise click.BadParameter(f"{name.strip()}: {exc}") from None
        changes.setdefault(section, {})[key] = value.strip()
    return changes


@click.command("set")
@click.argument(
    "changes",
    nargs=-1,
    required=True,
    type=KeyValue(config_mod.shared_keys(), {}),
    callback=_pairs,
    metavar="SECTION.KEY=VALUE...",
)
@click.option("--replace", is_flag=True, help="Replace the whole cluster configuration (keys not given return to defaults).")
@format_options
@click.pass_obj
def command(app: AppContext, changes: dict[str, dict[str, str]], replace: bool, fmt: str, as_json: bool) -> Output:
    """Change keys every host shares; every agent applies the new version within one cycle.

    An empty value (KEY=) removes the key, so that its default applies.
    Concurrent sets queue on the domain's update lock (exit 5 when it is not
    obtained within the storage timeout).
    """
    config_mod.load(app.config_path, app.environ, shared={})  # refuses a local file that sets a shared key
    with signals_interrupt():
        shared = cluster.update(app.backend(), changes, app.timeout, replace=replace)
    return Output("cluster-config", shared.to_dict(), pick_format(fmt, as_json), quiet_text=True)
