"""``hectl cluster-config``: the keys every host shares, kept on the domain."""

from __future__ import annotations

import click

from hectl.cli.root import LazyGroup


@click.group(
    "cluster-config",
    cls=LazyGroup,
    lazy={
        "show": "hectl.commands.cluster_config_show:command",
        "set": "hectl.commands.cluster_config_set:command",
        "rotate-key": "hectl.commands.cluster_config_rotate_key:command",
        "install-key": "hectl.commands.cluster_config_install_key:command",
    },
)
def group() -> None:
    """The configuration every host shares ([score], [ha], [timeouts], [notify], [engine], [fencing]), signed, on the domain."""
