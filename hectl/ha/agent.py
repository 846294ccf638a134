"""The agent: one cycle is collect -> decide (``fsm.step``) -> act -> publish.

Everything outside the process goes through an ``Env``: the real one in
``hectl ha run`` (shared storage, sanlock, libvirt, monitors), a simulated one
in ``hectl ha simulate``. The agent itself holds only what it remembers
between cycles: the state machine's memory, who it has seen change, and its
own record's sequence number.
"""

from __future__ import annotations

import contextlib

from hectl.config import HAConfig
from hectl.errors import StorageError
from hectl.frozen import Frozen
from hectl.ha import fsm
from hectl.ha.liveness import LivenessTracker, MaintenanceClock
from hectl.lease import LEASE_FREE, LEASE_UNKNOWN
from hectl.storage import records

TYPE_CHECKING = False  # typing.TYPE_CHECKING would import typing (see hectl.frozen)
if TYPE_CHECKING:
    from typing import Protocol

    from hectl.clock import Clock
    from hectl.config import ScoreConfig
    from hectl.ha.score import HostHealth
    from hectl.storage.metadata import MetadataSnapshot
else:
    Protocol = object


class Env(Protocol):
    """The agent's window on the world."""

    clock: Clock

    def read_metadata(self) -> MetadataSnapshot:
        """Every slot of the metadata file (time-bounded; raises StorageError)."""
        ...

    def write_record(self, record: records.HostRecord) -> None:
        """This host's slot (time-bounded; raises StorageError)."""
        ...

    def host_lease(self) -> str:
        """This host's sanlock host-id lease: held | joining | lost | none."""
        ...

    def lease_view(self) -> dict[int, str]:
        """sanlock's view of the host-id leases it lists, this host's included: live | fail | dead | free | unknown.

        ``{}`` when sanlock gave no view; otherwise a host id it does not list is free (sanlock lists only
        host ids whose delta lease is not released)."""
        ...

    def engine_lease(self) -> int:
        """Who holds the engine VM lease: a host id, ``LEASE_FREE`` or ``LEASE_UNKNOWN``."""
        ...

    def vm(self) -> fsm.LocalVM:
        """The engine VM on this host."""
        ...

    def act(self, action: str, target: int = 0, why: str = "", judged: fsm.Judged | None = None) -> None:
        """Begin ``start``, ``shutdown``, ``poweroff``, ``migrate`` (to host ``target``) or ``fence`` (host
        ``target``, judged dead on ``judged``) because of ``why``; progress shows in ``vm()`` or ``fence_result()``."""
        ...

    def renewals(self, host_ids: tuple[int, ...]) -> dict[int, tuple[int, int]]:
        """The delta leases of ``host_ids`` read from the lockspace: (generation, timestamp) each (bounded;
        raises StorageError)."""
        ...

    def fence_result(self) -> fsm.Outcome:
        """This host's last fencing: none yet, running, DONE (confirmed off, and how) or FAILED (and why)."""
        ...

    def health(self) -> HostHealth:
        """The latest monitor values."""
        ...

    def local_maintenance(self) -> bool:
        """Local maintenance of this host is in force."""
        ...

    def transition(self, host_id: int, old: str, new: str, reason: str) -> None:
        """A state change happened (log it once, notify plugins)."""
        ...


class AgentConfig(Frozen):
    host_id: int
    hostname: str
    engine_mem_mib: int
    liveness_window: float
    score: ScoreConfig
    timings: HAConfig = HAConfig()
    fence_after: float | None = None  # [fencing] dead_after when fencing is enabled
    fenceable: frozenset[int] = frozenset()  # hosts with a fence device


