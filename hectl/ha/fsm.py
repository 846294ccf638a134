"""The HA agent's state machine: ``step(memory, observations) -> Decision``. Pure.

The driver (``hectl ha run``, or the simulator) collects ``Observations``,
calls ``step``, carries out the decision's actions, publishes the new state and
score, and sleeps ``decision.delay``. Every timeout is measured on this host's
monotonic clock (``Observations.now``); nothing here reads a clock.

What differs from the original, on purpose:

- a host that loses a start race goes back to ``EngineDown`` with no penalty
  (the original sat at score 0 for ten minutes);
- starting is never attempted by two hosts that can see each other: the best
  score wins and equal scores go to the lower host id;
- a remote engine host whose record went stale still counts as running the
  engine while sanlock says its host-id lease is alive; once sanlock calls it
  failed or dead, the next best host starts the engine (the start waits in
  sanlock until the old owner's lease has expired, so the engine can never run
  twice);
- engine failures (failed starts, crashes, bad health that forced a stop) are
  counted on one clock in one window: each costs 50 points, so another host is
  preferred next time, and more than three within ten minutes zero the score;
- an engine that dies under its host is counted as a failed start and the
  election runs again at once (no ten-minute score-0 exile); so is a start
  that never becomes healthy within ``[ha] starting``. A host whose failures
  zeroed its score while no other host can start the engine says so
  (``EngineRetryWait``, with the time of its next retry in the reason);
- no record holds the cluster hostage. A remote score outside 0..``[score]
  base`` (the most any host can publish) makes that host ineligible. A remote
  record's claim that sanlock does not back (the engine up or starting there
  without that host holding the engine lease, or a better score in
  EngineDown) is believed for ``claim_wait`` seconds at most (3 loops + 2
  sanlock io_timeouts: one slow cycle of the claimant plus the spread of the
  hosts' sanlock views); then the claimant is passed over (its record counts
  as silent; sanlock's word about it still counts) for ``retry_window`` seconds,
  renewed while it keeps claiming, and this host goes on as if it were not
  there. A host that waits for a failing owner's engine lease to be freed is
  backed by sanlock and never passed over; a start by a passed-over host is
  still guarded by the engine lease, so this never runs the engine twice;
- local maintenance of the engine's host migrates the engine live to the
  best host that can take it (``EngineMigratingAway``), and only if that
  fails, or no host can take it, shuts it down for another host to start;
  an engine VM that leaves this host while another host holds the engine
  lease (a migration, by the agent or by hand) is not an engine failure;
- with fencing (docs/fencing.md), the host that would start the engine
  does not wait out sanlock's host_dead_seconds for an engine host whose
  record and sanlock renewals have both stopped for ``[fencing]
  dead_after`` (and for a missed renewal at least): it powers that host off
  through its fence device (``FencingHost``) and, once the device reports it
  off and its host id is freed, starts the engine at once; a fence that
  fails leaves the normal path, never a guess;
- no record's wall time is used here: liveness is sequence-number change on
  this host's monotonic clock (``liveness.py``), and so is global maintenance
  expiry (``liveness.MaintenanceClock``).
"""

from __future__ import annotations

from hectl.frozen import Frozen
from hectl.ha import score as score_mod
from hectl.ha.score import MAX_FAILED_STARTS
from hectl.lease import LEASE_UNKNOWN

TYPE_CHECKING = False  # typing.TYPE_CHECKING would import typing (see hectl.frozen)
if TYPE_CHECKING:
    from hectl.config import HAConfig, ScoreConfig
    from hectl.ha.score import HostHealth, Score

    # next state, actions, reason, delay (None: loop), the event it records in ``Memory`` (NONE: nothing)
    Step = tuple[str, tuple[str, ...], str, float | None, str]


class S:
    """State names, as published in host records."""

    START = "StartUp"
    DOWN = "EngineDown"
    START_VM = "EngineStart"
    STARTING = "EngineStarting"
    UP = "EngineUp"
    UP_BAD = "EngineUpBadHealth"
    STOP = "EngineStop"
    FORCE_STOP = "EngineForceStop"
    MAYBE_AWAY = "EngineMaybeAway"
    UNEXPECTEDLY_DOWN = "EngineUnexpectedlyDown"
    GLOBAL_MAINTENANCE = "GlobalMaintenance"
    LOCAL_MAINTENANCE = "LocalMaintenance"
    UNKNOWN_VM = "UnknownLocalVmState"
    RETRY_WAIT = "EngineRetryWait"  # engine down; this host's failures zeroed its score and no other host can start it
    MIGRATE_AWAY = "EngineMigratingAway"  # local maintenance: the engine is being live-migrated to another host
    FENCE = "FencingHost"  # the engine's host is judged dead: powering it off through its fence device
    STOPPED = "AgentStopped"


ALL_STATES = tuple(v for k, v in vars(S).items() if not k.startswith("_"))

# Actions the driver carries out.
START = "start"
SHUTDOWN = "shutdown"
POWEROFF = "poweroff"
MIGRATE = "migrate"  # live-migrate the engine VM to ``Memory.target``
FENCE = "fence"  # power host ``Memory.target`` off through its fence device, confirm it, free its host id

