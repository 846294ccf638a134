"""``hectl storage``: the shared storage domain as this host reaches it."""

from __future__ import annotations

import click

from hectl.cli.root import LazyGroup


@click.group(
    "storage",
    cls=LazyGroup,
    lazy={
        "check": "hectl.commands.storage_check:command",
        "connect": "hectl.commands.storage_connect:command",
        "disconnect": "hectl.commands.storage_disconnect:command",
    },
)
def group() -> None:
    """Check the storage domain and its timing budget; connect or disconnect it by hand."""
