"""``hectl fence``: the hosts' fence devices ([fencing] in the cluster configuration)."""

from __future__ import annotations

import click

from hectl.cli.root import LazyGroup


@click.group(
    "fence",
    cls=LazyGroup,
    lazy={"check": "hectl.commands.fence_check:command", "off": "hectl.commands.fence_off:command"},
)
def group() -> None:
    """Check the hosts' fence devices, or power a host off through its device."""
