"""``Hypervisor`` on libvirt: the only module that imports libvirt.

libvirt's errors become hectl errors here, and libvirt's default error
printer is silenced so nothing reaches stderr behind the caller's back.
Domains are transient (``createXML``): a failed or aborted start leaves no
definition behind, and the XML always comes from the shared spec.
"""

from __future__ import annotations

import contextlib
import threading
import time
import xml.etree.ElementTree as ET

from hectl.errors import HectlError, HypervisorError, LockHeld, OperationFailed, VMStateError, WaitTimeout
from hectl.vm.hypervisor import INCOMING, Graphics, MigrationProgress, MigrationResult, VMInfo
from hectl.vm.xml import HECTL_NS, graphics_xml

TYPE_CHECKING = False  # typing.TYPE_CHECKING would import typing (see hectl.frozen)
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

    from hectl.vm.hypervisor import MigrationRequest


def _libvirt():  # type: ignore[no-untyped-def]
    try:
        import libvirt
    except ImportError:
        raise HypervisorError(
            "the libvirt Python binding is not installed", hint="install Debian's python3-libvirt (scripts/install.sh)"
        ) from None
    libvirt.registerErrorHandler(lambda _ctx, _err: None, None)
    return libvirt


_STATES = {  # libvirt state -> (HA state, libvirt's word)
    0: ("unknown", "no state"),
    1: ("up", "running"),
    2: ("up", "blocked"),
    3: ("paused", "paused"),
    4: ("up", "shutting down"),
    5: ("down", "shut off"),
    6: ("down", "crashed"),
    7: ("paused", "suspended"),
}
_PAUSED_STARTING = 11  # VIR_DOMAIN_PAUSED_STARTING_UP
_PAUSED_MIGRATION = 2  # VIR_DOMAIN_PAUSED_MIGRATION: an incoming migration, or the switch-over of an outgoing one
MIGRATION_POLL = 0.5  # seconds between progress reports of a migration
_SHUTOFF_REASONS = {1: "shutdown", 2: "destroyed", 3: "crashed", 4: "migrated", 5: "saved", 6: "failed", 7: "from snapshot"}


def _error(exc: BaseException, what: str) -> HectlError:
    """A libvirt error as the hectl error a user can act on."""
    libvirt = _libvirt()
    code = exc.get_error_code() if isinstance(exc, libvirt.libvirtError) else None
    message = (exc.get_error_message() if isinstance(exc, libvirt.libvirtError) else None) or str(exc)
    if code == libvirt.VIR_ERR_RESOURCE_BUSY or "Failed to acquire lock" in message:
        return LockHeld(f"{what}: {message}", hint="the engine lease is held: the engine runs on another host")
    if 'Failed to get "write" lock' in message:  # QEMU's image lock: another QEMU has the engine's disk open
        return LockHeld(
            f"{what}: the engine's disk is in use by another process: {message}",
            hint="another host is starting or running the engine, or its VM here is still being torn down",
        )
    if code == libvirt.VIR_ERR_NO_DOMAIN:
        return VMStateError(f"{what}: the engine VM is not running on this host")
    if code == libvirt.VIR_ERR_OPERATION_INVALID:
        return VMStateError(f"{what}: {message}")
    if code in (libvirt.VIR_ERR_NO_CONNECT, libvirt.VIR_ERR_SYSTEM_ERROR, libvirt.VIR_ERR_RPC):
        return HypervisorError(f"{what}: {message}", hint="is libvirtd running? see [vm] uri")
    return HypervisorError(f"{what}: {message}")


def _where(state: str) -> str:
    return "the engine VM keeps running here" if state == "up" else f"the engine VM is {state} here"


def _incoming(dom: Any) -> bool:
    """The domain is the target side of a migration still under way."""
    libvirt = _libvirt()
    try:
        return bool(dom.jobStats().get("operation") == libvirt.VIR_DOMAIN_JOB_OPERATION_MIGRATION_IN)
    except libvirt.libvirtError:
        return False


