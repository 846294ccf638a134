"""``hectl vm-shutdown``."""

from __future__ import annotations

import click

from hectl.commands.options import not_available


@click.command("vm-shutdown")
@click.pass_obj
def command(app: object, **_options: object) -> None:
    """Shut the engine VM down gracefully (not available yet)."""
    raise not_available("vm-shutdown", "the VM lifecycle")
