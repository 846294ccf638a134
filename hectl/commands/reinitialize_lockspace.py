"""``hectl reinitialize-lockspace``."""

from __future__ import annotations

import click

from hectl import repair
from hectl.commands.options import format_options, pick_format
from hectl.context import AppContext
from hectl.output import Output


@click.command("reinitialize-lockspace")
@click.option("--yes", is_flag=True, help="Do it (without: only show what would change).")
@format_options
@click.pass_obj
def command(app: AppContext, yes: bool, fmt: str, as_json: bool) -> Output:
    """Rewrite the sanlock lockspace and the engine lease on the domain (a repair).

    Refused outside global maintenance, and while any agent is live (per the
    records or per sanlock): sanlock would fence hosts whose lease vanished.
    Written to the audit log.
    """
    return Output("repair", repair.reinitialize_lockspace(app, yes), pick_format(fmt, as_json))
