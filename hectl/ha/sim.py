"""``hectl ha simulate``: several hosts run the real agent on a virtual clock.

Each simulated host runs ``hectl.ha.agent.Agent`` (the real state machine,
score and record code) against simulated shared storage (the real on-storage
format in memory), a simulated sanlock (delta leases renewed every
2 x io_timeout; others see a host FAIL after 8 x io_timeout and DEAD after
8 x io_timeout + 60 s; the engine lease can be taken over only from a dead
owner, and a host that cannot renew for 8 x io_timeout has its lease holders
killed) and a simulated engine VM. Faults come from a scenario file
(docs/simulate.md). The output is a timeline; safety (never two engines at
once) and liveness (the engine back within a bound of the fault) are checked
after every event.
"""

from __future__ import annotations

import heapq
import itertools
import math

from hectl.clock import VirtualClock
from hectl.config import HAConfig
from hectl.errors import StorageTimeout
from hectl.frozen import Frozen
from hectl.ha import fsm
from hectl.ha.agent import Agent, AgentConfig
from hectl.ha.score import MAX_FAILED_STARTS, HostHealth
from hectl.lease import LEASE_FREE, LEASE_UNKNOWN
from hectl.storage import records
from hectl.storage.metadata import MetadataSnapshot
from hectl.vm.hypervisor import INCOMING

TYPE_CHECKING = False  # typing.TYPE_CHECKING would import typing (see hectl.frozen)
if TYPE_CHECKING:
    import threading
    from collections.abc import Callable

    from hectl.clock import Clock


class SimTimings(Frozen):
    """Timing of the simulated world (seconds)."""

    io_timeout: float = 10.0
    boot: float = 8.0  # engine VM start to healthy
    shutdown: float = 4.0  # graceful (ACPI) shutdown
    poweroff: float = 1.0
    lease_delay: float = 0.3  # from the start request to libvirt's lease acquire (QEMU is launched first)
    storage_timeout: float = 5.0  # the agent's hard I/O timeout
    liveness_window: float = 30.0
    reboot: float = 120.0  # a graceful host reboot: from powered off to powered on again (firmware, OS)
    migrate: float = 6.0  # a live migration: copying the memory while the guest runs, to the switch-over
    fence: float = 0.5  # a working fence device: off, then status says off
    fence_timeout: float = 30.0  # [fencing] timeout: a device that does not answer fails after this

    @property
    def renew(self) -> float:
        return 2 * self.io_timeout

    @property
    def join(self) -> float:
        """add_lockspace of a free host id (or one this daemon held): 2 x io_timeout and I/O (measured: 21 s at 10, 5 s at 2)."""
        return 2 * self.io_timeout + 1

    @property
    def join_wait(self) -> float:
        """What add_lockspace waits first when the host id was last held by another sanlock daemon (delta_lease_acquire)."""
        return max(self.dead, self.renew + 6 * self.io_timeout)

    @property
    def fail(self) -> float:
        return 8 * self.io_timeout

    @property
    def dead(self) -> float:
        return 8 * self.io_timeout + 60


WALL_EPOCH = 1_800_000_000.0  # simulated wall clocks start here (2027)


def liveness_bound(t: SimTimings, timings: HAConfig) -> float:
    """How long the engine may stay down after a fault while some host could run it (docs/simulate.md).

    The clock starts at the fault (the engine stops being up: see ``World.serving``)
    and runs only while some host is fit to run the engine. The old owner's
    engine lease expires 8 x io_timeout + 60 s after its last renewal; a host
    that was itself just (re)joining needs the join, a window of history, and
    up to two agent loops; then the engine boots.
    """
    return t.dead + t.join + t.liveness_window + 2 * timings.loop + t.boot


def fence_bound(t: SimTimings, timings: HAConfig, fence_after: float) -> float:
    """The engine's host lost power and its fence device works: judged dead once its record and its renewals have
    stopped long enough (``fsm.dead_for``), fenced, and the engine started at once. The host elected to fence may
    be unable to (its own sanlock I/O failing): the next one passes it over after ``claim_wait``. A host that was
    itself just (re)joining needs a window of history; then up to two agent loops, the device, the start, the boot."""
    judged = max(fence_after, fsm.renewal_overdue(timings))
    return judged + fsm.claim_wait(timings) + t.liveness_window + 2 * timings.loop + t.fence + t.lease_delay + t.boot


def restart_bound(t: SimTimings, timings: HAConfig) -> float:
    """The engine VM went down and released its lease: the hosts see it, elect, start it elsewhere."""
    return 3 * timings.loop + t.lease_delay + t.boot


def unhealthy_grace(t: SimTimings, timings: HAConfig) -> float:
    """An engine VM up but unhealthy: noticed, given its grace, stopped (forced if need be), then started elsewhere."""
    grace = max(timings.bad_health, timings.starting)
    return timings.loop + grace + timings.stop + t.poweroff + restart_bound(t, timings)