# Events a step records in ``Memory`` (decided on by type, never read back from the reason's text).
NONE = ""
ENGINE_FAILURE = "engine-failure"  # a failed start, a crash, bad health: counted in ``failed_starts``
FENCED = "fenced"  # ``Memory.target`` confirmed off: counted dead until it returns
FENCE_FAILED = "fence-failed"  # not fenced again within retry_window
MIGRATION_WAIT = "migration-wait"  # local maintenance waits for a host that can soon take the engine live

# A background action's status (the runtime's fencing and migration), as ``Outcome.status``.
RUNNING, DONE, FAILED = "running", "done", "failed"


class Outcome(Frozen):
    """Where a background action of this agent stands: ``status`` NONE | RUNNING | DONE | FAILED, and how or why."""

    status: str = NONE
    detail: str = ""


class RemoteHost(Frozen):
    """Another host, as this agent sees it."""

    host_id: int
    live: bool  # its record's sequence number changed within the liveness window
    lease: str = "unknown"  # sanlock's view of its host-id lease: live | fail | dead | free | unknown
    state: str = ""
    score: int = 0
    vm: str = "down"
    health: str = "unknown"
    local_maintenance: bool = False
    silent: float = 0.0  # seconds since its record last changed (on this host's clock)
    renewal_silent: float | None = None  # seconds since its sanlock delta lease last changed (None: not read)
    fenceable: bool = False  # fencing is enabled and it has a fence device


class LocalVM(Frozen):
    """The engine VM on this host."""

    state: str = "down"  # up | paused | starting | down | unknown
    health: str = "unknown"  # good | bad | unknown (the liveliness probe)
    down_reason: str = ""  # when down: shutdown | crashed | killed | migrated | lease-busy | start-failed |
    # migration-failed (an incoming migration that did not complete) | ""
    detail: str = ""
    migration: Outcome = Outcome()  # this agent's migration of the VM (RUNNING, FAILED with why)
    switch_over: bool = False  # paused by libvirt for an outgoing migration's switch-over (the lease handed on)


class Observations(Frozen):
    """Everything ``step`` may look at, collected at monotonic time ``now``."""

    now: float
    host_id: int
    history: float  # seconds this agent has been observing
    vm: LocalVM
    health: HostHealth
    engine_mem_mib: int
    hosts: tuple[RemoteHost, ...] = ()
    global_maintenance: bool = False
    local_maintenance: bool = False
    host_lease: str = "held"  # this host's sanlock host-id lease: held | joining | lost | none
    storage_ok: bool = True  # the last metadata read succeeded (else ``hosts`` is what was seen before)
    engine_lease: int = LEASE_UNKNOWN  # who holds the engine VM lease per sanlock: a host id, LEASE_FREE or LEASE_UNKNOWN
    fence_after: float | None = None  # [fencing] dead_after when fencing is enabled (None: it is not)
    fence: Outcome = Outcome()  # this agent's fencing of ``Memory.target`` (DONE: confirmed off, with how)
    readable_for: float = float("inf")  # seconds this agent's metadata and lockspace reads have all succeeded: others'
    # silence counts for fencing only over time it could have seen them write
    published_score: int | None = None  # the score in this host's record as the others last saw it (None: unknown)


class Judged(Frozen):
    """What a host was judged dead on, as this agent last read it: its record and its delta lease. The fencing
    re-reads both right before the power-off; any change aborts it."""

    host_id: int
    record_seq: int
    generation: int
    timestamp: int


class Memory(Frozen):
    """What the machine remembers between steps."""

    state: str = S.START
    since: float = 0.0  # monotonic time the state was entered
    failed_starts: tuple[float, ...] = ()  # monotonic times of engine failures within the retry window
    waiting_since: float | None = None  # held back in EngineDown by claims sanlock does not back, since
    passed_over: tuple[tuple[int, float], ...] = ()  # (host id, until): hosts whose claims are no longer believed
    target: int = 0  # the host the engine is being migrated to (EngineMigratingAway), or being fenced (FencingHost)
    fenced: tuple[tuple[int, float], ...] = ()  # (host id, when): hosts this agent fenced, counted dead until they return
    fence_failed: tuple[tuple[int, float], ...] = ()  # (host id, when): not fenced again within retry_window (unless
    # it returns in between: dying again is another incident)
    migration_wait: float | None = None  # local maintenance: since when it waits for a host to take the engine live
    usurped_since: float | None = None  # since when sanlock names another live host as the lease's holder while
    # the engine VM runs here (a live migration's switch-over looks like that for a moment)


class Decision(Frozen):
    memory: Memory
    actions: tuple[str, ...]
    delay: float
    reason: str
    score: Score

    @property
    def state(self) -> str:
        return self.memory.state


