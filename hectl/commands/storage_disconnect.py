"""``hectl storage disconnect``."""

from __future__ import annotations

import click

from hectl.commands.options import format_options, pick_format, timeout_option
from hectl.context import AppContext
from hectl.output import Output
from hectl.storage.backend import manual


@click.command("disconnect")
@format_options
@timeout_option("Hard limit for the operation [default: [storage] timeout].")
@click.pass_obj
def command(app: AppContext, fmt: str, as_json: bool, timeout: float | None) -> Output:
    """Undo what connect did (unmount...). Idempotent.

    Stop the agent first (systemctl stop hectl-agent): it holds its sanlock
    lease on the domain.
    """
    app.storage_timeout = timeout
    result = manual(app.backend(connect=False), "disconnect", app.timeout)
    return Output("storage-connect", result, pick_format(fmt, as_json))
