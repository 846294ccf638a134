"""``hectl vm-shutdown``."""

from __future__ import annotations

import sys

import click

from hectl.commands.options import FiniteFloat, format_options, pick_format
from hectl.context import AppContext
from hectl.output import Output, WaitProgress, warn
from hectl.vm import control


@click.command("vm-shutdown")
@click.option("--wait", is_flag=True, help="Wait until the guest has powered itself off (see --timeout).")
@click.option(
    "--timeout",
    type=FiniteFloat(1, 86400),
    default=120.0,
    show_default=True,
    metavar="SECONDS",
    help="With --wait: exit 7 when the guest is still running after this.",
)
@click.option(
    "--force-after",
    type=FiniteFloat(0, 86400),
    metavar="SECONDS",
    help="Power the VM off when the guest has not shut down after SECONDS (implies waiting).",
)
@format_options
@click.pass_obj
def command(app: AppContext, wait: bool, timeout: float, force_after: float | None, fmt: str, as_json: bool) -> Output:
    """Shut the engine VM down gracefully (ACPI power button).

    Without --wait it returns once the guest has been asked. Refuses (exit 6)
    when the VM is not running on this host. Set global maintenance first, or
    the HA agents start the engine again. While waiting, progress goes to
    stderr: one updating line on a terminal, else a line every 5 s (-q: none).
    """
    waiting = WaitProgress(sys.stderr, app.quiet)
    try:
        result = control.shutdown(
            app, wait=timeout if wait else None, force_after=force_after, warn=lambda msg: warn(msg, app.quiet), waiting=waiting
        )
    finally:
        waiting.done()
    return Output("vm-action", result, pick_format(fmt, as_json), quiet_text=True)