def step(mem: Memory, obs: Observations, cfg: ScoreConfig, t: HAConfig) -> Decision:
    """Decide the next state, actions and sleep from ``mem`` and ``obs``."""
    now = obs.now
    mem = mem._replace(
        failed_starts=tuple(f for f in mem.failed_starts if now - f < t.retry_window),
        passed_over=tuple(p for p in mem.passed_over if p[1] > now),
        fence_failed=tuple(f for f in mem.fence_failed if now - f[1] < t.retry_window and not _returned(obs, f[0])),
        fenced=tuple(f for f in mem.fenced if not _returned(obs, f[0])),
    )
    obs = _fenced_dead(obs, mem)
    usurped = obs.vm.state == "up" and _lease_holder_alive_elsewhere(obs) > 0
    mem = mem._replace(usurped_since=(mem.usurped_since if mem.usurped_since is not None else now) if usurped else None)
    mem, obs, passed = _judge_claims(mem, obs, cfg, t)
    nxt, actions, reason, delay, event = _transition(mem, obs, t, cfg)
    if passed and nxt == S.START_VM:
        ids = ", ".join(str(h) for h in passed)
        reason = f"host {ids} did not start the engine in {claim_wait(t):.0f} s; starting it here"
    if nxt != mem.state:
        mem = mem._replace(state=nxt, since=now)
    target = migration_target(obs) if MIGRATE in actions else fence_target(mem, obs, cfg, t) if FENCE in actions else None
    if target is not None:  # _transition found the same one
        mem = mem._replace(target=target.host_id)
    if event == FENCED:
        mem = mem._replace(fenced=(*mem.fenced, (mem.target, now)))
    elif event == FENCE_FAILED:
        mem = mem._replace(fence_failed=(*mem.fence_failed, (mem.target, now)))
    elif event == ENGINE_FAILURE:
        mem = mem._replace(failed_starts=(*mem.failed_starts, now))
    if event == MIGRATION_WAIT:
        mem = mem._replace(migration_wait=now if mem.migration_wait is None else mem.migration_wait)
    elif mem.migration_wait is not None:
        mem = mem._replace(migration_wait=None)
    return Decision(mem, actions, t.loop if delay is None else delay, reason, _score(mem, obs, cfg, t))


_FAILED = "engine failure: "  # what the reason of an ENGINE_FAILURE says first (for people)
_DOWN_STATES = (S.DOWN, S.RETRY_WAIT)


def claim_wait(t: HAConfig) -> float:
    """How long a remote claim that sanlock does not back is believed (see the module docstring)."""
    return 3 * t.loop + 2 * t.io_timeout


def score_ceiling(cfg: ScoreConfig) -> int:
    """The highest score any host can publish: penalties only subtract from the base."""
    return cfg.base


def ineligible(score: int, cfg: ScoreConfig) -> str:
    """Why a published ``score`` cannot be right, making its host ineligible ("" if it can be)."""
    if not 0 <= score <= score_ceiling(cfg):
        return f"score {score} outside 0..{score_ceiling(cfg)} ([score] base)"
    return ""


def _believed(obs: Observations, mem: Memory, cfg: ScoreConfig) -> Observations:
    """``obs`` with impossible scores zeroed and passed-over hosts' records counted as silent."""
    passed, ceiling = {p[0] for p in mem.passed_over}, score_ceiling(cfg)
    if not passed and all(0 <= h.score <= ceiling for h in obs.hosts):
        return obs
    hosts = tuple(
        h
        if 0 <= h.score <= ceiling and not (h.live and h.host_id in passed)
        else h._replace(score=h.score if 0 <= h.score <= ceiling else 0, live=h.live and h.host_id not in passed)
        for h in obs.hosts
    )
    return obs._replace(hosts=hosts)


def _pass_over(mem: Memory, ids: set[int], now: float, t: HAConfig) -> Memory:
    kept = tuple(p for p in mem.passed_over if p[0] not in ids)
    return mem._replace(passed_over=(*kept, *((i, now + t.retry_window) for i in sorted(ids))))


def _judge_claims(mem: Memory, obs: Observations, cfg: ScoreConfig, t: HAConfig) -> tuple[Memory, Observations, list[int]]:
    """Time the claims this host waits on; pass over their claimants once ``claim_wait`` has run out.

    A passed-over host that still claims (it would still be waited on, or
    yielded to) stays passed over ``retry_window`` from now.
    """
    believed = _believed(obs, mem, cfg)
    passed = {p[0] for p in mem.passed_over}
    raw = _believed(obs, mem._replace(passed_over=()), cfg) if passed else believed
    if mem.state in (S.UP, S.UP_BAD):
        my = _score(mem, obs, cfg, t).total
        still = {h.host_id for h in _yield_targets(raw, my, t)} & passed if passed else set()
        return (_pass_over(mem, still, obs.now, t) if still else mem), believed, []
    if mem.state not in _DOWN_STATES or obs.global_maintenance or obs.local_maintenance or obs.vm.state == "unknown":
        return mem._replace(waiting_since=None), believed, []  # not electing now
    my = _score(mem, obs, cfg, t).total
    still = {h.host_id for h in _claims(raw, my)} & passed if passed and _engine_elsewhere(raw) is None else set()
    if still:
        mem = _pass_over(mem, still, obs.now, t)
    claims = [] if _engine_elsewhere(believed) is not None else _claims(believed, my)
    if not claims:
        return mem._replace(waiting_since=None), believed, []
    if mem.waiting_since is None:
        return mem._replace(waiting_since=obs.now), believed, []
    if obs.now - mem.waiting_since < claim_wait(t):
        return mem, believed, []
    ids = {claims[0].host_id}  # the one waited on; the next (maybe waiting on it too) gets its own claim_wait
    mem = _pass_over(mem, ids, obs.now, t)._replace(waiting_since=obs.now)
    return mem, _believed(obs, mem, cfg), sorted(ids)


