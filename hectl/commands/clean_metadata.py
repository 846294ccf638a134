"""``hectl clean-metadata``."""

from __future__ import annotations

import click

from hectl import repair
from hectl.commands.options import HostId, format_options, pick_format
from hectl.context import AppContext
from hectl.output import Output


@click.command("clean-metadata")
@click.option("--host-id", "host_id", type=HostId(), required=True, metavar="ID", help="The host whose slot to empty.")
@click.option("--yes", is_flag=True, help="Do it (without: only show what would change).")
@format_options
@click.pass_obj
def command(app: AppContext, host_id: int, yes: bool, fmt: str, as_json: bool) -> Output:
    """Empty one host's metadata slot (a host that left for good, or a corrupt slot).

    Refused outside global maintenance and while that host is live. Written
    to the audit log.
    """
    return Output("repair", repair.clean_metadata(app, host_id, yes), pick_format(fmt, as_json))
