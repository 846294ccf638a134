"""``hectl plugins``."""

from __future__ import annotations

import contextlib

import click

from hectl import localstate
from hectl.commands.options import format_options, pick_format
from hectl.context import AppContext
from hectl.errors import HectlError
from hectl.output import Output


@click.command("plugins")
@format_options
@click.pass_obj
def command(app: AppContext, fmt: str, as_json: bool) -> Output:
    """List loaded plugins, the hooks they implement, and the storage backends they provide."""
    plugins = app.plugins
    data = {
        "plugins": [p._asdict() for p in plugins.infos],
        "backends": [{"name": b.name, "plugin": b.plugin} for b in plugins.backends().values()],
    }
    with contextlib.suppress(HectlError):  # no configuration: nothing to cache, and listing plugins needs none
        localstate.update_completion_cache(app.config.paths.state_dir, backends=list(plugins.backends()))
    return Output("plugins", data, pick_format(fmt, as_json))