def _returned(obs: Observations, host_id: int) -> bool:
    """A fenced host is back: its record changes again, or sanlock sees it renew (a new generation)."""
    h = next((h for h in obs.hosts if h.host_id == host_id), None)
    return h is not None and ((h.live and h.silent == 0.0) or h.renewal_silent == 0.0)


def _fenced_dead(obs: Observations, mem: Memory) -> Observations:
    """Hosts this agent fenced are off: dead to sanlock, whatever its view (it reads their freed id a renewal later)."""
    if not mem.fenced:
        return obs
    fenced = {f[0] for f in mem.fenced}
    hosts = tuple(h._replace(live=False, lease="dead") if h.host_id in fenced else h for h in obs.hosts)
    return obs._replace(hosts=hosts)


def renewal_overdue(t: HAConfig) -> float:
    """How long a host's delta lease may go unchanged before a renewal is surely missed (sanlock renews every
    2 x io_timeout)."""
    return 2 * t.io_timeout + 1


def dead_for(h: RemoteHost, fence_after: float, t: HAConfig, readable: float = float("inf")) -> float:
    """Seconds until ``h`` is judged dead for fencing (0: it is): its record silent ``fence_after`` seconds,
    and its sanlock delta lease unchanged as long and past a renewal it should have written, both counted
    only over the last ``readable`` seconds (this agent's own reads worked all along)."""
    if h.renewal_silent is None:
        return float("inf")
    silent, renewal_silent = min(h.silent, readable), min(h.renewal_silent, readable)
    return max(fence_after - silent, max(fence_after, renewal_overdue(t)) - renewal_silent, 0.0)


def fence_target(mem: Memory, obs: Observations, cfg: ScoreConfig, t: HAConfig) -> RemoteHost | None:
    """The engine's host, when this host is the one to fence it now (see the module docstring); else None."""
    owner = _fence_candidate(mem, obs, cfg, t)
    if owner is None or obs.fence_after is None:
        return None
    return owner if dead_for(owner, obs.fence_after, t, obs.readable_for) == 0 else None


def _fence_candidate(
    mem: Memory, obs: Observations, cfg: ScoreConfig, t: HAConfig, missed_write: bool = True
) -> RemoteHost | None:
    """The engine's host, if this host is the one to fence it once it is judged dead (``dead_for``).

    It holds the engine lease per sanlock, its record has missed a write (silent for more than a loop), it has a
    device, this host has not fenced it or failed to within ``retry_window``, no other live host is fencing,
    and this host would start the engine once it is gone: its own storage and
    lease work, its VM is down, its score is above 0 and no live host goes
    before it in the election.
    """
    if obs.fence_after is None or obs.engine_lease <= 0 or obs.engine_lease == obs.host_id:
        return None
    if not obs.storage_ok or obs.host_lease != "held" or obs.vm.state != "down":
        return None
    owner = next((h for h in obs.hosts if h.host_id == obs.engine_lease), None)
    tried = {f[0] for f in (*mem.fenced, *mem.fence_failed)}
    if owner is None or not owner.fenceable or owner.host_id in tried or owner.lease in ("dead", "free"):
        return None
    if owner.renewal_silent is None or (missed_write and owner.silent <= t.loop):  # not even one write of its missed
        return None
    others = obs._replace(hosts=tuple(h for h in obs.hosts if h.host_id != owner.host_id))
    if any(h.live and h.state == S.FENCE for h in others.hosts):
        return None
    my = _score(mem, obs, cfg, t).total
    if obs.published_score is not None:  # the others judge who goes first by what this host published
        my = min(my, obs.published_score)  # (an agent just restarted, scoring 0 while collecting history, ...)
    if my <= 0 or _engine_elsewhere(others) is not None or _claims(others, my):
        return None
    return owner


def _score(mem: Memory, obs: Observations, cfg: ScoreConfig, t: HAConfig) -> Score:
    zero = ""
    if mem.state == S.LOCAL_MAINTENANCE:
        zero = "local maintenance"
    elif mem.state in (S.START, S.STOPPED):
        zero = f"agent {mem.state}"
    elif not obs.storage_ok:
        zero = "shared storage unreachable"
    elif obs.host_lease != "held":
        zero = f"sanlock host-id lease {obs.host_lease}"
    elif obs.history < t.history and mem.state in (*_DOWN_STATES, S.UNKNOWN_VM):
        zero = f"collecting history ({obs.history:.0f} of {t.history:.0f} s)"
    return score_mod.compute(
        obs.health,
        cfg,
        engine_mem_mib=obs.engine_mem_mib,
        engine_here=obs.vm.state in ("up", "paused", "starting"),
        global_maintenance=obs.global_maintenance,
        failed_starts=len(mem.failed_starts),
        zeroed_by=zero,
    )


