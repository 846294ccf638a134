"""``hectl ha run``."""

from __future__ import annotations

import click

from hectl.commands.options import not_available


@click.command("run")
@click.pass_obj
def command(app: object, **_options: object) -> None:
    """Run the HA agent in the foreground (not available yet)."""
    raise not_available("ha run", "the HA agent")
