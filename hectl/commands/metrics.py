"""``hectl metrics``."""

from __future__ import annotations

import click

from hectl import metrics
from hectl.commands.options import timeout_option
from hectl.context import AppContext
from hectl.errors import StorageError
from hectl.output import Output
from hectl.status import build


@click.command("metrics")
@timeout_option("Hard limit for each storage operation [default: [storage] timeout].")
@click.pass_obj
def command(app: AppContext, timeout: float | None) -> Output:
    """Print the cluster status as OpenMetrics text (for node_exporter's textfile collector).

    Unreachable storage still gives valid output, with hectl_up 0 (and exit 4).
    """
    app.storage_timeout = timeout
    try:
        report = build(app, frozenset())
    except StorageError as exc:
        return Output("text", {"text": metrics.render(None)}, exit_code=int(exc.exit_code))
    return Output("text", {"text": metrics.render(report)})