def _engine_elsewhere(obs: Observations) -> RemoteHost | None:
    """A remote host that runs (or may still run, or is starting) the engine, as far as sanlock backs it.

    A host whose record says the engine is up counts while sanlock does not
    contradict it (the engine lease is held by that host, or sanlock cannot
    tell, and its host-id lease is not dead or free: a VM cannot run on a
    lease sanlock lets others take over) and its record is live or its
    host-id lease alive: a stale record with a live lease may still run the
    engine. A host holding the engine lease with a live host-id lease counts
    whatever its record says. A live host starting the engine counts while it
    holds the engine lease, or while the lease's owner is failing (the start
    waits in sanlock for that lease to expire). Every other claim is timed
    (``_claims``).
    """
    holder, owner_failing = obs.engine_lease, False
    for h in obs.hosts:
        up = h.vm in ("up", "paused") and holder in (h.host_id, LEASE_UNKNOWN) and h.lease not in ("dead", "free")
        if up and (h.live or h.lease in ("live", "unknown")):
            return h
        if h.host_id == holder:
            if h.lease in ("live", "unknown"):
                return h  # it holds the engine lease and is alive, whatever its record says (e.g. VM state unknown)
            owner_failing = h.lease == "fail"
    if holder > 0:  # held by a host that is not alive (or by this one): is someone's start waiting for it?
        for h in obs.hosts:
            if h.live and h.state in (S.START_VM, S.STARTING) and (h.host_id == holder or owner_failing):
                return h
    return None


def _claims(obs: Observations, my_score: int) -> list[RemoteHost]:
    """The live remote hosts this one waits on in EngineDown although sanlock does not back them, first the one waited on.

    Call only when ``_engine_elsewhere`` found none. Empty when the engine runs
    here or this host cannot start it anyway (score 0). A claim is a record
    saying the engine is up or starting there, or a better score in
    EngineDown (that host should start it). Hosts that cannot start it
    themselves (VM state unknown, stopping, maintenance) never make the others
    wait.
    """
    if obs.vm.state in ("up", "paused", "starting") or my_score <= 0:
        return []
    acting, better = [], []
    for h in obs.hosts:
        if not h.live:
            continue
        if h.vm in ("up", "paused") or h.state in (S.START_VM, S.STARTING, S.FENCE):
            acting.append(h)
        elif h.score >= my_score and (h.score > my_score or h.host_id < obs.host_id) and _can_start(h):
            better.append(h)  # it goes before this host in the election (so its score is above 0) and can start it
    return acting + sorted(better, key=lambda h: (-h.score, h.host_id))


def _can_start(h: RemoteHost) -> bool:
    """``h`` is ready to start the engine: in EngineDown, not in local maintenance."""
    return h.state == S.DOWN and not h.local_maintenance


def migration_target(obs: Observations) -> RemoteHost | None:
    """The best host to migrate the engine to: live by its record and by sanlock, not in local maintenance, in
    EngineDown (or still in GlobalMaintenance: it leaves it as this host does), scoring above 0; the lowest id
    on a tie."""
    ready = (S.DOWN, S.GLOBAL_MAINTENANCE)
    able = [h for h in obs.hosts if h.live and h.lease == "live" and h.state in ready and not h.local_maintenance and h.score > 0]
    return min(able, key=lambda h: (-h.score, h.host_id), default=None)


def migration_wait(t: HAConfig) -> float:
    """How long local maintenance waits for a host that will soon be able to take the engine live (one that
    collects history, or whose sanlock host id is not yet live here) before it shuts the engine down instead."""
    return t.history + claim_wait(t)


def _migration_target_soon(obs: Observations) -> RemoteHost | None:
    """A live host, not in local maintenance, just started (StartUp) or down, that cannot take the engine yet
    only for its score of 0 or its sanlock host id not live yet: as after a deploy, or a reboot."""
    ready = (S.START, S.DOWN, S.GLOBAL_MAINTENANCE)
    soon = [h for h in obs.hosts if h.live and not h.local_maintenance and h.state in ready and h.lease in ("live", "unknown")]
    return min(soon, key=lambda h: h.host_id, default=None)


def _lease_holder_alive_elsewhere(obs: Observations) -> int:
    """The other host that holds the engine lease per sanlock while sanlock sees its host id live (0: none)."""
    holder = _lease_elsewhere(obs)
    return holder if any(h.host_id == holder and h.lease == "live" for h in obs.hosts) else 0


def _lease_elsewhere(obs: Observations) -> int:
    """The other host that holds the engine lease per sanlock (0: none, or not known)."""
    return obs.engine_lease if obs.engine_lease > 0 and obs.engine_lease != obs.host_id else 0


def _yield_targets(obs: Observations, my_score: int, t: HAConfig) -> list[RemoteHost]:
    """Live remote hosts ready to start the engine (EngineDown) scoring at least ``yield_margin`` above this one, best first."""
    better = [h for h in obs.hosts if h.live and h.score >= my_score + t.yield_margin and _can_start(h)]
    return sorted(better, key=lambda h: (-h.score, h.host_id))


