"""``hectl storage check``."""

from __future__ import annotations

import click

from hectl.commands.options import format_options, pick_format, timeout_option
from hectl.context import AppContext
from hectl.output import Output
from hectl.storage import doctor


@click.command("check")
@format_options
@timeout_option("Hard limit for each storage operation [default: [storage] timeout].")
@click.pass_obj
def command(app: AppContext, fmt: str, as_json: bool, timeout: float | None) -> Output:
    """Check the storage domain and the timing budget of its layers against sanlock's.

    Runs the common checks (deployed, metadata size, O_DIRECT, latency) and
    the backend's own, then weighs the longest I/O stall each storage layer
    can cause against sanlock's limits for [ha] io_timeout (warn at 6x, fail
    at 8x) and prints the failover time to expect. Every finding says how to
    fix it. Exit codes (this command's own, Nagios-like): 0 all good,
    1 warnings, 2 failures, 4 storage unreachable.
    """
    app.storage_timeout = timeout
    report = doctor.run(app.backend(connect=False), lambda: app.store(connect=False).read_all(), app.config.ha, app.timeout)
    return Output("storage-check", report, pick_format(fmt, as_json), exit_code=int(report["code"]))  # type: ignore[call-overload]
