"""``hectl cluster-config set``."""

from __future__ import annotations

import click

from hectl import config as config_mod
from hectl.commands.options import KeyValue, format_options, pick_format
from hectl.context import AppContext
from hectl.errors import signals_interrupt
from hectl.output import Output, note
from hectl.storage import cluster, clusterkey, sealed


def _pairs(ctx: click.Context, param: click.Parameter, values: tuple[str, ...]) -> dict[str, dict[str, str]]:
    changes: dict[str, dict[str, str]] = {}
    for item in values:
        name, sep, value = item.partition("=")
        section, dot, key = name.strip().partition(".")
        if not sep or not dot:
            raise click.BadParameter(f"'{item}' is not SECTION.KEY=VALUE")
        if not config_mod.is_shared(section, key):
            raise click.BadParameter(f"{name.strip()} is not a shared key (shared: {config_mod.shared_keys_text()})")
        if value.strip():
            try:
                config_mod.parse_value(section, key, value.strip())
            except ValueError as exc:
                raise click.BadParameter(f"{name.strip()}: {exc}") from None
        changes.setdefault(section, {})[key] = value.strip()
    return changes


@click.command("set")
@click.argument(
    "changes",
    nargs=-1,
    required=True,
    type=KeyValue(config_mod.shared_keys(), {}),
    callback=_pairs,
    metavar="SECTION.KEY=VALUE...",
)
@click.option("--replace", is_flag=True, help="Replace the whole cluster configuration (keys not given return to defaults).")
@format_options
@click.pass_obj
def command(app: AppContext, changes: dict[str, dict[str, str]], replace: bool, fmt: str, as_json: bool) -> Output:
    """Change keys every host shares; every agent applies the new version within one cycle.

    An empty value (KEY=) removes the key, so that its default applies. The
    whole result is checked first: keys that conflict are exit 2, nothing
    written. The document is signed with this host's cluster key (made here
    when the domain has no cluster configuration yet). Concurrent sets queue
    on the domain's update lock (exit 5 when it is not obtained within the
    storage timeout). --replace also repairs a torn or forged document.
    """
    local = config_mod.load(app.config_path, app.environ, shared={})  # refuses a local file that sets a shared key
    key = app.cluster_key()
    if key is None:
        _, data = cluster.read_bytes(app.backend(), app.timeout)
        if sealed.written(data) and not replace:  # --replace trusts nothing of the old document
            raise cluster.NoKey(local.cluster_key)
        key = clusterkey.generate()
        clusterkey.save(local.cluster_key, key)
        note(
            f"created the cluster key {local.cluster_key} (id {key.id}): every other host needs it "
            "('hectl cluster-config install-key' there, docs/configuration.md)",
            app.quiet,
        )
    kept = cluster.load_copy(app.cluster_cache)

    def validate(sections: dict[str, dict[str, str]]) -> object:
        return config_mod.load(app.config_path, app.environ, shared=sections, shared_source="the new cluster configuration")

    with signals_interrupt():
        shared = cluster.update(
            app.backend(), changes, app.timeout, key, replace=replace, validate=validate, floor=kept.version if kept else 0
        )
    cluster.save_copy(app.cluster_cache, shared)
    return Output("cluster-config", dict(shared.to_dict(), key_id=key.id), pick_format(fmt, as_json), quiet_text=True)
