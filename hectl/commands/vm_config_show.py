"""``hectl vm-config show``."""

from __future__ import annotations

import click

from hectl.commands.options import format_options, pick_format
from hectl.context import AppContext
from hectl.output import Output
from hectl.vm import spec as vmspec


@click.command("show")
@format_options
@click.pass_obj
def command(app: AppContext, fmt: str, as_json: bool) -> Output:
    """Print the engine VM's specification as stored on the domain."""
    spec = vmspec.read(app.backend(), app.timeout)
    return Output("vm-config", {"spec": spec.to_dict(), "problems": vmspec.check(spec)}, pick_format(fmt, as_json))
