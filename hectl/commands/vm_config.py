"""``hectl vm-config``: the engine VM's shared specification."""

from __future__ import annotations

import click

from hectl.cli.root import LazyGroup


@click.group(
    "vm-config",
    cls=LazyGroup,
    lazy={"show": "hectl.commands.vm_config_show:command", "set": "hectl.commands.vm_config_set:command"},
)
def group() -> None:
    """The engine VM's specification, stored on the domain for every host (docs/vm.md)."""
