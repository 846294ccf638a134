"""``hectl check-liveliness``."""

from __future__ import annotations

import click

from hectl.commands.options import not_available


@click.command("check-liveliness")
@click.pass_obj
def command(app: object, **_options: object) -> None:
    """Check the engine's health page (not available yet)."""
    raise not_available("check-liveliness", "the engine health probe")
