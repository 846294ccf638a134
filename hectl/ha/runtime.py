"""The engine VM as the agent sees and drives it on a real host: libvirt plus the engine monitor.

``vm()`` is the engine-health monitor: the hypervisor's state of the VM and,
while it runs, the ``engine`` monitor's reading (registered through the
monitor hook; the built-in one probes the health page like ``check-liveliness``).
``act`` carries out the state machine's actions; a start runs in a thread,
since acquiring the engine lease can block for up to sanlock's
host_dead_seconds, and the agent must keep publishing meanwhile.
"""

from __future__ import annotations

import logging
import threading

from hectl.errors import HectlError, HypervisorError, LockHeld, NotDeployed, OperationFailed, StorageError
from hectl.ha import fsm
from hectl.ha.monitors import EngineHealthMonitor, Reading
from hectl.lease import host_dead_seconds
from hectl.vm import control, migration
from hectl.vm import spec as vmspec
from hectl.vm.hypervisor import INCOMING, choose_accel

TYPE_CHECKING = False  # typing.TYPE_CHECKING would import typing (see hectl.frozen)
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import TypeVar

    T = TypeVar("T")

    from hectl.clock import Clock
    from hectl.config import Config
    from hectl.storage.backend import StorageBackend
    from hectl.vm.hypervisor import Hypervisor, VMInfo

log = logging.getLogger("hectl.ha")
HYPERVISOR_TIMEOUT = 10.0  # seconds the agent waits for libvirt's answer about the VM
MIGRATION_GRACE = 60.0  # a migration still under way this long after its timeout counts as failed


