"""``hectl console``."""

from __future__ import annotations

import os
import shutil

import click

from hectl.context import AppContext
from hectl.errors import OperationFailed
from hectl.output import Output
from hectl.vm import control


@click.command("console")
@click.option("--log", "show_log", is_flag=True, help="Print the serial console's log instead of attaching.")
@click.pass_obj
def command(app: AppContext, show_log: bool) -> Output | None:
    """Attach to the engine VM's serial console (leave with Ctrl+]).

    --log prints what the console has written (kept in [vm] console_log, also
    after the VM stopped).
    """
    cfg = app.config
    if show_log:
        try:
            with open(cfg.console_log, encoding="utf-8", errors="replace") as f:
                return Output("text", {"text": f.read()})
        except OSError as exc:
            raise OperationFailed(f"cannot read the console log {cfg.console_log}: {exc.strerror}") from None
    spec, hyper = control.engine_here(app)
    virsh = shutil.which("virsh")
    if virsh is None:
        raise OperationFailed("virsh is not installed", hint="install Debian's libvirt-clients")
    os.execv(virsh, [virsh, "-c", hyper.uri, "console", spec.name])
    return None  # not reached
