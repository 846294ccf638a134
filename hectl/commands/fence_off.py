"""``hectl fence off``."""

from __future__ import annotations

import click

from hectl.commands.options import format_options, host_id_option, pick_format
from hectl.context import AppContext
from hectl.errors import UsageError, signals_interrupt
from hectl.fencing import actions
from hectl.output import Output, note


@click.command("off")
@host_id_option("The host to power off (required).")
@click.option("--yes", is_flag=True, help="Really power it off (required: there is no prompt).")
@format_options
@click.pass_obj
def command(app: AppContext, host_ids: int | None, yes: bool, fmt: str, as_json: bool) -> Output:
    """Power a host off through its fence device and confirm that it is off.

    Whatever runs on that host dies at once, the engine VM included. Once the
    device reports the host off, its sanlock host id is freed, so that another
    host can take the engine lease now rather than after sanlock's
    host_dead_seconds. Audited. Exit 0 when confirmed off, 1 when the device
    failed or still reports the host on, 7 when it did not answer in
    [fencing] timeout, 2 without --yes or for this host itself, 3 when the host
    has no device. Interrupted (SIGINT, SIGTERM, SIGHUP), it waits for the
    device's action under way to end, records what it did and exits 130/143/129
    (a second interruption kills it: the audit log says the outcome is unknown).
    """
    if host_ids is None:
        raise UsageError("name the host to power off: --host-id N")
    if not yes:
        raise UsageError(f"powering host {host_ids} off kills everything on it: add --yes to do it")
    with signals_interrupt():
        result = actions.power_off(app, host_ids, say=lambda message: note(message, False))
    return Output("fence-off", result, pick_format(fmt, as_json))