class EngineRuntime:
    """The engine VM on this host for ``agent.Env``: ``vm()`` observes, ``act()`` acts."""

    def __init__(
        self,
        cfg: Config,
        backend: StorageBackend,
        clock: Clock,
        problem: Callable[[str], None],
        connect: Callable[[str], Hypervisor] | None = None,
        health_monitor: object | None = None,
    ) -> None:
        from hectl.vm.connect import connect as connect_libvirt

        self.cfg = cfg
        self.backend = backend
        self.clock = clock
        self.problem = problem
        self.connect = connect or connect_libvirt
        self.health_monitor = health_monitor or EngineHealthMonitor(cfg, clock)  # sample() -> Reading
        self.hyper: Hypervisor | None = None
        self.spec: vmspec.EngineSpec | None = None
        self.starter: threading.Thread | None = None
        self.start_error = ""  # why the last start failed (fsm down_reason words)
        self.stop_requested = False
        self.last: VMInfo | None = None
        self.waiting: dict[str, threading.Thread] = {}  # hypervisor calls that have not answered yet, by kind
        self.migrator: threading.Thread | None = None
        self.migrating_since = 0.0
        self.migration_error = ""  # why this agent's last migration failed
        self.migrated = False  # this agent's last migration moved the VM away

    def config_problem(self) -> str:
        """Why this host's engine VM configuration is not current ('' when it is): the config penalty's cause.

        Re-reads the spec (one 8 KiB read), so that starts use the newest one. An
        unreachable domain is the storage monitor's business, not a config problem.
        """
        try:
            spec = self._spec(refresh=True)
        except NotDeployed:
            return "the engine VM is not defined on the domain (hectl vm-config set)"
        except StorageError as exc:
            return exc.message if "corrupt" in exc.message else ""
        running = self.last
        if running is not None and running.state in ("up", "paused") and 0 <= running.spec_version < spec.version:
            return f"the engine VM runs spec version {running.spec_version}, the domain has {spec.version} (restart it to apply)"
        return ""

    def engine_pids(self) -> list[int]:
        """The engine VM's QEMU process on this host (for the CPU monitor to leave out)."""
        return [self.last.pid] if self.last is not None and self.last.pid else []

    def _hypervisor(self) -> Hypervisor:
        if self.hyper is None:
            self.hyper = self.connect(self.cfg.vm.uri)
        return self.hyper

    def _spec(self, refresh: bool = False) -> vmspec.EngineSpec:
        if self.spec is None or refresh:
            self.spec = vmspec.read(self.backend, self.cfg.storage.timeout)
        return self.spec

    def _info(self, name: str) -> VMInfo:
        return self._bounded("query", lambda: self._hypervisor().info(name))

    def _bounded(self, what: str, call: Callable[[], T]) -> T:
        """``call()``'s answer within ``HYPERVISOR_TIMEOUT``: a hung libvirtd, or a hung guest's QEMU monitor (an
        ACPI shutdown of a frozen guest waits on it), must not stall the loop, which must go on (to the power-off).
        A call of a kind still unanswered is not made again: threads never pile up behind a hung libvirt."""
        pending = self.waiting.get(what)
        if pending is not None and pending.is_alive():
            raise HypervisorError(f"libvirt has not answered the last {what} for more than {HYPERVISOR_TIMEOUT:g} s")
        answer: list[T | HectlError] = []

        def run() -> None:
            try:
                answer.append(call())
            except HectlError as exc:
                answer.append(exc)

        worker = self.waiting[what] = threading.Thread(target=run, name=f"vm-{what}", daemon=True)
        worker.start()
        worker.join(HYPERVISOR_TIMEOUT)
        if not answer:
            raise HypervisorError(f"libvirt did not answer the {what} within {HYPERVISOR_TIMEOUT:g} s")
        if isinstance(answer[0], HectlError):
            raise answer[0]
        return answer[0]

    def vm(self) -> fsm.LocalVM:
        return self._vm()._replace(migration=self._migration())

    def _migration(self) -> fsm.Outcome:
        """This agent's migration of the VM: none (or it succeeded), running, or failed and why."""
        if self.migrator is not None and self.migrator.is_alive():
            late = self.clock.monotonic() - self.migrating_since - self.cfg.vm.migration_timeout
            if late < MIGRATION_GRACE:
                return fsm.Outcome(fsm.RUNNING)
            why = f"libvirt has not ended the migration {self.cfg.vm.migration_timeout + late:.0f} s after it began"
            return fsm.Outcome(fsm.FAILED, why)
        return fsm.Outcome(fsm.FAILED, self.migration_error) if self.migration_error else fsm.Outcome()

    def _vm(self) -> fsm.LocalVM:
        starting = self.starter is not None and self.starter.is_alive()
        try:
            spec = self._spec()
            info = self._info(spec.name)
        except HectlError as exc:
            pending = self.waiting.get("shutdown")
            if pending is not None and pending.is_alive():
                # libvirt is stuck in the ACPI shutdown this agent asked for (a frozen guest's QEMU monitor never
                # answers; queries then wait behind it): the VM is still up, and not healthy. Saying "unknown"
                # would park the agent; "up" lets the stop timer run out to the power-off, which kills QEMU.
                return fsm.LocalVM("up", "bad", detail=f"libvirt is stuck in the shutdown of the engine VM ({exc.message})")
            if starting:
                # libvirt is busy with the start this agent asked for (QEMU paused while sanlock waits for the
                # lease to come free; queries wait behind it): the engine is starting here. Saying "unknown" would
                # zero this host's score and tell the others nobody starts it, and they would try in turn.
                return fsm.LocalVM("starting", "unknown", detail=f"libvirt is busy starting the engine VM ({exc.message})")
            self.hyper = None  # reconnect next time
            return fsm.LocalVM("unknown", detail=exc.message)
        previous, self.last = self.last, info
        detail = f"{info.detail}, {info.accel}" if info.accel else info.detail
        if info.state == "up":
            self.stop_requested = False
            health, why = self._health()
            return fsm.LocalVM("up", health, detail=detail if health == "good" else f"{detail}; {why}")
        if info.state in ("paused", "starting") or starting:
            return fsm.LocalVM("starting" if starting else info.state, "unknown", detail=detail, switch_over=info.switch_over)
        return fsm.LocalVM("down", "unknown", down_reason=self._down_reason(previous, info), detail=info.detail)

    def _down_reason(self, previous: VMInfo | None, now: VMInfo) -> str:
        if self.migrated or (self.migrator is not None and self.migrator.is_alive()) or "(migrated)" in now.detail:
            return "migrated"  # libvirt ends the domain here once the target runs it (its call returns just after)
        if previous is not None and previous.detail == INCOMING:
            return "migration-failed"
        if self.start_error:
            return self.start_error
        if self.stop_requested:
            return "shutdown"
        if previous is not None and previous.state in ("up", "paused"):
            return "killed"  # gone without a request from this agent: crashed, killed or fenced
        return ""

    def _health(self) -> tuple[str, str]:
        try:
            reading: Reading = self.health_monitor.sample()  # type: ignore[attr-defined]
        except Exception as exc:  # a broken monitor plugin must never stop the agent
            return "unknown", f"engine monitor failed: {type(exc).__name__}: {exc}"
        if reading.value is None:  # not checked: a running VM counts as healthy, and the log says why
            self.problem(reading.detail)
            return "good", ""
        return ("good" if reading.value else "bad"), reading.detail

    def act(self, action: str) -> None:
        try:
            if action == fsm.START:
                self._start()
            elif action == fsm.SHUTDOWN:
                self.stop_requested = True
                name = self._spec().name
                self._bounded("shutdown", lambda: self._hypervisor().shutdown(name))
            elif action == fsm.POWEROFF:
                self.stop_requested = True
                name = self._spec().name
                self._bounded("power-off", lambda: self._hypervisor().poweroff(name))
        except HectlError as exc:
            self.problem(f"cannot {action} the engine VM: {exc.message}")

    def _start(self) -> None:
        if self.starter is not None and self.starter.is_alive():
            return
        spec = self._spec(refresh=True)
        accel, _why = choose_accel(self.cfg.vm.accelerator)
        xml = control.host_domain_xml(self.cfg, spec, self.backend, accel)
        self.start_error, self.stop_requested, self.migrated = "", False, False
        hyper = self._hypervisor()

        # The agent starts only when the lease's holder is gone or failing: let sanlock finish declaring it dead.
        limit = max(self.cfg.vm.start_timeout, host_dead_seconds(self.cfg.ha.io_timeout) + self.cfg.ha.loop)

        def run() -> None:
            try:
                hyper.start(xml, paused=False, timeout=limit)
                log.info("engine VM %s started (%s)", spec.name, accel)
            except LockHeld as exc:
                self.start_error = "lease-busy"
                log.warning("engine VM not started: %s", exc.message)
            except HectlError as exc:
                self.start_error = "start-failed"
                log.warning("engine VM not started: %s", exc.message)

        self.starter = threading.Thread(target=run, name="vm-start", daemon=True)
        self.starter.start()

    def migrate(self, target: int, hostname: str) -> None:
        """Begin the live migration of the engine VM to host ``target`` (``hostname`` from its record), in a thread;
        the outcome shows in ``vm()``: gone with down_reason "migrated", or ``migration`` "failed: why"."""
        if self.migrator is not None and self.migrator.is_alive():
            return
        self.migration_error, self.migrated = "", False
        cfg = self.cfg

        def run() -> None:
            try:
                if not migration.usable_hostname(hostname):
                    raise OperationFailed(f"host {target}'s hostname {hostname!r} is not a DNS name or an IP address")
                name = self._spec().name
                unsafe = not self.backend.libvirt_sees_shared
                req = migration.request(
                    cfg.vm,
                    hostname,
                    migration.resolve(hostname),
                    unsafe=unsafe,
                    timeout=cfg.vm.migration_timeout,
                    bandwidth=cfg.vm.migration_bandwidth,
                )
                done = self._hypervisor().migrate(name, req, lambda _p: None)
                self.migrated = True
                log.info(
                    "engine VM migrated to host %d (%s) in %.1f s, paused %s ms", target, hostname, done.seconds, done.downtime_ms
                )
            except HectlError as exc:
                self.migration_error = exc.message
                log.warning("engine VM not migrated to host %d: %s", target, exc.message)

        self.migrating_since = self.clock.monotonic()
        self.migrator = threading.Thread(target=run, name="vm-migrate", daemon=True)
        self.migrator.start()
