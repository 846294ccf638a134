"""``hectl vm-migrate``."""

from __future__ import annotations

import sys

import click

from hectl.commands.options import FiniteFloat, format_options, pick_format
from hectl.context import AppContext
from hectl.output import Output, WaitProgress
from hectl.parse import MAX_HOST_ID
from hectl.vm import migration

TYPE_CHECKING = False
if TYPE_CHECKING:
    from hectl.vm.hypervisor import MigrationProgress


@click.command("vm-migrate")
@click.option(
    "--to",
    "to",
    type=click.IntRange(1, MAX_HOST_ID),
    metavar="HOST_ID",
    help="The target host [default: the best-scoring host that can take the engine].",
)
@click.option(
    "--wait", is_flag=True, help="Also wait until the target's agent reports the engine up and its health page answers."
)
@click.option(
    "--timeout",
    type=FiniteFloat(5, 3600),
    metavar="SECONDS",
    help="Abort the migration after this (the engine keeps running here); with --wait, bounds the whole wait "
    "[default: [vm] migration_timeout].",
)
@click.option(
    "--bandwidth",
    type=click.IntRange(0, 100000),
    metavar="MIB_S",
    help="Limit the migration stream (0: none) [default: [vm] migration_bandwidth].",
)
@format_options
@click.pass_obj
def command(
    app: AppContext, to: int | None, wait: bool, timeout: float | None, bandwidth: int | None, fmt: str, as_json: bool
) -> Output:
    """Live-migrate the engine VM from this host to another one, its lease moving with it.

    The guest keeps running here while its memory is copied, pauses for the
    switch-over (libvirt reports how long: downtime_ms) and runs on at the
    target; its address stays. Refuses with exit 6 when the engine does not
    run here, 5 when the target cannot take the engine (not live, local
    maintenance, score 0, its sanlock not in the lockspace, or the lease
    refused at the switch-over), 7 when it does not finish within --timeout
    (aborted: the engine keeps running here). While it runs, progress goes to
    stderr: one updating line on a terminal, else a line every 5 s (-q: none).
    """
    waiting = WaitProgress(sys.stderr, app.quiet)
    limit = timeout if timeout is not None else app.config.vm.migration_timeout

    def progress(p: MigrationProgress) -> None:
        left = f", {p.remaining_mib:g} of {p.total_mib:g} MiB left" if p.remaining_mib is not None and p.total_mib else ""
        waiting(f"the migration ({p.phase}{left})", p.elapsed, limit)

    try:
        result = migration.migrate(
            app, to=to, timeout=timeout, bandwidth=bandwidth, wait=wait, progress=progress, waiting=waiting
        )
    finally:
        waiting.done()
    return Output("vm-migrate", result, pick_format(fmt, as_json), quiet_text=True)
