"""``hectl add-console-password``."""

from __future__ import annotations

import click

from hectl.commands.options import not_available


@click.command("add-console-password")
@click.pass_obj
def command(app: object, **_options: object) -> None:
    """Set a temporary console password on the engine VM (not available yet)."""
    raise not_available("add-console-password", "the VM console")
