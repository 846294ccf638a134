"""``hectl vm-poweroff``."""

from __future__ import annotations

import click

from hectl.commands.options import not_available


@click.command("vm-poweroff")
@click.pass_obj
def command(app: object, **_options: object) -> None:
    """Power the engine VM off at once (not available yet)."""
    raise not_available("vm-poweroff", "the VM lifecycle")
