"""``hectl deploy``."""

from __future__ import annotations

import click

from hectl.cli import completion
from hectl.commands.options import HostId, not_available


@click.command("deploy")
@click.option(
    "--storage-type", metavar="TYPE", shell_complete=completion.complete_backends, help="Storage backend of the new domain."
)
@click.option("--host-id", type=HostId(), metavar="ID", help="This host's id (1..2000).")
@click.pass_obj
def command(app: object, **_options: object) -> None:
    """Create the storage domain, the engine VM and this host's configuration (not available yet)."""
    raise not_available("deploy", "deployment")