class Entry(Frozen):
    """One line of the timeline: time, host, event (or state change), the host's score after it, why."""

    t: float
    host: int
    what: str
    detail: str = ""
    score: int | None = None

    def line(self) -> str:
        score = "" if self.score is None else f"  score {self.score}"
        return f"{self.t:7.1f}  h{self.host}  {self.what}{score}" + (f"  ({self.detail})" if self.detail else "")


class SimVM:
    """The engine VM on one simulated host."""

    def __init__(self) -> None:
        self.state = "down"  # down | starting | up | paused
        self.holds_lease = False
        self.down_reason = ""
        self.detail = ""
        self.waiting = ""  # what its lease acquire waits for (logged once per wait)
        self.migration = fsm.Outcome()  # its migration to another host: none, running, or failed and why


class Slot(Frozen):
    """A host id's delta lease on disk: which sanlock daemon (the host's boot generation) wrote it, released or not."""

    daemon: int
    free: bool


class SimHost:
    def __init__(self, world: World, host_id: int) -> None:
        self.world = world
        self.id = host_id
        self.powered = False
        self.vm = SimVM()
        self.agent: Agent | None = None
        self.env: SimEnv | None = None
        self.clock = HostClock(world, self)
        self.mono_offset = 1000.0 * host_id
        self.wall_offset = WALL_EPOCH
        self.stall_until = 0.0
        self.storage_lost = False  # all shared storage I/O fails
        self.metadata_lost = False  # only the agent's metadata I/O fails
        self.lockspace_lost = False  # only sanlock's I/O fails
        self.start_fails = False  # the engine VM fails to start here (QEMU or libvirt refuses it)
        self.migration_fails = False  # migrations from here fail at the switch-over (the target's lease acquire)
        self.network_ok = True
        self.fence_device = "works"  # works | fails | slow (never answers) | keeps-on (accepts off, stays on)
        self.fence_outcome = fsm.Outcome()  # this host's last fencing of another
        self.engine_health_bad = False
        self.local_maintenance = False
        self.acpi_ignored = False
        self.libvirt_down = False
        self.joined_at: float | None = None  # sanlock lockspace joined (or being joined) since
        self.generation = 0  # bumps on power-off/on: events scheduled for an earlier boot are ignored
        self.agent_run = 0  # bumps on agent start/stop: cycles scheduled for an earlier agent are ignored

    def disk_ok(self) -> bool:
        """Shared storage answers this host (the engine VM's disk lives there)."""
        return self.powered and not self.storage_lost and self.world.now >= self.stall_until

    def metadata_ok(self) -> bool:
        """The agent's metadata I/O works."""
        return self.disk_ok() and not self.metadata_lost

    def sanlock_ok(self) -> bool:
        """sanlock's I/O (delta lease renewals, joins, paxos acquires) works."""
        return self.disk_ok() and not self.lockspace_lost

    def joined(self) -> bool:
        """sanlock holds this host's id in the lockspace (it may still fail to renew it)."""
        return self.joined_at is not None and self.world.now >= self.joined_at


class HostClock:
    """A host's clocks: the world's time plus the host's offsets (wall may jump, monotonic never)."""

    def __init__(self, world: World, host: SimHost) -> None:
        self.world = world
        self.host = host

    def monotonic(self) -> float:
        return self.world.now + self.host.mono_offset

    def wall(self) -> float:
        return self.world.now + self.host.wall_offset

    def sleep(self, seconds: float, stop: threading.Event | None = None) -> bool:
        raise RuntimeError("simulated agents are scheduled, they do not sleep")


