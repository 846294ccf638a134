"""``hectl cluster-config install-key``."""

from __future__ import annotations

import click

from hectl.commands.options import format_options, pick_format, read_cluster_key
from hectl.context import AppContext
from hectl.output import Output
from hectl.storage import cluster


@click.command("install-key")
@click.option("--key-file", metavar="FILE", help="Read the key from this root-only file (0600); default: a hidden prompt.")
@click.option("--force", is_flag=True, help="Install it even when it does not verify the domain's cluster configuration.")
@format_options
@click.pass_obj
def command(app: AppContext, key_file: str | None, force: bool, fmt: str, as_json: bool) -> Output:
    """Make a copy of the cluster key this host's own (never from the command line).

    The key (64 hexadecimal digits, from the first host's cluster.key) must
    verify the domain's cluster configuration; it is written 0600 to
    [paths] cluster_key.
    """
    local = app.local_config
    key = read_cluster_key(key_file)
    shared = cluster.install_key(app.backend(connect=False), app.timeout, key, local.cluster_key, app.cluster_cache, force=force)
    data = dict(shared.to_dict() if shared else {"version": 0, "sections": {}}, key_id=key.id)
    return Output("cluster-config", data, pick_format(fmt, as_json), quiet_text=True)