def _migration_error(exc: Any, after: str) -> HectlError:
    """A failed migration (``exc``: a libvirtError) as the hectl error a user can act on; ``after``: the VM's
    state here now."""
    libvirt = _libvirt()
    message = exc.get_error_message() or str(exc)
    where = _where(after)
    if "Failed to acquire lock" in message or exc.get_error_code() == libvirt.VIR_ERR_RESOURCE_BUSY:
        return LockHeld(
            f"the target could not take the engine lease ({message}); {where}",
            hint="the target's sanlock must hold its host id in the lockspace: its agent running, live in vm-status",
        )
    if exc.get_error_domain() == libvirt.VIR_FROM_RPC:
        return OperationFailed(
            f"this host's libvirtd cannot reach the target's ({message}); {where}",
            hint="the target's libvirtd must listen (libvirtd --listen, listen_tls or listen_tcp); see [vm] migration_transport",
        )
    return HypervisorError(f"the migration failed: {message}; {where}")


class LibvirtHypervisor:
    """The engine VM through one libvirt connection."""

    def __init__(self, uri: str) -> None:
        libvirt = _libvirt()
        self.uri = uri
        self.pid = 0  # the engine's QEMU as last found
        try:
            self.conn = libvirt.open(uri)
        except libvirt.libvirtError as exc:
            raise HypervisorError(
                f"cannot connect to libvirt at {uri}: {exc.get_error_message()}", hint="is libvirtd running? see [vm] uri"
            ) from None

    def _lookup(self, name: str):  # type: ignore[no-untyped-def]
        libvirt = _libvirt()
        try:
            return self.conn.lookupByName(name)
        except libvirt.libvirtError as exc:
            if exc.get_error_code() == libvirt.VIR_ERR_NO_DOMAIN:
                return None
            raise _error(exc, f"cannot look up VM {name}") from None

    def info(self, name: str) -> VMInfo:
        libvirt = _libvirt()
        dom = self._lookup(name)
        if dom is None:
            return VMInfo("down", "not running")
        try:
            state, reason = dom.state()
            if state in (5, 6):
                return VMInfo("down", f"{_STATES[state][1]} ({_SHUTOFF_REASONS.get(reason, 'unknown reason')})")
            xml = ET.fromstring(dom.XMLDesc(0))
            cpu_ns = dom.info()[4]
        except libvirt.libvirtError as exc:
            if exc.get_error_code() == libvirt.VIR_ERR_NO_DOMAIN:
                return VMInfo("down", "not running")
            raise _error(exc, f"cannot read the state of VM {name}") from None
        ha_state, word = _STATES.get(state, ("unknown", str(state)))
        switch_over = False
        if state == 3 and reason == _PAUSED_STARTING:
            ha_state, word = "starting", "starting up"
        elif state == 3 and reason == _PAUSED_MIGRATION:
            switch_over = not _incoming(dom)
            ha_state, word = ("paused", "paused for the migration switch-over") if switch_over else ("starting", INCOMING)
        meta = xml.find(f"metadata/{{{HECTL_NS}}}engine")
        gfx = xml.find("devices/graphics")
        graphics = None
        if gfx is not None and gfx.get("port", "-1").isdigit():
            graphics = Graphics(gfx.get("type", "vnc"), gfx.get("listen", "127.0.0.1"), int(gfx.get("port", "0")))
        return VMInfo(
            state=ha_state,
            detail=word,
            accel="kvm" if xml.get("type") == "kvm" else "tcg",
            spec_version=int(meta.get("version", "-1")) if meta is not None else -1,
            pid=self._qemu_pid(xml.findtext("uuid", "")),
            graphics=graphics,
            cpu_seconds=cpu_ns / 1e9,
            switch_over=switch_over,
        )

    def _qemu_pid(self, uuid: str) -> int:
        self.pid = qemu_pid(uuid, self.pid)
        return self.pid

    def start(self, xml: str, *, paused: bool, timeout: float) -> None:
        libvirt = _libvirt()
        name = ET.fromstring(xml).findtext("name", "")
        flags = libvirt.VIR_DOMAIN_START_PAUSED if paused else 0
        failure: list[BaseException] = []

        def create() -> None:
            try:
                libvirt.open(self.uri).createXML(xml, flags)
            except libvirt.libvirtError as exc:
                failure.append(exc)

        worker = threading.Thread(target=create, name="vm-start", daemon=True)
        worker.start()
        worker.join(timeout)
        if worker.is_alive():
            # Blocked (typically inside the lease acquire): kill the half-started QEMU so nothing is left behind.
            self._abort(name)
            worker.join(30)
            raise WaitTimeout(f"the engine VM did not start within {timeout:g} s; the start was aborted, nothing is left running")
        if failure:
            raise _error(failure[0], f"cannot start VM {name}") from None

    def _abort(self, name: str) -> None:
        libvirt = _libvirt()
        try:
            dom = self.conn.lookupByName(name)
            dom.destroy()
        except libvirt.libvirtError:
            pass  # already gone

    def resume(self, name: str) -> None:
        self._act(name, "resume", lambda dom: dom.resume())

    def shutdown(self, name: str) -> None:
        flag = _libvirt().VIR_DOMAIN_SHUTDOWN_ACPI_POWER_BTN
        self._act(name, "shut down", lambda dom: dom.shutdownFlags(flag))

    def poweroff(self, name: str) -> None:
        self._act(name, "power off", lambda dom: dom.destroy(), already_done=_libvirt().VIR_ERR_OPERATION_INVALID)

    def _act(self, name: str, what: str, op: Callable[[Any], object], already_done: int | None = None) -> None:
        """``op`` on the running VM ``name``; a libvirt error with code ``already_done`` means there was nothing to do."""
        libvirt = _libvirt()
        dom = self._require(name)
        try:
            op(dom)
        except libvirt.libvirtError as exc:
            if exc.get_error_code() != already_done:
                raise _error(exc, f"cannot {what} VM {name}") from None

    def migrate(self, name: str, request: MigrationRequest, progress: Callable[[MigrationProgress], None]) -> MigrationResult:
        """Peer to peer: this host's libvirtd drives the migration with the target's. libvirt's sanlock driver
        releases the engine lease when QEMU here has paused the guest for the switch-over and the target's
        acquires it before its QEMU runs the guest (docs/vm.md)."""
        libvirt = _libvirt()
        dom = self._require(name)
        flags = libvirt.VIR_MIGRATE_LIVE | libvirt.VIR_MIGRATE_PEER2PEER | libvirt.VIR_MIGRATE_AUTO_CONVERGE
        flags |= (libvirt.VIR_MIGRATE_TLS if request.tls else 0) | (libvirt.VIR_MIGRATE_UNSAFE if request.unsafe else 0)
        params: dict[str, object] = {libvirt.VIR_MIGRATE_PARAM_URI: request.migrate_uri}
        if request.bandwidth_mib:
            params[libvirt.VIR_MIGRATE_PARAM_BANDWIDTH] = request.bandwidth_mib
        failure: list[Any] = []

        def run() -> None:
            try:
                conn = libvirt.open(self.uri)
                try:
                    conn.lookupByName(name).migrateToURI3(request.dest_uri, params, flags)
                finally:
                    with contextlib.suppress(libvirt.libvirtError):
                        conn.close()
            except libvirt.libvirtError as exc:
                failure.append(exc)

        worker = threading.Thread(target=run, name="vm-migrate", daemon=True)
        began = time.monotonic()
        worker.start()
        aborted = False
        while True:
            worker.join(MIGRATION_POLL)
            if not worker.is_alive():
                break
            elapsed = time.monotonic() - began
            if elapsed >= request.timeout:
                with contextlib.suppress(libvirt.libvirtError):
                    dom.abortJob()
                aborted = True
                worker.join(30)
                if worker.is_alive():
                    raise HypervisorError(f"libvirt did not end the migration within 30 s of aborting it ({request.timeout:g} s)")
                break
            progress(self._migration_progress(dom, elapsed))
        seconds = time.monotonic() - began
        if failure:
            after = self._resume_after(name)
            if aborted and failure[0].get_error_code() == libvirt.VIR_ERR_OPERATION_ABORTED:
                raise WaitTimeout(f"the migration did not finish within {request.timeout:g} s and was aborted; {_where(after)}")
            raise _migration_error(failure[0], after)
        downtime, transferred = self._completed(name, request.dest_uri)
        return MigrationResult(round(seconds, 3), downtime, transferred)

    def _resume_after(self, name: str) -> str:
        """The VM's state here after a failed migration, resumed first when libvirt left it paused for the
        switch-over (the target refused the lease and the source could not take it back by itself): resuming
        acquires the engine lease again through libvirt's sanlock driver, or fails and leaves it paused."""
        libvirt = _libvirt()
        info = self.info(name)
        if info.switch_over:
            with contextlib.suppress(libvirt.libvirtError):
                self._require(name).resume()
            info = self.info(name)
        return info.state

    def _migration_progress(self, dom: Any, elapsed: float) -> MigrationProgress:
        libvirt = _libvirt()
        try:
            stats = dom.jobStats()
            state, reason = dom.state()
        except libvirt.libvirtError:
            return MigrationProgress("copying", elapsed)
        phase = "switching" if (state, reason) == (3, _PAUSED_MIGRATION) else "copying"
        total, remaining = stats.get("memory_total"), stats.get("memory_remaining")
        mib = lambda n: None if n is None else round(n / 2**20, 1)  # noqa: E731
        return MigrationProgress(phase, elapsed, mib(remaining), mib(total))

    def _completed(self, name: str, dest_uri: str, timeout: float = 10.0) -> tuple[int | None, float | None]:
        """(downtime in ms, MiB transferred) of the finished migration, as the target's libvirtd kept them."""
        libvirt = _libvirt()
        found: list[tuple[int | None, float | None]] = []

        def ask() -> None:
            with contextlib.suppress(libvirt.libvirtError):
                conn = libvirt.open(dest_uri)
                try:
                    stats = conn.lookupByName(name).jobStats(libvirt.VIR_DOMAIN_JOB_STATS_COMPLETED)
                finally:
                    conn.close()
                moved = stats.get("data_processed", stats.get("memory_processed"))
                found.append((stats.get("downtime"), None if moved is None else round(moved / 2**20, 1)))

        worker = threading.Thread(target=ask, name="vm-migrate-stats", daemon=True)
        worker.start()
        worker.join(timeout)
        return found[0] if found else (None, None)

    def set_console_password(self, name: str, password: str, valid_to: str) -> Graphics:
        libvirt = _libvirt()
        graphics = self.info(name).graphics
        if graphics is None:
            raise VMStateError(f"VM {name} has no graphical console (engine VM spec: graphics = none)")
        device = graphics_xml(graphics.type, graphics.listen, graphics.port, password, valid_to)
        try:
            self._require(name).updateDeviceFlags(device, libvirt.VIR_DOMAIN_AFFECT_LIVE)
        except libvirt.libvirtError as exc:
            # libvirt's message names the operation, never the password.
            raise _error(exc, f"cannot set the console password of VM {name}") from None
        return graphics

    def _require(self, name: str):  # type: ignore[no-untyped-def]
        dom = self._lookup(name)
        if dom is None:
            raise VMStateError(f"the engine VM ({name}) is not running on this host")
        return dom

    def close(self) -> None:
        with contextlib.suppress(Exception):  # a dead connection is closed already
            self.conn.close()


def _runs(pid: int, needle: bytes) -> bool:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return needle in f.read()
    except OSError:
        return False


def qemu_pid(uuid: str, known: int = 0) -> int:
    """The pid of the QEMU process running VM ``uuid`` (0 when none); libvirt's API does not expose it.

    ``known``, a pid found before, is checked first: the agent asks every cycle, and /proc is scanned only on a change.
    """
    import os

    needle = b"\0-uuid\0" + uuid.encode() + b"\0"
    if known and _runs(known, needle):
        return known
    return next((int(entry) for entry in os.listdir("/proc") if entry.isdigit() and _runs(int(entry), needle)), 0)
