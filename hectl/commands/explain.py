"""``hectl explain``."""

from __future__ import annotations

import click

from hectl.commands.options import format_options, pick_format, timeout_option
from hectl.context import AppContext
from hectl.explain import explain
from hectl.output import Output


@click.command("explain")
@format_options
@timeout_option("Hard limit for each storage operation [default: [storage] timeout].")
@click.pass_obj
def command(app: AppContext, fmt: str, as_json: bool, timeout: float | None) -> Output:
    """Why this host does what it does: state, score term by term, timers, and each host's liveness
    by its record next to sanlock's view of its lease."""
    app.storage_timeout = timeout
    return Output("explain", explain(app), pick_format(fmt, as_json))
