"""``hectl ha simulate``: several hosts run the real agent on a virtual clock.

Each simulated host runs ``hectl.ha.agent.Agent`` (the real state machine,
score and record code) against simulated shared storage (the real on-storage
format in memory), a simulated sanlock (delta leases renewed every
2 x io_timeout; others see a host FAIL after 8 x io_timeout and DEAD after
8 x io_timeout + 60 s; the engine lease can be taken over only from a dead
owner, and a host that cannot renew for 8 x io_timeout has its lease holders
killed) and a simulated engine VM. Faults come from a scenario file
(docs/simulate.md). The output is a timeline; safety (never two engines at
once) is checked after every event.
"""

from __future__ import annotations

import heapq
import itertools

from hectl.clock import VirtualClock
from hectl.config import HAConfig
from hectl.errors import StorageTimeout
from hectl.frozen import Frozen
from hectl.ha import fsm
from hectl.ha.agent import Agent, AgentConfig
from hectl.ha.score import MAX_FAILED_STARTS, HostHealth
from hectl.lease import LEASE_FREE
from hectl.storage import records
from hectl.storage.metadata import MetadataSnapshot

TYPE_CHECKING = False  # typing.TYPE_CHECKING would import typing (see hectl.frozen)
if TYPE_CHECKING:
    import threading
    from collections.abc import Callable

    from hectl.clock import Clock


class SimTimings(Frozen):
    """Timing of the simulated world (seconds)."""

    io_timeout: float = 10.0
    join: float = 20.0  # add_lockspace (about 2 x io_timeout)
    boot: float = 8.0  # engine VM start to healthy
    shutdown: float = 4.0  # graceful (ACPI) shutdown
    poweroff: float = 1.0
    lease_delay: float = 0.3  # from the start request to libvirt's lease acquire (QEMU is launched first)
    storage_timeout: float = 5.0  # the agent's hard I/O timeout
    liveness_window: float = 30.0

    @property
    def renew(self) -> float:
        return 2 * self.io_timeout

    @property
    def fail(self) -> float:
        return 8 * self.io_timeout

    @property
    def dead(self) -> float:
        return 8 * self.io_timeout + 60


WALL_EPOCH = 1_800_000_000.0  # simulated wall clocks start here (2027)


