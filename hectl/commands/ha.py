"""``hectl ha``: the HA agent's commands."""

from __future__ import annotations

import click

from hectl.cli.root import LazyGroup


@click.group("ha", cls=LazyGroup, lazy={"run": "hectl.commands.ha_run:command", "simulate": "hectl.commands.ha_simulate:command"})
def group() -> None:
    """The HA agent that runs on every host."""
