"""The VM layer's interface: what hectl asks of a hypervisor, and how the accelerator is chosen.

Only ``hectl.vm.libvirt`` imports libvirt; everything else talks to a
``Hypervisor``. Unit tests use a fake, the HA simulator its own VM runtime.
This interface knows none of its implementations: ``hectl.vm.connect``
picks the libvirt one for the callers that need a real hypervisor.
"""

from __future__ import annotations

import os

from hectl.frozen import Frozen

TYPE_CHECKING = False  # typing.TYPE_CHECKING would import typing (see hectl.frozen)
if TYPE_CHECKING:
    from typing import Protocol
else:
    Protocol = object


class Graphics(Frozen):
    type: str  # vnc | spice
    listen: str
    port: int

    @property
    def address(self) -> str:
        host = f"[{self.listen}]" if ":" in self.listen else self.listen
        return f"{self.type}://{host}:{self.port}"


class VMInfo(Frozen):
    """The engine VM on this host, as the hypervisor reports it."""

    state: str  # up | paused | starting | down (the HA state machine's words)
    detail: str = ""  # the hypervisor's own state and reason, e.g. "running (booted)", "shut off (crashed)"
    accel: str = ""  # kvm | tcg (while it runs)
    spec_version: int = -1  # the spec version the running VM was built from (-1: not hectl's or not running)
    pid: int = 0
    graphics: Graphics | None = None
    cpu_seconds: float = 0.0  # CPU time used by the VM since it started


class Hypervisor(Protocol):
    """One host's hypervisor. Methods raise ``HectlError`` subclasses, never the hypervisor's own errors."""

    uri: str

    def info(self, name: str) -> VMInfo:
        """The VM's state (``down`` when there is no such VM)."""
        ...

    def start(self, xml: str, *, paused: bool, timeout: float) -> None:
        """Create and start the VM; on ``timeout`` (e.g. blocked acquiring its lease) abort it, leaving nothing behind."""
        ...

    def resume(self, name: str) -> None:
        """Let a paused VM run again."""
        ...

    def shutdown(self, name: str) -> None:
        """Ask the guest to power off (ACPI power button); returns at once."""
        ...

    def poweroff(self, name: str) -> None:
        """Stop the VM immediately."""
        ...

    def set_console_password(self, name: str, password: str, valid_to: str) -> Graphics:
        """Set the graphical console's password, valid until ``valid_to`` (UTC ``YYYY-MM-DDTHH:MM:SS``)."""
        ...

    def close(self) -> None: ...


def choose_accel(setting: str, dev_kvm: str = "/dev/kvm", cpuinfo: str = "/proc/cpuinfo") -> tuple[str, str]:
    """``(kvm|tcg, why)`` for ``[vm] accelerator``; ``auto`` takes KVM only where the CPU has vmx or svm.

    A /dev/kvm alone is not enough: paravirtual KVM variants (e.g. kvm_pvm in
    nested sandboxes) expose it without hardware virtualisation and cannot boot
    a stock guest kernel.
    """
    if setting in ("kvm", "tcg"):
        return setting, "set in [vm] accelerator"
    if not os.access(dev_kvm, os.R_OK | os.W_OK):
        return "tcg", f"{dev_kvm} is not usable"
    try:
        with open(cpuinfo, encoding="ascii", errors="replace") as f:
            flags = next((line.split(":", 1)[1].split() for line in f if line.startswith("flags")), [])
    except OSError:
        flags = []
    if "vmx" in flags or "svm" in flags:
        return "kvm", "the CPU has hardware virtualisation"
    return "tcg", f"{dev_kvm} exists but the CPU shows no vmx/svm (paravirtual KVM cannot boot a stock guest)"