def liveness_bound(t: SimTimings, timings: HAConfig) -> float:
    """How long the engine may stay down while some host could run it (docs/simulate.md).

    The clock starts when the engine stops running (or when the host that took
    the engine lease to start it fails in turn) and runs only while some host
    is fit to run the engine.

    The old owner's engine lease expires 8 x io_timeout + 60 s after its last
    renewal; a host that was itself just (re)joining needs the join, a window of
    history, and up to two agent loops; then the engine boots.
    """
    return t.dead + t.join + t.liveness_window + 2 * timings.loop + t.boot


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
        self.storage_lost = False
        self.network_ok = True
        self.engine_health_bad = False
        self.local_maintenance = False
        self.acpi_ignored = False
        self.libvirt_down = False
        self.joined_at: float | None = None  # sanlock lockspace joined (or being joined) since
        self.generation = 0  # bumps on power-off/on: events scheduled for an earlier boot are ignored
        self.agent_run = 0  # bumps on agent start/stop: cycles scheduled for an earlier agent are ignored

    def storage_ok(self) -> bool:
        return self.powered and not self.storage_lost and self.world.now >= self.stall_until


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
        if not self.host.storage_ok():
            raise StorageTimeout("simulated storage does not answer")
        w = self.world
        data = bytes(w.meta)
        slots = records.decode_metadata([(0, data)], len(data), max_host_id=len(w.hosts))
        return MetadataSnapshot(slots, len(data), True, 1.0, self.clock.monotonic(), self.clock.wall())

    def write_record(self, record: records.HostRecord) -> None:
        if not self.host.storage_ok():
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
        return {o.id: self.world.lease_state(o.id) for o in self.world.hosts.values() if o.id != self.host.id}

    def engine_lease(self) -> int:
        """sanlock read_resource_owners: the owner, unless it released the lease or has rejoined since (new generation)."""
        owner = self.world.lease_owner
        if owner is None or self.world.ls_generation.get(owner[0]) != owner[1]:
            return LEASE_FREE
        return owner[0]

    def vm(self) -> fsm.LocalVM:
        vm = self.host.vm
        if self.host.libvirt_down:
            return fsm.LocalVM("unknown", detail="libvirtd does not answer")
        if vm.state == "up":
            return fsm.LocalVM("up", "bad" if self.host.engine_health_bad else "good", detail="running")
        if vm.state == "starting":
            return fsm.LocalVM("starting", "unknown", detail=vm.detail)
        return fsm.LocalVM(vm.state, "unknown", down_reason=vm.down_reason, detail=vm.detail)

    def act(self, action: str) -> None:
        self.world.vm_action(self.host, action)

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
        self.clock = VirtualClock(monotonic=0.0, wall=0.0)
        self.meta = bytearray(records.SLOT_SIZE * (nhosts + 1))
        self.hosts = {i: SimHost(self, i) for i in range(1, nhosts + 1)}
        self.renewals: dict[int, float] = {}  # host id -> world time of its last delta-lease renewal
        self.lease_owner: tuple[int, int] | None = None  # (host id, its lockspace generation) in the lease's leader record
        self.ls_generation: dict[int, int] = {}  # host id -> generation of its current lockspace membership
        self.timeline: list[Entry] = []
        self.violations: list[str] = []
        self._queue: list[tuple[float, int, Callable[[], None]]] = []
        self._seq = itertools.count()
        self.liveness_bound = liveness_bound(self.t, self.timings)
        self.double = False  # the engine runs twice right now (reported once per episode)
        self.waiting_since: float | None = None
        self.liveness_late = False
        self.up_since: float | None = None  # engine healthy somewhere since

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
            self.clock.advance(when - self.now)
            fn()
            self._check()
        self.clock.advance(max(0.0, until - self.now))

    def log(self, host: int, what: str, detail: str = "", score: int | None = None) -> None:
        self.timeline.append(Entry(round(self.now, 1), host, what, detail, score))

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
        if h.generation != generation or not h.powered or h.joined_at is None:
            return
        if h.storage_ok():
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
        h.joined_at = self.now + self.t.join
        generation = h.generation

        def joined() -> None:
            if h.generation != generation or not h.powered:
                return
            if not h.storage_ok():
                self.at(self.now + 1.0, joined)  # add_lockspace keeps trying while storage is away
                return
            self.renewals[h.id] = self.now
            self.ls_generation[h.id] = self.ls_generation.get(h.id, 0) + 1
            self.log(h.id, "sanlock: host-id lease held")
            self.at(self.now + self.t.renew, lambda: self._renew(h, generation))

        self.at(h.joined_at, joined)

    # --- engine VM model ---------------------------------------------------------------------

    def vm_action(self, h: SimHost, action: str) -> None:
        vm = h.vm
        if action == fsm.START and vm.state == "down":
            vm.state, vm.down_reason, vm.detail = "starting", "", "acquiring the engine lease"
            since, generation = self.now, h.generation
            self.at(self.now + self.t.lease_delay, lambda: self._acquire(h, since, generation))
        elif action == fsm.SHUTDOWN and vm.state in ("up", "paused", "starting"):
            self.at(self.now + self.t.shutdown, lambda: self._vm_stop(h, "shutdown", "ACPI shutdown"))
        elif action == fsm.POWEROFF and vm.state != "down":
            self.at(self.now + self.t.poweroff, lambda: self._vm_stop(h, "poweroff", "powered off"))

    def _vm_stop(self, h: SimHost, reason: str, detail: str) -> None:
        if h.vm.state == "down" or (reason == "shutdown" and h.acpi_ignored):
            return
        self._vm_down(h, reason, detail)

    def crash_vm(self, h: SimHost) -> None:
        """QEMU dies: sanlock releases the lease with the process."""
        if h.vm.state != "down":
            self._vm_down(h, "crashed", "QEMU killed")

    def migrate(self, src: SimHost, dst: SimHost) -> None:
        """Live migration (done by the engine, not the agent): the VM and its lease move to ``dst``."""
        if src.vm.state != "up" or not dst.powered:
            return
        self._vm_down(src, "migrated", f"to host {dst.id}", release=False)
        dst.vm.state, dst.vm.holds_lease, dst.vm.detail = "up", True, "running"
        self.lease_owner = (dst.id, self.ls_generation.get(dst.id, 0))
        self.log(dst.id, "vm: engine up", f"migrated from host {src.id}")

    def _acquire(self, h: SimHost, since: float, generation: int) -> None:
        vm = h.vm
        if h.generation != generation or vm.state != "starting" or not h.powered:
            return
        if h.joined_at is None or self.renewal_age(h.id) >= self.t.fail:  # our lockspace is gone: so is the request
            self._vm_down(h, "start-failed", "sanlock lockspace lost while acquiring the engine lease", release=False)
            return
        if not h.storage_ok():  # paxos needs our own I/O: the request waits
            self.at(self.now + 1.0, lambda: self._acquire(h, since, generation))
            return
        if self.lease_owner is not None and self.lease_owner[0] != h.id:
            owner, owner_gen = self.lease_owner
            renewed = self.renewals.get(owner)
            if self.ls_generation.get(owner) != owner_gen:
                # The owner has rejoined since it took the lease: that generation of it is dead (sanlock's rule).
                self.log(h.id, "sanlock: engine lease taken over", f"from host {owner}'s previous lockspace generation")
            elif renewed is not None and (self.now - renewed < self.t.renew or renewed > since):
                self._vm_down(h, "lease-busy", f"host {owner} holds the engine lease (sanlock -243)", release=False)
                return
            elif self.lease_state(owner) != "dead":
                vm.detail = f"waiting for host {owner}'s lease to expire"
                self.at(self.now + 1.0, lambda: self._acquire(h, since, generation))
                return
            else:
                self.log(h.id, "sanlock: engine lease taken over", f"from dead host {owner}")
        self.lease_owner = (h.id, self.ls_generation.get(h.id, 0))
        self.waiting_since = None  # a host is starting the engine: if it fails too, the liveness clock starts again
        vm.holds_lease, vm.detail = True, "booting"

        def ready() -> None:
            if h.generation == generation and vm.state == "starting" and vm.holds_lease:
                vm.state, vm.detail = "up", "running"
                self.log(h.id, "vm: engine up")

        self.at(self.now + self.t.boot, ready)

    def _vm_down(self, h: SimHost, reason: str, detail: str, release: bool = True) -> None:
        vm = h.vm
        was = vm.state
        vm.state, vm.down_reason, vm.detail = "down", reason, detail
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
        h.powered, h.generation = True, h.generation + 1
        h.vm = SimVM()
        if engine_running:
            h.vm.state, h.vm.holds_lease, h.vm.detail = "up", True, "running"
            self.renewals[h.id] = self.now
            self.ls_generation[h.id] = self.ls_generation.get(h.id, 0) + 1
            self.lease_owner = (h.id, self.ls_generation[h.id])
            h.joined_at = self.now
            generation = h.generation
            self.at(self.now + self.t.renew, lambda: self._renew(h, generation))
        else:
            self._join(h)
        self._start_agent(h, cfg)

    def power_off(self, h: SimHost) -> None:
        h.powered, h.generation, h.agent, h.agent_run = False, h.generation + 1, None, h.agent_run + 1
        if h.vm.state != "down":
            self._vm_down(h, "host powered off", "", release=False)
        h.joined_at = None

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

    def restart_agent(self, h: SimHost, cfg: AgentConfig) -> None:
        """A new agent process (the VM and sanlock keep running)."""
        if h.powered:
            self._start_agent(h, cfg)

    def _cycle(self, h: SimHost, run: int) -> None:
        if h.agent_run != run or h.agent is None or h.env is None:
            return
        stalled = not h.storage_ok()
        decision = h.agent.cycle()
        for old, new, reason in h.env.changes:
            self.log(h.id, f"{old} -> {new}", reason, decision.score.total)
        h.env.changes.clear()
        delay = decision.delay if decision.delay > 0 else 0.5
        if stalled:  # the agent waited out its storage timeout
            delay += self.t.storage_timeout
        self.at(self.now + delay, lambda: self._cycle(h, run))

    # --- invariants --------------------------------------------------------------------------

    def _check(self) -> None:
        holders = [h.id for h in self.hosts.values() if h.vm.state in ("starting", "up", "paused") and h.vm.holds_lease]
        if len(holders) > 1 and not self.double:
            self.violations.append(f"t={self.now:.1f}: engine running on hosts {holders}")
        self.double = len(holders) > 1
        healthy = any(h.vm.state == "up" and not h.engine_health_bad for h in self.hosts.values())
        if not healthy:
            self.up_since = None
        elif self.up_since is None:
            self.up_since = self.now
        self._check_liveness()

    def fit(self, h: SimHost) -> bool:
        """Could ``h`` run the engine now: powered, storage, lockspace, agent, no maintenance or failures held against it."""
        return (
            h.powered
            and h.storage_ok()
            and h.joined_at is not None
            and self.renewal_age(h.id) < self.t.fail
            and h.agent is not None
            and len(h.agent.memory.failed_starts) <= MAX_FAILED_STARTS
            and not (h.local_maintenance or h.libvirt_down or h.engine_health_bad)
        )

    def _check_liveness(self) -> None:
        """The engine VM must run again within ``liveness_bound`` while some host could run it all along."""
        running = any(h.vm.state in ("up", "paused") for h in self.hosts.values())
        slot0 = records.decode_slot(0, bytes(self.meta[: records.SLOT_SIZE])).record
        hands_off = isinstance(slot0, records.GlobalRecord) and slot0.maintenance_active(self.wall())
        if running or hands_off or not any(self.fit(h) for h in self.hosts.values()):
            self.waiting_since, self.liveness_late = None, False
            return
        if self.waiting_since is None:
            self.waiting_since = self.now
        elif self.now - self.waiting_since > self.liveness_bound and not self.liveness_late:
            self.liveness_late = True
            self.violations.append(
                f"t={self.now:.1f}: engine not running for {self.now - self.waiting_since:.0f} s "
                f"although a host could run it (bound {self.liveness_bound:.0f} s)"
            )
