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
    from collections.abc import Callable
    from typing import Protocol
else:
    Protocol = object


INCOMING = "incoming migration"  # VMInfo.detail of a VM (state "starting") still arriving from another host


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
    switch_over: bool = False  # paused by libvirt for an outgoing migration's switch-over (its lease handed on)


class MigrationRequest(Frozen):
    """A live migration of the engine VM to another host (built by ``hectl.vm.migration``)."""

    dest_uri: str  # the target's libvirtd, which this host's libvirtd connects to (peer to peer)
    migrate_uri: str  # where QEMU sends the migration stream, e.g. tcp://192.0.2.2
    tls: bool = False  # encrypt the migration stream (QEMU's TLS, with the certificates qemu.conf names)
    unsafe: bool = False  # the disks are on shared storage that libvirt cannot recognise as shared (localfs)
    bandwidth_mib: int = 0  # MiB/s (0: no limit)
    timeout: float = 120.0  # abort after this; the VM keeps running here


class MigrationProgress(Frozen):
    phase: str  # copying (memory, the guest runs here) | switching (paused here, the lease moving with it)
    elapsed: float
    remaining_mib: float | None = None
    total_mib: float | None = None


class MigrationResult(Frozen):
    seconds: float  # libvirt's migration job, start to the VM running at the target
    downtime_ms: int | None = None  # how long the guest was paused, as libvirt measured it (None: unknown)
    transferred_mib: float | None = None


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

    def migrate(self, name: str, request: MigrationRequest, progress: Callable[[MigrationProgress], None]) -> MigrationResult:
        """Live-migrate the running VM; on failure or ``request.timeout`` it keeps running here (or stays paused
        here when it lost its lease: ``LockHeld``)."""
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
