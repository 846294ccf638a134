"""``hectl vm-poweroff``."""

from __future__ import annotations

import click

from hectl.commands.options import format_options, pick_format
from hectl.context import AppContext
from hectl.output import Output, warn
from hectl.vm import control


@click.command("vm-poweroff")
@format_options
@click.pass_obj
def command(app: AppContext, fmt: str, as_json: bool) -> Output:
    """Power the engine VM off at once (like pulling the plug; its lease is released).

    Refuses (exit 6) when the VM is not running on this host.
    """
    result = control.poweroff(app, warn=lambda msg: warn(msg, app.quiet))
    return Output("vm-action", result, pick_format(fmt, as_json), quiet_text=True)
