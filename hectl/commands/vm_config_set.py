"""``hectl vm-config set``."""

from __future__ import annotations

import click

from hectl.commands.options import KeyValue, format_options, pick_format
from hectl.context import AppContext
from hectl.errors import signals_interrupt
from hectl.output import Output
from hectl.vm import spec as vmspec


def _pairs(ctx: click.Context, param: click.Parameter, values: tuple[str, ...]) -> dict[str, str]:
    changes: dict[str, str] = {}
    for item in values:
        key, sep, value = item.partition("=")
        if not sep:
            raise click.BadParameter(f"'{item}' is not KEY=VALUE")
        try:
            vmspec.parse_value(key.strip(), value)
        except ValueError as exc:
            raise click.BadParameter(f"{key.strip()}: {exc}") from None
        changes[key.strip()] = value.strip()
    return changes


@click.command("set")
@click.argument(
    "changes", nargs=-1, required=True, type=KeyValue(vmspec.FIELDS, vmspec.CHOICES), callback=_pairs, metavar="KEY=VALUE..."
)
@format_options
@click.pass_obj
def command(app: AppContext, changes: dict[str, str], fmt: str, as_json: bool) -> Output:
    """Change the engine VM's specification on the domain (every host uses it at its next start).

    Keys: uuid, name, memory_mib, vcpus, kernel, initrd, cmdline, disk,
    disk_format, seed, network (user|bridge|none), bridge, mac, host_port,
    guest_port, graphics (vnc|spice|none), graphics_listen. Image paths are
    relative to the domain's images/ directory. The first set creates the
    spec; each set raises its version by one. A running VM keeps its old
    spec until it is restarted. Concurrent sets queue on the domain's update
    lock (exit 5 when it is not obtained within the storage timeout).
    """
    with signals_interrupt():
        spec = vmspec.update(app.backend(), changes, app.timeout)
    return Output("vm-config", {"spec": spec.to_dict(), "problems": []}, pick_format(fmt, as_json), quiet_text=True)