def _transition(mem: Memory, obs: Observations, t: HAConfig, cfg: ScoreConfig) -> Step:
    st, vm, age = mem.state, obs.vm, obs.now - mem.since
    if obs.global_maintenance:
        return S.GLOBAL_MAINTENANCE, (), "global maintenance: hands off the engine", None, NONE
    usurper = _lease_holder_alive_elsewhere(obs)
    if vm.state == "up" and usurper and mem.usurped_since is not None and obs.now > mem.usurped_since:
        # seen on two cycles in a row (not a switch-over): this QEMU runs without the lease; never two engines
        why = f"sanlock says host {usurper}, alive, holds the engine lease while the engine runs here: powering it off"
        return S.FORCE_STOP, (POWEROFF,), why, None, NONE
    if st == S.MIGRATE_AWAY:
        return _migrating(mem, obs, age)
    if st == S.FENCE:
        return _fencing(mem, obs, age)
    if vm.state == "unknown":
        return S.UNKNOWN_VM, (), f"engine VM state unknown here ({vm.detail or 'no answer'})", None, NONE
    if obs.local_maintenance:
        if vm.state in ("up", "paused", "starting") and st not in (S.STOP, S.FORCE_STOP):
            target = migration_target(obs) if vm.state == "up" else None
            if target is not None:
                why = f"local maintenance: migrating the engine to host {target.host_id} (score {target.score})"
                return S.MIGRATE_AWAY, (MIGRATE,), why, None, NONE
            waiting_states = (S.START, S.STARTING, S.UP, S.UP_BAD)  # (an agent just started finds the engine running)
            soon = _migration_target_soon(obs) if vm.state == "up" and st in waiting_states else None
            young = vm.state == "up" and st in waiting_states and obs.history < t.history  # not seen the others yet
            waited = 0.0 if mem.migration_wait is None else obs.now - mem.migration_wait
            if (soon is not None or young) and waited < migration_wait(t):
                who = (
                    f"host {soon.host_id} to be able to take"
                    if soon
                    else "the other hosts' records (collecting history) to place"
                )
                why = f"local maintenance: waiting for {who} the engine live"
                return st, (), f"{why} ({waited:.0f} of {migration_wait(t):.0f} s)", None, MIGRATION_WAIT
            alone = ": no other host can take it live" if vm.state == "up" else ""
            return S.STOP, (SHUTDOWN,), f"local maintenance: shutting the engine down here{alone}", None, NONE
        if vm.state == "down" or st == S.LOCAL_MAINTENANCE:
            return S.LOCAL_MAINTENANCE, (), "local maintenance", None, NONE

    if st in (S.START, S.GLOBAL_MAINTENANCE, S.LOCAL_MAINTENANCE, S.UNKNOWN_VM):
        if vm.state in ("up", "paused", "starting"):
            return S.STARTING, (), "engine VM found running here", 0.0, NONE
        return S.DOWN, (), "engine VM not running here", 0.0, NONE

    if st in _DOWN_STATES:
        return _down(obs, t, cfg, mem)
    if st == S.START_VM:
        if vm.state in ("up", "paused", "starting"):
            return S.STARTING, (), "engine VM started", None, NONE
        return _start_failed(vm)
    if st == S.STARTING:
        if vm.state == "up" and vm.health == "good":
            return S.UP, (), "engine healthy", None, NONE
        if vm.state == "down":
            return _start_failed(vm)
        if age >= t.starting:
            return S.STOP, (SHUTDOWN,), f"{_FAILED}engine not healthy {t.starting:.0f} s after start", None, ENGINE_FAILURE
        return S.STARTING, (), f"engine starting ({age:.0f} of {t.starting:.0f} s)", None, NONE
    if st in (S.UP, S.UP_BAD):
        return _up(st, age, obs, t, cfg, mem)
    if st == S.STOP:
        if vm.state == "down":
            return S.DOWN, (), "engine VM stopped", 0.0, NONE
        if vm.state == "paused":
            return S.FORCE_STOP, (POWEROFF,), "engine VM paused: powering off", None, NONE
        if age >= t.stop:
            return S.FORCE_STOP, (POWEROFF,), f"engine VM did not shut down within {t.stop:.0f} s", None, NONE
        return S.STOP, (), f"waiting for shutdown ({age:.0f} of {t.stop:.0f} s)", None, NONE
    if st == S.FORCE_STOP:
        if vm.state == "down":
            return S.DOWN, (), "engine VM powered off", 0.0, NONE
        return S.FORCE_STOP, (POWEROFF,), "engine VM still running: powering off again", None, NONE
    if st == S.MAYBE_AWAY:
        elsewhere = _engine_elsewhere(obs)
        if vm.state in ("up", "paused"):
            return S.UP, (), "engine VM back here", None, NONE
        if elsewhere is not None and elsewhere.vm in ("up", "paused"):
            return S.DOWN, (), f"engine moved to host {elsewhere.host_id}", None, NONE
        if age >= t.maybe_away:
            return S.UNEXPECTEDLY_DOWN, (), f"{_FAILED}engine left and did not show up elsewhere", 0.0, ENGINE_FAILURE
        return S.MAYBE_AWAY, (), f"engine left this host ({age:.0f} of {t.maybe_away:.0f} s)", None, NONE
    if st == S.UNEXPECTEDLY_DOWN:
        return S.DOWN, (), "re-electing after the engine went down", 0.0, NONE
    return S.START, (), f"unknown state {st!r}: starting over", 0.0, NONE  # e.g. AgentStopped read back


