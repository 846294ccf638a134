"""``hectl vm-start``."""

from __future__ import annotations

import sys

import click

from hectl.commands.options import FiniteFloat, format_options, pick_format
from hectl.context import AppContext
from hectl.output import Output, WaitProgress, note
from hectl.vm import control


@click.command("vm-start")
@click.option("--paused", is_flag=True, help="Start with the CPUs stopped (the lease is taken when it resumes).")
@click.option(
    "--wait",
    type=FiniteFloat(0, 86400),
    is_flag=False,
    flag_value=300.0,
    default=None,
    metavar="[SECONDS]",
    help="Wait until the VM runs (at most SECONDS, default 300).",
)
@click.option("--healthy", is_flag=True, help="With --wait: also wait until check-liveliness is green.")
@click.option(
    "--timeout",
    type=FiniteFloat(1, 3600),
    metavar="SECONDS",
    help="Give up the start after this, waiting for the engine lease included [default: [vm] start_timeout].",
)
@format_options
@click.pass_obj
def command(
    app: AppContext, paused: bool, wait: float | None, healthy: bool, timeout: float | None, fmt: str, as_json: bool
) -> Output:
    """Start the engine VM on this host under its sanlock lease.

    Refuses (exit 5) when the engine runs on another host, per its record or
    per the lease. When the previous holder's host has just died, the start
    waits for sanlock to free its lease (up to 8 x io_timeout + 60 s), says so,
    and gives up after --timeout without leaving a half-started VM behind.
    Idempotent: exit 0 when the VM already runs here; a VM paused here is
    resumed. While waiting, progress goes to stderr: one updating line on a
    terminal, else a line every 5 s (-q: none).
    """
    if healthy and wait is None:
        raise click.BadParameter("--healthy needs --wait", param_hint="--healthy")
    waiting = WaitProgress(sys.stderr, app.quiet)
    try:
        result = control.start(
            app,
            paused=paused,
            timeout=timeout,
            wait=wait,
            healthy=healthy,
            progress=lambda msg: note(msg, app.quiet),
            waiting=waiting,
        )
    finally:
        waiting.done()
    return Output("vm-action", result, pick_format(fmt, as_json), quiet_text=True)