class Agent:
    """The HA agent of one host."""

    def __init__(self, env: Env, cfg: AgentConfig) -> None:
        self.env = env
        self.cfg = cfg
        self.started = env.clock.monotonic()
        self.observing_since: float | None = None  # first successful read of an unbroken series
        self.last_read: float | None = None
        self.memory = fsm.Memory(fsm.S.START, self.started)
        self.tracker = LivenessTracker(cfg.liveness_window)
        self.hosts: tuple[fsm.RemoteHost, ...] = ()
        self.global_maintenance = False
        self.maintenance = MaintenanceClock()  # global maintenance expiry, on this host's monotonic clock
        self.seq: int | None = None
        self.last: fsm.Decision | None = None
        self.storage: dict[str, object] = {}  # the storage monitor: last read/write times and errors
        self.snapshot: MetadataSnapshot | None = None  # the last metadata read
        self.lease_tracker = LivenessTracker(cfg.fence_after or 0.0)  # with fencing: the hosts' delta leases, timed
        self.fence_notes: dict[int, tuple[float, str]] = {}  # host id -> (monotonic time, record line) of its fencing
        self.fence_why = ""  # why the current fencing began
        self.reading_since: float | None = None  # since when this agent's metadata and lockspace reads all succeeded
        self.published_score = 0  # the score in this host's record on the domain (what the others go by)

    def cycle(self) -> fsm.Decision:
        """Run one cycle; return the decision (its ``delay`` is how long to sleep)."""
        now = self.env.clock.monotonic()
        storage_ok = self._read(now)
        vm = self.env.vm()
        obs = fsm.Observations(
            now=now,
            host_id=self.cfg.host_id,
            history=0.0 if self.observing_since is None else now - self.observing_since,
            vm=vm,
            health=self.env.health(),
            engine_mem_mib=self.cfg.engine_mem_mib,
            hosts=self.hosts,
            global_maintenance=self.global_maintenance,
            local_maintenance=self.env.local_maintenance(),
            host_lease=self.env.host_lease(),
            storage_ok=storage_ok,
            engine_lease=self.env.engine_lease() if storage_ok else LEASE_UNKNOWN,
            fence_after=self.cfg.fence_after,
            fence=self.env.fence_result() if self.memory.state == fsm.S.FENCE else fsm.Outcome(),
            readable_for=0.0 if self.reading_since is None else now - self.reading_since,
            published_score=self.published_score,
        )
        decision = fsm.step(self.memory, obs, self.cfg.score, self.cfg.timings)
        if self.memory.state == fsm.S.FENCE and decision.state != fsm.S.FENCE:
            self._note_fencing(decision, now)
        elif decision.state == fsm.S.FENCE and self.memory.state != fsm.S.FENCE:
            self.fence_why = decision.reason
        if decision.state != self.memory.state:
            self.env.transition(self.cfg.host_id, self.memory.state, decision.state, decision.reason)
        self.memory = decision.memory
        for action in decision.actions:
            judged = self._judged(decision.memory.target) if action == fsm.FENCE else None
            self.env.act(action, decision.memory.target, decision.reason, judged)
        if storage_ok:
            self._publish(vm, decision, obs.local_maintenance)
        self.last = decision
        return decision

    def _judged(self, host_id: int) -> fsm.Judged | None:
        """What host ``host_id`` was judged dead on: its record's sequence number and its delta lease as last read."""
        record, renewal = self.tracker.seen(host_id), self.lease_tracker.seen(host_id)
        if record is None or renewal is None:
            return None
        generation, timestamp = divmod(renewal.seq, 1 << 64)
        return fsm.Judged(host_id, record.seq, generation, timestamp)

    def _note_fencing(self, d: fsm.Decision, now: float) -> None:
        """Keep what a fencing ended in on this host's record for ``retry_window`` (vm-status shows it)."""
        target = d.memory.target
        kind = "fenced" if any(h == target for h, _ in d.memory.fenced) else "fence-failed"
        at = records.iso_time(self.env.clock.wall())
        reason = f"{self.fence_why}; {d.reason}" if self.fence_why else d.reason
        self.fence_notes[target] = (now, f"{kind} host={target} by={self.cfg.host_id} at={at} reason={reason}")

    def _fence_lines(self, now: float) -> tuple[str, ...]:
        window = self.cfg.timings.retry_window
        self.fence_notes = {h: n for h, n in self.fence_notes.items() if now - n[0] < window}
        return tuple(line for _, line in sorted(self.fence_notes.values()))

    def stop(self) -> None:
        """Publish a clean 'stopped' record (score 0) before the agent exits."""
        vm = self.env.vm()
        self.env.transition(self.cfg.host_id, self.memory.state, fsm.S.STOPPED, "agent stopped")
        self.memory = self.memory._replace(state=fsm.S.STOPPED, since=self.env.clock.monotonic())
        rec = self._record(vm, fsm.S.STOPPED, 0, "agent stopped", self.env.local_maintenance(), stopped=True)
        with contextlib.suppress(StorageError):  # else the record goes stale: peers see the host silent
            self.env.write_record(rec)

    def _read(self, now: float) -> bool:
        try:
            snap = self.env.read_metadata()
        except StorageError as exc:
            self.storage.update(read_ok=False, read_error=exc.message)
            self.reading_since = None  # silence of others is counted again only from the next good read
            return False  # keep the last view; the state machine knows it is old
        self.storage.update(
            read_ok=True, read_ms=snap.read_ms, direct_io=snap.direct_io, read_error="", metadata_problem=snap.truncation()
        )
        self.snapshot = snap
        if self.reading_since is None:
            self.reading_since = now
        if self.last_read is None or now - self.last_read > self.cfg.liveness_window:
            self.observing_since = now  # a gap in what we saw: a new host's record might be old, watch a while
        self.last_read = now
        self.global_maintenance = self.maintenance.in_force(snap.global_record, now)  # never by wall clocks
        leases = self.env.lease_view()
        unlisted = "free" if leases else "unknown"
        hosts = []
        for slot in snap.host_slots():
            rec = slot.record
            if slot.kind != records.SlotKind.VALID or not isinstance(rec, records.HostRecord):
                continue  # corrupt, foreign or too new: never a live host
            if rec.host_id == self.cfg.host_id:
                if self.seq is None:
                    self.seq, self.published_score = rec.seq, 0 if rec.stopped else rec.score
                continue
            live, silent = self.tracker.observe(rec.host_id, rec.seq, now)
            hosts.append(
                fsm.RemoteHost(
                    host_id=rec.host_id,
                    live=live and not rec.stopped,
                    lease=leases.get(rec.host_id, unlisted),
                    state=rec.state,
                    score=rec.score,
                    vm=rec.engine.vm,
                    health=rec.engine.health,
                    local_maintenance=rec.local_maintenance,
                    silent=silent,
                )
            )
        self.tracker.forget({h.host_id for h in hosts})
        self.hosts = tuple(self._renewals(hosts, now))
        return True

    def _renewals(self, hosts: list[fsm.RemoteHost], now: float) -> list[fsm.RemoteHost]:
        """With fencing, each fenceable host's delta lease, timed like records: seconds since it last changed."""
        watch = tuple(h.host_id for h in hosts if h.host_id in self.cfg.fenceable)
        if self.cfg.fence_after is None or not watch:
            return hosts
        try:
            leases = self.env.renewals(watch)
        except StorageError:
            leases, self.reading_since = {}, None
        timed = {h: lease for h, lease in leases.items() if lease[1] != LEASE_FREE}  # unread or released: untimed
        self.lease_tracker.forget(set(timed))
        out = []
        for h in hosts:
            lease = timed.get(h.host_id)
            if lease is None:
                out.append(h)
                continue
            _, silent = self.lease_tracker.observe(h.host_id, lease[0] << 64 | lease[1], now)  # generation, timestamp
            out.append(h._replace(renewal_silent=silent, fenceable=True))
        return out

    def _publish(self, vm: fsm.LocalVM, d: fsm.Decision, local_maintenance: bool) -> None:
        lines = (*self._fence_lines(self.env.clock.monotonic()), *d.score.explain())
        rec = self._record(vm, d.state, d.score.total, d.reason, local_maintenance, details=lines)
        start = self.env.clock.monotonic()
        try:
            self.env.write_record(rec)
        except StorageError as exc:
            self.storage.update(write_ok=False, write_error=exc.message)
            return
        self.published_score = rec.score
        self.storage.update(write_ok=True, write_ms=round((self.env.clock.monotonic() - start) * 1000, 3), write_error="")

    def _record(
        self,
        vm: fsm.LocalVM,
        state: str,
        score: int,
        reason: str,
        local_maintenance: bool,
        stopped: bool = False,
        details: tuple[str, ...] = (),
    ) -> records.HostRecord:
        self.seq = ((self.seq or 0) + 1) % 2**64
        rec = records.HostRecord(
            host_id=self.cfg.host_id,
            seq=self.seq,
            wall_time=self.env.clock.wall(),
            score=score,
            state=state,
            engine=records.EngineStatus(vm.state, vm.health, vm.detail, reason),
            hostname=self.cfg.hostname,
            local_maintenance=local_maintenance,
            stopped=stopped,
        )
        return rec._replace(details=records.host_details(rec, details))