def _migrating(mem: Memory, obs: Observations, age: float) -> Step:
    """EngineMigratingAway: the runtime migrates the VM to ``mem.target``; the outcome decides what follows."""
    vm, target = obs.vm, mem.target
    settle = S.LOCAL_MAINTENANCE if obs.local_maintenance else S.DOWN
    if vm.state == "down":
        if vm.down_reason == "migrated" or _lease_elsewhere(obs):
            return settle, (), f"engine migrated to host {_lease_elsewhere(obs) or target}", 0.0, NONE
        return (
            settle,
            (),
            f"{_FAILED}engine VM {vm.down_reason or 'stopped'} during its migration to host {target}",
            0.0,
            ENGINE_FAILURE,
        )
    if vm.migration.status == FAILED:
        why = vm.migration.detail
        if obs.local_maintenance:
            return S.STOP, (SHUTDOWN,), f"migration to host {target} failed ({why}): shutting the engine down here", None, NONE
        return S.UP, (), f"migration to host {target} failed ({why}); local maintenance ended: the engine stays", None, NONE
    now = f"; its state here is unknown ({vm.detail})" if vm.state == "unknown" else ""
    return S.MIGRATE_AWAY, (), f"migrating the engine to host {target} ({age:.0f} s){now}", None, NONE


def _fencing(mem: Memory, obs: Observations, age: float) -> Step:
    """FencingHost: the runtime powers ``mem.target`` off through its device; the outcome decides what follows."""
    h = mem.target
    if obs.fence.status == DONE:
        return S.DOWN, (), f"fenced host {h}: {obs.fence.detail}; taking the engine over", 0.0, FENCED
    if obs.fence.status == FAILED:
        why = obs.fence.detail
        return S.DOWN, (), f"fencing host {h} failed ({why}): waiting for sanlock to declare it dead", 0.0, FENCE_FAILED
    return S.FENCE, (), f"fencing host {h}, the engine's host, judged dead ({age:.0f} s)", 1.0, NONE


def _start_failed(vm: LocalVM) -> Step:
    if vm.down_reason == "lease-busy":
        return S.DOWN, (), "lost the start race: another host holds the engine lease", None, NONE
    if vm.down_reason == "migration-failed":
        return S.DOWN, (), "an incoming migration of the engine did not complete", None, NONE
    return S.DOWN, (), f"{_FAILED}{vm.down_reason or 'engine VM not running'}", None, ENGINE_FAILURE


def _fence_pending(mem: Memory, obs: Observations, cfg: ScoreConfig, t: HAConfig) -> tuple[RemoteHost, float] | None:
    """The engine's host this host will fence once it is judged dead, and when to look again (within a loop)."""
    owner = _fence_candidate(mem, obs, cfg, t, missed_write=False)
    if owner is None or obs.fence_after is None:
        return None
    return owner, max(0.5, min(t.loop, dead_for(owner, obs.fence_after, t, obs.readable_for)))


def _down(obs: Observations, t: HAConfig, cfg: ScoreConfig, mem: Memory) -> Step:
    if obs.vm.state in ("up", "paused", "starting"):
        return S.STARTING, (), "engine VM running here", 0.0, NONE
    target = fence_target(mem, obs, cfg, t)
    if target is not None:
        why = f"record silent {target.silent:.0f} s, sanlock renewals silent {target.renewal_silent or 0:.0f} s"
        return S.FENCE, (FENCE,), f"host {target.host_id} runs the engine and is judged dead ({why}): fencing it", 1.0, NONE
    elsewhere = _engine_elsewhere(obs)
    if elsewhere is not None:
        verb = "up" if elsewhere.vm in ("up", "paused") else "starting" if elsewhere.live else "held"
        how = "" if elsewhere.live else f" (record stale, sanlock lease {elsewhere.lease})"
        wake = None
        pending = _fence_pending(mem, obs, cfg, t)
        if pending is not None and pending[0].host_id == elsewhere.host_id:
            candidate, wake = pending
            if candidate.silent > t.loop:
                return (
                    S.DOWN,
                    (),
                    f"engine on host {elsewhere.host_id}{how}; fencing it in {wake:.0f} s unless it returns",
                    wake,
                    NONE,
                )
        if (
            elsewhere.host_id == obs.engine_lease
            and elsewhere.vm not in ("up", "paused")
            and elsewhere.state not in (S.START_VM, S.STARTING)
        ):
            return S.DOWN, (), f"engine lease held by host {elsewhere.host_id}{how}", None, NONE
        return S.DOWN, (), f"engine {verb} on host {elsewhere.host_id}{how}", wake, NONE
    my = _score(mem, obs, cfg, t)
    if my.total == 0:
        if len(mem.failed_starts) > MAX_FAILED_STARTS and not any(h.live and h.score > 0 for h in obs.hosts):
            retry = _retry_in(mem, obs.now, t)
            why = f"retry here in {retry:.0f} s: engine failed here {len(mem.failed_starts)} times, no other host can start it"
            return S.RETRY_WAIT, (), why, None, NONE
        return S.DOWN, (), f"engine down everywhere; not starting it here: {my.zeroed_by or 'score 0'}", None, NONE
    claims = _claims(obs, my.total)
    if claims:
        h = claims[0]
        waited = "" if mem.waiting_since is None else f"; waited {obs.now - mem.waiting_since:.0f} of {claim_wait(t):.0f} s"
        if h.vm in ("up", "paused") or h.state in (S.START_VM, S.STARTING):
            verb = "up" if h.vm in ("up", "paused") else "starting"
            return S.DOWN, (), f"engine {verb} on host {h.host_id} by its record, not by sanlock{waited}", None, NONE
        return S.DOWN, (), f"engine down; host {h.host_id} should start it (score {h.score} vs {my.total}){waited}", None, NONE
    pending = _fence_pending(mem, obs, cfg, t)
    if pending is not None:  # a start now would only wait in sanlock for its lease
        owner, wake = pending
        why = f"host {owner.host_id} holds the engine lease and sanlock sees it {owner.lease}"
        return S.DOWN, (), f"{why}; fencing it in {wake:.0f} s unless it returns", wake, NONE
    return S.START_VM, (START,), f"engine down everywhere; starting it here (score {my.total})", 0.0, NONE