class SimEnv:
    """``agent.Env`` for one simulated host."""

    def __init__(self, host: SimHost) -> None:
        self.host = host
        self.world = host.world
        self.clock: Clock = host.clock
        self.changes: list[tuple[str, str, str]] = []

    def read_metadata(self) -> MetadataSnapshot:
        if not self.host.metadata_ok():
            raise StorageTimeout("simulated storage does not answer")
        w = self.world
        data = bytes(w.meta)
        slots = records.decode_metadata([(0, data)], len(data), max_host_id=len(w.hosts))
        return MetadataSnapshot(slots, len(data), True, 1.0, self.clock.monotonic(), self.clock.wall())

    def write_record(self, record: records.HostRecord) -> None:
        if not self.host.metadata_ok():
            raise StorageTimeout("simulated storage does not answer")
        offset = record.host_id * records.SLOT_SIZE
        self.world.meta[offset : offset + records.SLOT_SIZE] = records.encode_host(record)

    def host_lease(self) -> str:
        h, w = self.host, self.world
        if h.joined_at is None:
            return "none"
        if w.now < h.joined_at:
            return "joining"
        return "held" if w.renewal_age(h.id) < w.t.fail else "lost"

    def lease_view(self) -> dict[int, str]:
        if not self.host.joined():
            return {}
        return {o.id: self.world.lease_state(o.id) for o in self.world.hosts.values() if o.id in self.world.renewals}

    def engine_lease(self) -> int:
        """sanlock read_resource_owners: the owner, unless it released the lease or has rejoined since (new generation)."""
        if not self.host.sanlock_ok():
            return LEASE_UNKNOWN  # read_resource_owners needs sanlock's I/O
        owner = self.world.lease_owner
        if owner is None or self.world.ls_generation.get(owner[0]) != owner[1]:
            return LEASE_FREE
        return owner[0]

    def vm(self) -> fsm.LocalVM:
        vm = self.host.vm
        if self.host.libvirt_down:
            return fsm.LocalVM("unknown", detail="libvirtd does not answer")
        if vm.state == "up":
            health = "bad" if self.host.engine_health_bad else "good"
            return fsm.LocalVM("up", health, detail="running", migration=vm.migration)
        if vm.state == "starting":
            return fsm.LocalVM("starting", "unknown", detail=vm.detail)
        return fsm.LocalVM(vm.state, "unknown", down_reason=vm.down_reason, detail=vm.detail)

    def act(self, action: str, target: int = 0, why: str = "", judged: fsm.Judged | None = None) -> None:
        if action == fsm.FENCE:
            self.world.fence(self.host, self.world.hosts[target], judged)
        else:
            self.world.vm_action(self.host, action, target)

    def renewals(self, host_ids: tuple[int, ...]) -> dict[int, tuple[int, int]]:
        """The delta leases on disk: (lockspace generation, renewal time in ms; 0 when released)."""
        if not self.host.sanlock_ok():
            raise StorageTimeout("simulated storage does not answer")
        leases = {h: self.world.delta(h) for h in host_ids}
        return {h: lease for h, lease in leases.items() if lease is not None}

    def fence_result(self) -> fsm.Outcome:
        return self.host.fence_outcome

    def health(self) -> HostHealth:
        ok = 5 if self.host.network_ok else 0
        return HostHealth(network_ok=ok, network_probes=5, bridge_up=True, mem_free_mib=16384, cpu_load=0.1)

    def local_maintenance(self) -> bool:
        return self.host.local_maintenance

    def transition(self, host_id: int, old: str, new: str, reason: str) -> None:
        self.changes.append((old, new, reason))  # logged with the new score once the cycle is done


