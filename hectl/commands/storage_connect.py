"""``hectl storage connect``."""

from __future__ import annotations

import click

from hectl.commands.options import format_options, pick_format, timeout_option
from hectl.context import AppContext
from hectl.output import Output
from hectl.storage.backend import manual


@click.command("connect")
@format_options
@timeout_option("Hard limit for the operation [default: [storage] timeout].")
@click.pass_obj
def command(app: AppContext, fmt: str, as_json: bool, timeout: float | None) -> Output:
    """Make the storage domain reachable on this host (mount...). Idempotent.

    The agent and every command connect by themselves when they need to:
    this is for manual operations (checking a mount, before maintenance).
    """
    app.storage_timeout = timeout
    result = manual(app.backend(connect=False), "connect", app.timeout)
    return Output("storage-connect", result, pick_format(fmt, as_json))
