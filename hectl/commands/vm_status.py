"""``hectl vm-status``."""

from __future__ import annotations

import click

from hectl.commands.options import format_options, host_id_option, pick_format, timeout_option
from hectl.context import AppContext
from hectl.output import Output
from hectl.status import vm_status


@click.command("vm-status")
@format_options
@click.option("--check", is_flag=True, help="One Nagios-style line; exit 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN.")
@host_id_option("Show only this host (repeatable).", multiple=True)
@timeout_option("Hard limit for each storage operation [default: [storage] timeout].")
@click.pass_obj
def command(app: AppContext, fmt: str, as_json: bool, check: bool, host_ids: tuple[int, ...], timeout: float | None) -> Output:
    """Show every host's record: state, score, engine status, maintenance, data age.

    Never hangs: storage that does not answer within the timeout gives exit 4
    (with --check: CRITICAL). Global maintenance is shown as a banner.
    """
    app.storage_timeout = timeout
    return vm_status(app, fmt=pick_format(fmt, as_json), check=check, host_filter=frozenset(host_ids))
