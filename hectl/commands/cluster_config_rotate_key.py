"""``hectl cluster-config rotate-key``."""

from __future__ import annotations

import click

from hectl.commands.options import format_options, pick_format
from hectl.context import AppContext
from hectl.errors import UsageError, signals_interrupt
from hectl.output import Output
from hectl.storage import cluster


@click.command("rotate-key")
@click.option("--yes", is_flag=True, help="Really rotate it (required: every other host then needs the new key).")
@format_options
@click.pass_obj
def command(app: AppContext, yes: bool, fmt: str, as_json: bool) -> Output:
    """Sign the cluster configuration with a new cluster key, made here.

    The document must verify with this host's current key. Until the new key
    is installed on another host ('hectl cluster-config install-key' there),
    that host refuses the new document and runs on its last good copy (its
    vm-status says so): copy the key to every host right away.
    """
    if not yes:
        raise UsageError("every other host needs the new key once it is rotated: add --yes to do it")
    local = app.local_config
    with signals_interrupt():
        shared, key = cluster.rotate_key(app.backend(), app.timeout, local.cluster_key, app.cluster_cache)
    data = dict(shared.to_dict(), key_id=key.id)
    return Output("cluster-config", data, pick_format(fmt, as_json), quiet_text=True)