class World:
    """The simulated cluster: hosts, shared storage, sanlock and the event queue."""

    def __init__(self, nhosts: int, t: SimTimings | None = None, timings: HAConfig | None = None) -> None:
        self.t = t or SimTimings()
        self.timings = timings or HAConfig()
        self.fence_after: float | None = None  # [fencing] dead_after when the scenario enables fencing
        self.clock = VirtualClock(monotonic=0.0, wall=0.0)
        self.meta = bytearray(records.SLOT_SIZE * (nhosts + 1))
        self.hosts = {i: SimHost(self, i) for i in range(1, nhosts + 1)}
        self.renewals: dict[int, float] = {}  # host id -> world time of its last delta-lease renewal
        self.slots: dict[int, Slot] = {}  # host id -> its delta lease on disk (absent: never written, free)
        self.lease_owner: tuple[int, int] | None = None  # (host id, its lockspace generation) in the lease's leader record
        self.ls_generation: dict[int, int] = {}  # host id -> generation of its current lockspace membership
        self.timeline: list[Entry] = []
        self.violations: list[str] = []
        self._queue: list[tuple[float, int, Callable[[], None]]] = []
        self._seq = itertools.count()
        self.liveness_bound = liveness_bound(self.t, self.timings)
        self.double = False  # the engine runs twice right now (reported once per episode)
        self.up_since: float | None = None  # the engine has been up (``serving``) since
        self.down_since: float | None = None  # the engine has not been up since (the fault)
        self.counting = False  # downtime counts: the engine was up once, or a fault happened
        self.downtime = 0.0
        self.blocked_at: float | None = None  # last time the engine was down and no host could run it
        self._could = False  # at the last check: some host could run the engine, hands on
        self._waited = 0.0  # this outage's seconds while some host could run the engine
        self._allowed = 0.0  # ... and how many it may last (grows when a new failure hits it)
        self._pending = 0.0  # an allowance from an event in the same instant as the outage's start
        self._tight: float | None = None  # the outage began with a fenced power loss: this, not liveness_bound
        self._late = False
        self._graced: set[tuple[str, int]] = set()  # (failure, host id) already allowed for in this outage

    @property
    def now(self) -> float:
        return self.clock.monotonic()

    def wall(self) -> float:
        """Wall time of a host whose clock never jumped."""
        return self.clock.wall() + WALL_EPOCH

    # --- event queue -------------------------------------------------------------------------

    def at(self, when: float, fn: Callable[[], None]) -> None:
        heapq.heappush(self._queue, (when, next(self._seq), fn))

    def run(self, until: float) -> None:
        while self._queue and self._queue[0][0] <= until:
            when, _, fn = heapq.heappop(self._queue)
            self._advance(when)
            fn()
            self._check()
        self._advance(max(self.now, until))
        self._check()

    def log(self, host: int, what: str, detail: str = "", score: int | None = None) -> None:
        self.timeline.append(Entry(round(self.now, 1), host, what, detail, score))

    def fault(self, host: int, what: str, detail: str = "") -> None:
        """An injected fault: logged, and downtime counts from now on."""
        self.log(host, f"fault: {what}", detail)
        self.counting = True

    # --- sanlock model -----------------------------------------------------------------------

    def renewal_age(self, host_id: int) -> float:
        last = self.renewals.get(host_id)
        return float("inf") if last is None else self.now - last

    def lease_state(self, host_id: int) -> str:
        if host_id not in self.renewals:
            return "free"
        age = self.renewal_age(host_id)
        return "live" if age <= self.t.fail else "dead" if age > self.t.dead else "fail"

    def _renew(self, h: SimHost, generation: int) -> None:
        if h.generation != generation or not h.powered or not h.joined():
            return
        if h.sanlock_ok():
            self.renewals[h.id] = self.now
            self.at(self.now + self.t.renew, lambda: self._renew(h, generation))
        elif self.renewal_age(h.id) >= self.t.fail:
            self._fence(h)
        else:
            self.at(self.now + 1.0, lambda: self._renew(h, generation))  # a failed renewal is retried soon

    def _fence(self, h: SimHost) -> None:
        """sanlock on ``h`` could not renew for 8 x io_timeout: it kills its lease holders and drops the lockspace."""
        if h.vm.state != "down" and h.vm.holds_lease:
            self._vm_down(h, "killed", "sanlock could not renew the host-id lease", release=False)
        self.log(h.id, "sanlock: lockspace lost", f"no renewal for {self.t.fail:.0f} s")
        self._join(h)  # the agent adds the lockspace again; it completes once storage answers

    def _join(self, h: SimHost) -> None:
        """add_lockspace, retried while sanlock's I/O fails; it takes ``t.join`` from the moment I/O answers.

        A host id last written by another sanlock daemon (this host before a
        power cycle) and not released is waited on first (``t.join_wait``):
        delta_lease_acquire cannot tell a rebooted host from an intruder.
        """
        generation = h.generation
        h.joined_at = math.inf  # joining, not there yet

        def begin() -> None:
            if h.generation != generation or not h.powered:
                return
            if not h.sanlock_ok():
                self.at(self.now + 1.0, begin)
                return
            slot = self.slots.get(h.id)
            wait = 0.0 if slot is None or slot.free or slot.daemon == generation else self.t.join_wait
            if wait:
                why = f"host id {h.id} was held by this host's previous sanlock daemon: {wait:.0f} s"
                self.log(h.id, "sanlock: joining waits", why)
            h.joined_at = self.now + wait + self.t.join
            self.at(h.joined_at, done)

        def done() -> None:
            if h.generation != generation or not h.powered:
                return
            if not h.sanlock_ok():  # the final read failed: add_lockspace fails, the agent adds it again
                h.joined_at = math.inf
                begin()
                return
            self.renewals[h.id] = self.now
            self.slots[h.id] = Slot(generation, free=False)
            self.ls_generation[h.id] = self.ls_generation.get(h.id, 0) + 1
            self.log(h.id, "sanlock: host-id lease held")
            self.at(self.now + self.t.renew, lambda: self._renew(h, generation))

        begin()

    def _leave(self, h: SimHost) -> None:
        """rem_lockspace: the host id is released on disk (others see it free at once), if sanlock's I/O works."""
        if h.joined() and h.sanlock_ok():
            self.renewals.pop(h.id, None)
            self.slots[h.id] = Slot(h.generation, free=True)
            self.log(h.id, "sanlock: lockspace left", "host id released")
        h.joined_at = None

    def fence(self, h: SimHost, target: SimHost, judged: fsm.Judged | None = None) -> None:
        """``h`` fences ``target`` through its device: off, status off, then its host id freed (by ``h``'s sanlock I/O).

        First the record and the delta lease are read again: if either changed since ``judged``, nothing is done.
        A device that fails, never answers (``fence_timeout``) or keeps the host on fails the fencing: the outage may
        then last as long as without fencing."""
        if h.fence_outcome.status == fsm.RUNNING:
            return
        if judged is not None and self._changed_since(target.id, judged):
            h.fence_outcome = fsm.Outcome(fsm.FAILED, f"host {target.id} wrote again since it was judged dead: not fenced")
            self.log(h.id, "fence: aborted", f"host {target.id} wrote again since it was judged dead")
            return
        h.fence_outcome, generation, device = fsm.Outcome(fsm.RUNNING), h.generation, target.fence_device
        seen = self.delta(target.id)  # read before the off; freed after it only if unchanged (lease.free_host_id)
        self.log(h.id, "fence: powering off", f"host {target.id} (its device {device})")

        def failed(why: str) -> None:
            if h.generation == generation:
                h.fence_outcome = fsm.Outcome(fsm.FAILED, why)
                self.log(h.id, "fence: failed", f"host {target.id}: {why}")
                self._allow(self.liveness_bound - self.renewal_age(target.id))

        def done() -> None:
            if h.generation != generation:
                return  # the fencer itself lost power: its fencing ends with it
            if target.powered:
                self.power_off(target)
                self.log(target.id, "host: powered off by its fence device", f"fenced by host {h.id}")
            if not h.sanlock_ok():
                failed("the device confirmed it off, but its host id could not be freed (storage)")
                return
            if self.delta(target.id) != seen:  # a slow off that landed after the host renewed: nothing freed
                failed("the host renewed its lease before the off landed: its host id is not freed")
                return
            self.renewals.pop(target.id, None)
            self.slots[target.id] = Slot(self.slots.get(target.id, Slot(0, True)).daemon, free=True)
            h.fence_outcome = fsm.Outcome(fsm.DONE, f"host {target.id} off; its sanlock host id is free")
            self.log(h.id, "fence: confirmed", f"host {target.id} off, its host id freed")

        if device == "works":
            self.at(self.now + self.t.fence, done)
        elif device == "fails":
            self.at(self.now + 1.0, lambda: failed("the device's off failed"))
        elif device == "slow":
            self.at(
                self.now + self.t.fence_timeout, lambda: failed(f"the device's off did not finish in {self.t.fence_timeout:g} s")
            )
        else:
            self.at(self.now + 4.0, lambda: failed("the device accepted off but still reports the host on"))

    def _changed_since(self, host_id: int, judged: fsm.Judged) -> bool:
        """Host ``host_id``'s record or delta lease on disk differ from what it was judged dead on."""
        rec = records.decode_slot(host_id, bytes(self.meta[host_id * records.SLOT_SIZE : (host_id + 1) * records.SLOT_SIZE]))
        seq = rec.record.seq if isinstance(rec.record, records.HostRecord) else None
        return seq != judged.record_seq or self.delta(host_id) != (judged.generation, judged.timestamp)

    def delta(self, host_id: int) -> tuple[int, int] | None:
        """Host ``host_id``'s delta lease on disk: (lockspace generation, renewal time in ms; 0 when released)."""
        slot = self.slots.get(host_id)
        if slot is None:
            return None
        return self.ls_generation.get(host_id, 0), 0 if slot.free else int(self.renewals.get(host_id, 0.0) * 1000) + 1

    # --- engine VM model ---------------------------------------------------------------------

    def vm_action(self, h: SimHost, action: str, target: int = 0) -> None:
        vm = h.vm
        if action == fsm.MIGRATE and vm.state == "up":
            self.migrate(h, self.hosts.get(target))
        if action == fsm.START and vm.state == "down":
            vm.state, vm.down_reason, vm.detail, vm.waiting = "starting", "", "acquiring the engine lease", ""
            since, generation = self.now, h.generation
            if h.start_fails:
                self.at(self.now + self.t.lease_delay, lambda: self._start_failed(h, generation))
            else:
                self.at(self.now + self.t.lease_delay, lambda: self._acquire(h, since, generation))
        elif action == fsm.SHUTDOWN and vm.state in ("up", "paused", "starting"):
            self.at(self.now + self.t.shutdown, lambda: self._vm_stop(h, "shutdown", "ACPI shutdown"))
        elif action == fsm.POWEROFF and vm.state != "down":
            self.at(self.now + self.t.poweroff, lambda: self._vm_stop(h, "poweroff", "powered off"))

    def _start_failed(self, h: SimHost, generation: int) -> None:
        if h.generation == generation and h.vm.state == "starting":
            self._vm_down(h, "start-failed", "QEMU exited at once (the start failed)")

    def _vm_stop(self, h: SimHost, reason: str, detail: str) -> None:
        if h.vm.state == "down" or (reason == "shutdown" and h.acpi_ignored):
            return
        self._vm_down(h, reason, detail)

    def crash_vm(self, h: SimHost) -> None:
        """QEMU dies: sanlock releases the lease with the process."""
        if h.vm.state != "down":
            self._vm_down(h, "crashed", "QEMU killed")

    def migrate(self, src: SimHost, dst: SimHost | None) -> None:
        """A live migration (by the agent, or by hand): the memory is copied for ``t.migrate`` while the guest runs
        on ``src`` and an incoming VM waits, paused, on ``dst``; then the switch-over (``_switch_over``)."""
        vm = src.vm
        if vm.state != "up" or vm.migration.status == fsm.RUNNING:
            return
        if dst is None or dst is src or not dst.powered or dst.vm.state != "down":
            vm.migration = fsm.Outcome(fsm.FAILED, f"host {dst.id if dst else '?'} cannot take it")
            self.log(src.id, "vm: migration refused", vm.migration.detail)
            return
        vm.migration = fsm.Outcome(fsm.RUNNING)
        dst.vm.state, dst.vm.detail, dst.vm.down_reason = "starting", INCOMING, ""
        self.log(src.id, "vm: migration begins", f"to host {dst.id}")
        generations = (src.generation, dst.generation)
        self.at(self.now + self.t.migrate, lambda: self._switch_over(src, dst, generations))

    def _switch_over(self, src: SimHost, dst: SimHost, generations: tuple[int, int]) -> None:
        """libvirt's sanlock driver: the source pauses the guest and releases the engine lease, the target acquires
        it (never waiting) before its guest runs; if it cannot, the source takes the lease back and runs on. A side
        that lost power mid-way ends the migration there: the other side's VM goes on (the source) or goes away."""
        src_on = src.generation == generations[0] and src.vm.state == "up" and src.vm.holds_lease
        dst_on = dst.generation == generations[1] and dst.vm.state == "starting" and dst.vm.detail == INCOMING
        if not src_on:
            if dst_on:
                self._vm_down(dst, "migration-failed", f"host {src.id}, the source, went away", release=False)
            return
        why = ""
        if not dst_on:
            why = "the connection to the target was lost"
        elif src.migration_fails or not dst.joined() or not dst.sanlock_ok() or self.renewal_age(dst.id) >= self.t.fail:
            why = "the target could not take the engine lease"
            self._vm_down(dst, "migration-failed", "the engine lease could not be acquired here", release=False)
        if why:
            src.vm.migration = fsm.Outcome(fsm.FAILED, why)
            self.log(src.id, "vm: migration failed", why)
            return
        self._vm_down(src, "migrated", f"to host {dst.id}")
        self.lease_owner = (dst.id, self.ls_generation.get(dst.id, 0))
        dst.vm.state, dst.vm.holds_lease, dst.vm.detail = "up", True, "running"
        self.log(dst.id, "vm: engine up", f"migrated from host {src.id}")

    def _wait(self, h: SimHost, why: str, detail: str) -> None:
        """The lease acquire blocks (as it does inside libvirt): the VM shows it, the timeline logs it once."""
        h.vm.detail = why
        if h.vm.waiting != why:
            h.vm.waiting = why
            self.log(h.id, "sanlock: engine lease acquire waits", detail)

    def _acquire(self, h: SimHost, since: float, generation: int) -> None:
        vm = h.vm
        if h.generation != generation or vm.state != "starting" or not h.powered:
            return
        if not h.joined() or self.renewal_age(h.id) >= self.t.fail:  # our lockspace is gone: so is the request
            self._vm_down(h, "start-failed", "sanlock lockspace lost while acquiring the engine lease", release=False)
            return
        if not h.sanlock_ok():  # paxos needs our own I/O: the request waits
            self._wait(h, "waiting for this host's storage", "this host's sanlock I/O does not answer")
            self.at(self.now + 1.0, lambda: self._acquire(h, since, generation))
            return
        if self.lease_owner is not None and self.lease_owner[0] != h.id:
            owner, owner_gen = self.lease_owner
            renewed = self.renewals.get(owner)
            slot = self.slots.get(owner)
            if self.ls_generation.get(owner) != owner_gen:
                # The owner has rejoined since it took the lease: that generation of it is dead (sanlock's rule).
                self.log(h.id, "sanlock: engine lease taken over", f"from host {owner}'s previous lockspace generation")
            elif slot is not None and slot.free:  # paxos_acquire: "owner delta free" (released, or freed after fencing)
                self.log(h.id, "sanlock: engine lease taken over", f"host {owner}'s host id is free")
            elif renewed is not None and (self.now - renewed < self.t.renew or renewed > since):
                self._vm_down(h, "lease-busy", f"host {owner} holds the engine lease (sanlock -243)", release=False)
                return
            elif self.lease_state(owner) != "dead":
                free_at = (renewed or 0.0) + self.t.dead
                self._wait(
                    h,
                    f"waiting for host {owner}'s lease to expire",
                    f"host {owner} holds it and sanlock sees it {self.lease_state(owner)}; it expires at t={free_at:.1f}",
                )
                self.at(self.now + 1.0, lambda: self._acquire(h, since, generation))
                return
            else:
                self.log(h.id, "sanlock: engine lease taken over", f"from dead host {owner}")
        self.lease_owner = (h.id, self.ls_generation.get(h.id, 0))
        vm.holds_lease, vm.detail, vm.waiting = True, "booting", ""

        def ready() -> None:
            if h.generation == generation and vm.state == "starting" and vm.holds_lease:
                vm.state, vm.detail = "up", "running"
                self.log(h.id, "vm: engine up")

        self.at(self.now + self.t.boot, ready)

    def _vm_down(self, h: SimHost, reason: str, detail: str, release: bool = True, fenced: bool = False) -> None:
        vm = h.vm
        was = vm.state
        if vm.holds_lease:
            if release:  # the others may start the engine at once
                self._allow(restart_bound(self.t, self.timings))
            elif fenced and self.fence_after is not None:  # a working device: fenced, the lease taken at once
                self._tight = fence_bound(self.t, self.timings, self.fence_after)
                self._allow(self._tight)
            elif reason != "migrated":  # its lease must expire first: the outage may last from its last renewal
                self._allow(self.liveness_bound - self.renewal_age(h.id))
        vm.state, vm.down_reason, vm.detail, vm.waiting = "down", reason, detail, ""
        if vm.holds_lease:
            vm.holds_lease = False
            if release and self.lease_owner and self.lease_owner[0] == h.id:  # else it stays owned on disk
                self.lease_owner = None
        if was != "down" or reason == "lease-busy":
            self.log(h.id, f"vm: {reason}", detail)

    # --- host lifecycle ----------------------------------------------------------------------

    def power_on(self, h: SimHost, cfg: AgentConfig, engine_running: bool = False) -> None:
        if h.powered:
            return
        if self.lease_owner is not None and self.lease_owner[0] == h.id and self.fence_after is not None:
            # back before anyone fenced it: its new sanlock waits for its old host id, which nobody may free now
            self._allow(self.liveness_bound - self.renewal_age(h.id))
        h.powered, h.generation = True, h.generation + 1
        h.vm, h.fence_outcome = SimVM(), fsm.Outcome()  # a fencing under way ended with the power
        if engine_running:
            h.vm.state, h.vm.holds_lease, h.vm.detail = "up", True, "running"
            self.renewals[h.id] = self.now
            self.slots[h.id] = Slot(h.generation, free=False)
            self.ls_generation[h.id] = self.ls_generation.get(h.id, 0) + 1
            self.lease_owner = (h.id, self.ls_generation[h.id])
            h.joined_at = self.now
            generation = h.generation
            self.at(self.now + self.t.renew, lambda: self._renew(h, generation))
        else:
            self._join(h)
        self._start_agent(h, cfg)

    def power_off(self, h: SimHost) -> None:
        fenced = self.fence_after is not None and h.fence_device == "works" and h.vm.holds_lease
        h.powered, h.generation, h.agent, h.agent_run = False, h.generation + 1, None, h.agent_run + 1
        if h.vm.state != "down":
            self._vm_down(h, "host powered off", "", release=False, fenced=fenced)
        h.joined_at = None

    def shutdown_host(self, h: SimHost, cfg: AgentConfig | None = None) -> None:
        """A graceful shutdown (a reboot with ``cfg``): the agent stops cleanly, the engine VM shuts down
        (powered off after ``timings.stop`` if it ignores ACPI), sanlock leaves the lockspace, the host powers off.
        """
        if not h.powered:
            return
        self.stop_agent(h)
        generation = h.generation
        if h.vm.state != "down":
            self.vm_action(h, fsm.SHUTDOWN)

            def force() -> None:
                if h.generation == generation:
                    self.vm_action(h, fsm.POWEROFF)

            self.at(self.now + self.timings.stop, force)

        def halt() -> None:
            if h.generation != generation:
                return
            if h.vm.state != "down":
                self.at(self.now + 1.0, halt)
                return
            self._leave(h)
            self.power_off(h)
            self.log(h.id, "host: shut down")
            if cfg is not None:
                self.at(self.now + self.t.reboot, lambda: self._boot(h, cfg))

        halt()

    def _boot(self, h: SimHost, cfg: AgentConfig) -> None:
        if not h.powered:  # unless someone powered it on meanwhile
            self.log(h.id, "host: powered on", "rebooted")
            self.power_on(h, cfg)

    def _start_agent(self, h: SimHost, cfg: AgentConfig) -> None:
        h.env = SimEnv(h)
        h.agent, h.agent_run = Agent(h.env, cfg), h.agent_run + 1
        run = h.agent_run
        self.at(self.now + 0.1 * h.id, lambda: self._cycle(h, run))

    def stop_agent(self, h: SimHost) -> None:
        """The agent exits cleanly (the VM and sanlock keep running)."""
        if h.agent is not None and h.env is not None:
            h.agent.stop()
            for old, new, reason in h.env.changes:
                self.log(h.id, f"{old} -> {new}", reason, 0)
            h.env.changes.clear()
            h.agent, h.agent_run = None, h.agent_run + 1

    def rogue_agent(self, h: SimHost, score: int) -> None:
        """The agent hangs in a loop that keeps republishing its record (live) as EngineDown with ``score``, and never acts."""
        h.agent, h.agent_run = None, h.agent_run + 1
        run = h.agent_run

        def publish() -> None:
            if h.agent_run != run:
                return
            slot = slice(h.id * records.SLOT_SIZE, (h.id + 1) * records.SLOT_SIZE)
            rec = records.decode_slot(h.id, bytes(self.meta[slot])).record
            if h.metadata_ok() and isinstance(rec, records.HostRecord):
                rec = rec._replace(seq=rec.seq + 1, wall_time=h.clock.wall(), score=score, state=fsm.S.DOWN)
                self.meta[slot] = records.encode_host(rec)
            self.at(self.now + self.timings.loop, publish)

        publish()

    def restart_agent(self, h: SimHost, cfg: AgentConfig) -> None:
        """A new agent process (the VM and sanlock keep running)."""
        if h.powered:
            self._start_agent(h, cfg)

    def _cycle(self, h: SimHost, run: int) -> None:
        if h.agent_run != run or h.agent is None or h.env is None:
            return
        stalled = not h.metadata_ok()
        decision = h.agent.cycle()
        for old, new, reason in h.env.changes:
            self.log(h.id, f"{old} -> {new}", reason, decision.score.total)
        h.env.changes.clear()
        delay = decision.delay if decision.delay > 0 else 0.5
        if stalled:  # the agent waited out its storage timeout
            delay += self.t.storage_timeout
        self.at(self.now + delay, lambda: self._cycle(h, run))

    # --- invariants --------------------------------------------------------------------------

    def serving(self, h: SimHost) -> bool:
        """The engine is up on ``h``: its VM runs healthy, its disk answers, and its host still holds the sanlock lease.

        An engine that is up but unhealthy, or isolated from the shared storage
        (its disk and its lease are there), does not count as up.
        """
        return (
            h.vm.state == "up"
            and h.vm.holds_lease
            and not h.engine_health_bad
            and h.disk_ok()
            and self.renewal_age(h.id) < self.t.fail
        )

    def engine_host(self) -> int | None:
        return next((h.id for h in self.hosts.values() if self.serving(h)), None)

    def engine_vms(self) -> tuple[str, ...]:
        """Each engine VM that is not down, and why it is not up: "host 1: VM up, health bad"."""
        out = []
        for h in self.hosts.values():
            if h.vm.state == "down":
                continue
            why = [f"host {h.id}: VM {h.vm.state}"]
            if h.vm.state != "up":
                why.append(h.vm.detail)
            elif h.engine_health_bad:
                why.append("health bad")
            if not h.disk_ok():
                why.append("storage unreachable")
            if self.renewal_age(h.id) >= self.t.fail:
                why.append("host-id lease lost")
            out.append(", ".join(why))
        return tuple(out)

    def fit(self, h: SimHost) -> bool:
        """Could ``h`` run the engine now: powered, storage, lockspace, agent, VM starts work, no maintenance or failures held."""
        return (
            h.powered
            and h.metadata_ok()
            and h.sanlock_ok()
            and h.joined()
            and self.renewal_age(h.id) < self.t.fail
            and h.agent is not None
            and len(h.agent.memory.failed_starts) <= MAX_FAILED_STARTS
            and not (h.local_maintenance or h.libvirt_down or h.engine_health_bad or h.start_fails)
        )

    def _allow(self, seconds: float) -> None:
        """A new failure hit the engine: the outage may last ``seconds`` more (while some host could run it)."""
        if self.down_since is None:
            self._pending = max(self._pending, seconds)
        else:
            self._allowed = max(self._allowed, self._waited + seconds)

    def _advance(self, when: float) -> None:
        """Move the clock to ``when``; the outage, if any, lasted that much longer (as things stood at the last check)."""
        dt = when - self.now
        self.clock.advance(dt)
        if self.down_since is not None:
            self.downtime += dt if self.counting else 0.0
            self._waited += dt if self._could else 0.0

    def _check(self) -> None:
        holders = [h.id for h in self.hosts.values() if h.vm.state in ("starting", "up", "paused") and h.vm.holds_lease]
        if len(holders) > 1 and not self.double:
            self.violations.append(f"t={self.now:.1f}: engine running on hosts {holders}")
        for h in self.hosts.values():
            if h.vm.state == "up" and not h.vm.holds_lease:
                self.violations.append(f"t={self.now:.1f}: engine VM running on host {h.id} without the engine lease")
        self.double = len(holders) > 1
        self._grace_new_failures()
        if self.engine_host() is not None:
            if self.up_since is None:
                self.up_since = self.now
            self.counting, self.down_since, self._pending, self._late, self._graced = True, None, 0.0, False, set()
            self._tight = None
            return
        self.up_since = None
        if self.down_since is None:
            self.down_since, self._waited = self.now, 0.0
            floor = self.liveness_bound if self._tight is None else self._tight
            self._allowed, self._pending, self._tight = max(floor, self._pending), 0.0, None
        self._check_liveness()

    def _grace_new_failures(self) -> None:
        """Allow for failures the agents cannot see at once (each once per host and outage).

        An engine VM up but unhealthy gets the agent's grace before it is
        replaced. A host whose lease acquire waits on its own sanlock I/O cannot
        tell (its lockspace looks held) until sanlock gives up on the renewals
        and fails the start; then the others start the engine. If that start
        waits for a dead owner's lease, it began without a fencing (this host
        could not read the lockspace to judge the owner): the normal path.
        """
        for h in self.hosts.values():
            if h.vm.state == "up" and h.vm.holds_lease and h.engine_health_bad and ("unhealthy", h.id) not in self._graced:
                self._graced.add(("unhealthy", h.id))
                self._allow(unhealthy_grace(self.t, self.timings))
            if h.vm.state == "starting" and not h.vm.holds_lease and not h.sanlock_ok() and ("stuck", h.id) not in self._graced:
                self._graced.add(("stuck", h.id))
                self._allow(self.t.fail - self.renewal_age(h.id) + restart_bound(self.t, self.timings))
                owner = self.lease_owner[0] if self.lease_owner is not None else h.id
                if owner != h.id:
                    self._allow(self.liveness_bound - self.renewal_age(owner))

    def _check_liveness(self) -> None:
        """The engine must be up again within the allowance of the faults that hit it while some host could run it."""
        slot0 = records.decode_slot(0, bytes(self.meta[: records.SLOT_SIZE])).record
        hands_off = isinstance(slot0, records.GlobalRecord) and slot0.maintenance_active(self.wall())
        self._could = not hands_off and any(self.fit(h) for h in self.hosts.values())
        if not self._could:
            self.blocked_at = self.now
        if self._waited > self._allowed and not self._late:
            self._late = True
            assert self.down_since is not None
            self.violations.append(
                f"t={self.now:.1f}: engine not up since t={self.down_since:.1f}, {self._waited:.0f} s of it "
                f"while a host could run it (allowed {self._allowed:.0f} s)"
            )
