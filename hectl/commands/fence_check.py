"""``hectl fence check``."""

from __future__ import annotations

import click

from hectl.commands.options import format_options, host_id_option, pick_format
from hectl.context import AppContext
from hectl.fencing import actions
from hectl.output import Output


@click.command("check")
@host_id_option("Check this host's device only [default: every device].")
@format_options
@click.pass_obj
def command(app: AppContext, host_ids: int | None, fmt: str, as_json: bool) -> Output:
    """Ask each fence device whether it answers (monitor) and what power it sees (status).

    Changes nothing. Exit 0 when every device checked works, 1 when one does
    not (the report says why), 3 when the host has no device configured.
    """
    report, code = actions.check(app, host_ids)
    return Output("fence-check", report, pick_format(fmt, as_json), exit_code=code)
