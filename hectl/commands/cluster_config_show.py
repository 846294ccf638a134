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
    """Print the cluster configuration as stored on the domain (keys not listed have their defaults).

    Only a document this host's cluster key signed is shown (exit 4 for one it did
    not sign, exit 3 when this host has no key).
    """
    key = app.cluster_key()
    shared = cluster.read(app.backend(connect=False), app.timeout, key, app.local_config.cluster_key)
    data = dict(shared.to_dict() if shared else {"version": 0, "sections": {}}, key_id=key.id if key else None)
    return Output("cluster-config", data, pick_format(fmt, as_json))