def _retry_in(mem: Memory, now: float, t: HAConfig) -> float:
    """Seconds until enough engine failures are forgotten for this host's score to be above 0 again."""
    return max(0.0, mem.failed_starts[-MAX_FAILED_STARTS - 1] + t.retry_window - now)


def _up(st: str, age: float, obs: Observations, t: HAConfig, cfg: ScoreConfig, mem: Memory) -> Step:
    vm = obs.vm
    if vm.state == "down":
        if vm.down_reason == "migrated":
            return S.MAYBE_AWAY, (), "engine VM migrated away", None, NONE
        if _lease_elsewhere(obs):  # moved by hand (vm-migrate): the lease went with it
            return S.MAYBE_AWAY, (), f"engine VM left this host; host {_lease_elsewhere(obs)} holds the engine lease", None, NONE
        return S.UNEXPECTEDLY_DOWN, (), f"{_FAILED}engine VM {vm.down_reason or 'stopped'} unexpectedly", 0.0, ENGINE_FAILURE
    if obs.storage_ok and obs.host_lease == "held":  # never yield on a stale view of the others
        my = _score(mem, obs, cfg, t).total
        better = _yield_targets(obs, my, t)
        if better:
            h = better[0]
            return S.STOP, (SHUTDOWN,), f"host {h.host_id} scores {h.score}, at least {t.yield_margin:g} above {my}", None, NONE
    if vm.state == "up" and vm.health == "good":
        return S.UP, (), "engine healthy", None, NONE
    what = "paused" if vm.state == "paused" else f"health {vm.health}"
    if st == S.UP:
        return S.UP_BAD, (), f"engine {what}", None, NONE
    if vm.switch_over and vm.migration.status != RUNNING and age >= 2 * t.loop:  # a switch-over takes a second
        why = f"engine VM left paused by a migration that failed {age:.0f} s ago: powering it off to start it again"
        return S.FORCE_STOP, (POWEROFF,), f"{why} under its lease", None, NONE
    if age >= t.bad_health:
        return S.STOP, (SHUTDOWN,), f"{_FAILED}engine {what} for {t.bad_health:.0f} s", None, ENGINE_FAILURE
    return S.UP_BAD, (), f"engine {what} ({age:.0f} of {t.bad_health:.0f} s)", None, NONE


def timers(mem: Memory, now: float, t: HAConfig, history: float) -> list[tuple[str, float]]:
    """The running timers of ``mem`` at ``now``: (what happens when it runs out, seconds left)."""
    out = []
    age = now - mem.since
    deadline = {
        S.STARTING: (t.starting, "EngineStop: engine not healthy in time"),
        S.UP_BAD: (t.bad_health, "EngineStop: engine unhealthy too long"),
        S.STOP: (t.stop, "EngineForceStop: shutdown took too long"),
        S.MAYBE_AWAY: (t.maybe_away, "EngineUnexpectedlyDown: engine did not show up elsewhere"),
    }.get(mem.state)
    if deadline is not None:
        out.append((deadline[1], max(0.0, deadline[0] - age)))
    if history < t.history:
        out.append(("may start the engine: enough history observed", t.history - history))
    if mem.failed_starts:
        out.append((f"forget an engine failure ({len(mem.failed_starts)} counted)", mem.failed_starts[0] + t.retry_window - now))
    if len(mem.failed_starts) > MAX_FAILED_STARTS:
        out.append(("may retry the engine here: few enough recent failures", _retry_in(mem, now, t)))
    if mem.waiting_since is not None:
        out.append(("pass over the host waited on: its claim is not backed by sanlock", mem.waiting_since + claim_wait(t) - now))
    if mem.migration_wait is not None:
        out.append(("shut the engine down here instead: no host took it live", mem.migration_wait + migration_wait(t) - now))
    out += [(f"believe host {i}'s record again (it claimed without acting)", until - now) for i, until in mem.passed_over]
    out += [(f"may fence host {i} again (fencing it failed)", at + t.retry_window - now) for i, at in mem.fence_failed]
    return out
