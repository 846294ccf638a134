"""``hectl cluster-config show``."""

from __future__ import annotations

import click

from hectl.commands.options import format_options, pick_format
from hectl.context import AppContext
from hectl.output import Output
from hectl.storage import cluster


@click.command("show")
@format_options
@click.pass_obj
def command(app: AppContext, fmt: str, as_json: bool) -> Output:
    """Print the cluster configuration as stored on the domain (keys not listed have their defaults)."""
    shared = cluster.read(app.backend(connect=False), app.timeout)
    data = shared.to_dict() if shared else {"version": 0, "sections": {}}
    return Output("cluster-config", data, pick_format(fmt, as_json))
