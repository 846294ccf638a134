"""``hectl vm-start``."""

from __future__ import annotations

import click

from hectl.commands.options import not_available


@click.command("vm-start")
@click.pass_obj
def command(app: object, **_options: object) -> None:
    """Start the engine VM on this host under its lease (not available yet)."""
    raise not_available("vm-start", "the VM lifecycle")
