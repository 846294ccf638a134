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
  election runs again at once (no ten-minute score-0 exile).
"""

from __future__ import annotations

from hectl.frozen import Frozen
from hectl.ha import score as score_mod
from hectl.lease import LEASE_UNKNOWN

TYPE_CHECKING = False  # typing.TYPE_CHECKING would import typing (see hectl.frozen)
if TYPE_CHECKING:
    from hectl.config import HAConfig, ScoreConfig
    from hectl.ha.score import HostHealth, Score

    Step = tuple[str, tuple[str, ...], str, float | None]  # next state, actions, reason, delay (None: loop)


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
    STOPPED = "AgentStopped"


ALL_STATES = tuple(v for k, v in vars(S).items() if not k.startswith("_"))

# Actions the driver carries out.
START = "start"
SHUTDOWN = "shutdown"
POWEROFF = "poweroff"


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


class LocalVM(Frozen):
    """The engine VM on this host."""

    state: str = "down"  # up | paused | starting | down | unknown
    health: str = "unknown"  # good | bad | unknown (the liveliness probe)
    down_reason: str = ""  # when down: shutdown | crashed | killed | migrated | lease-busy | start-failed | ""
    detail: str = ""


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


class Memory(Frozen):
    """What the machine remembers between steps."""

    state: str = S.START
    since: float = 0.0  # monotonic time the state was entered
    failed_starts: tuple[float, ...] = ()  # monotonic times of engine failures within the retry window


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
    failed = tuple(f for f in mem.failed_starts if obs.now - f < t.retry_window)
    mem = mem._replace(failed_starts=failed)
    nxt, actions, reason, delay = _transition(mem, obs, t, cfg)
    if nxt != mem.state:
        mem = mem._replace(state=nxt, since=obs.now)
    if reason.startswith(_FAILED):
        mem = mem._replace(failed_starts=(*mem.failed_starts, obs.now))
    return Decision(mem, actions, t.loop if delay is None else delay, reason, _score(mem, obs, cfg, t))


_FAILED = "engine failure: "  # reasons that count an engine failure (a failed start, a crash, bad health) begin with this


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
    elif obs.history < t.history and mem.state in (S.DOWN, S.UNKNOWN_VM):
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
    """A remote host that runs (or may still run, or is starting) the engine.

    A host whose record is stale (or whose agent stopped) but whose sanlock
    lease is alive may still run the engine, unless the engine lease is known
    to be free or held by another host: the VM cannot run without its lease.
    """
    for h in obs.hosts:
        if h.vm in ("up", "paused") and (
            h.live or (h.lease in ("live", "unknown") and obs.engine_lease in (h.host_id, LEASE_UNKNOWN))
        ):
            return h
        if h.live and h.state in (S.START_VM, S.STARTING):
            return h
        if h.host_id == obs.engine_lease and h.lease in ("live", "unknown"):
            return h  # it holds the engine lease and is alive, whatever its record says (e.g. VM state unknown)
    return None


def _best_rival(obs: Observations, my_score: int) -> RemoteHost | None:
    """The live remote host that should start the engine before this one, if any.

    Only hosts that are themselves ready to start it (in EngineDown) count: a
    host that cannot tell its VM state, or is stopping or in maintenance, must
    not make the others wait for it.
    """
    rivals = [h for h in obs.hosts if h.live and h.score > 0 and not h.local_maintenance and h.state == S.DOWN]
    better = [h for h in rivals if (h.score, -h.host_id) > (my_score, -obs.host_id)]
    return max(better, key=lambda h: (h.score, -h.host_id)) if better else None


def _transition(mem: Memory, obs: Observations, t: HAConfig, cfg: ScoreConfig) -> Step:
    st, vm, age = mem.state, obs.vm, obs.now - mem.since
    if obs.global_maintenance:
        return S.GLOBAL_MAINTENANCE, (), "global maintenance: hands off the engine", None
    if vm.state == "unknown":
        return S.UNKNOWN_VM, (), f"engine VM state unknown here ({vm.detail or 'no answer'})", None
    if obs.local_maintenance:
        if vm.state in ("up", "paused", "starting") and st not in (S.STOP, S.FORCE_STOP):
            return S.STOP, (SHUTDOWN,), "local maintenance: shutting the engine down here", None
        if vm.state == "down" or st == S.LOCAL_MAINTENANCE:
            return S.LOCAL_MAINTENANCE, (), "local maintenance", None

    if st in (S.START, S.GLOBAL_MAINTENANCE, S.LOCAL_MAINTENANCE, S.UNKNOWN_VM):
        if vm.state in ("up", "paused", "starting"):
            return S.STARTING, (), "engine VM found running here", 0.0
        return S.DOWN, (), "engine VM not running here", 0.0

    if st == S.DOWN:
        return _down(obs, t, cfg, mem)
    if st == S.START_VM:
        if vm.state in ("up", "paused", "starting"):
            return S.STARTING, (), "engine VM started", None
        return _start_failed(vm)
    if st == S.STARTING:
        if vm.state == "up" and vm.health == "good":
            return S.UP, (), "engine healthy", None
        if vm.state == "down":
            return _start_failed(vm)
        if age >= t.starting:
            return S.STOP, (SHUTDOWN,), f"engine not healthy {t.starting:.0f} s after start", None
        return S.STARTING, (), f"engine starting ({age:.0f} of {t.starting:.0f} s)", None
    if st in (S.UP, S.UP_BAD):
        return _up(st, age, obs, t, cfg, mem)
    if st == S.STOP:
        if vm.state == "down":
            return S.DOWN, (), "engine VM stopped", 0.0
        if vm.state == "paused":
            return S.FORCE_STOP, (POWEROFF,), "engine VM paused: powering off", None
        if age >= t.stop:
            return S.FORCE_STOP, (POWEROFF,), f"engine VM did not shut down within {t.stop:.0f} s", None
        return S.STOP, (), f"waiting for shutdown ({age:.0f} of {t.stop:.0f} s)", None
    if st == S.FORCE_STOP:
        if vm.state == "down":
            return S.DOWN, (), "engine VM powered off", 0.0
        return S.FORCE_STOP, (POWEROFF,), "engine VM still running: powering off again", None
    if st == S.MAYBE_AWAY:
        elsewhere = _engine_elsewhere(obs)
        if vm.state in ("up", "paused"):
            return S.UP, (), "engine VM back here", None
        if elsewhere is not None and elsewhere.vm in ("up", "paused"):
            return S.DOWN, (), f"engine moved to host {elsewhere.host_id}", None
        if age >= t.maybe_away:
            return S.UNEXPECTEDLY_DOWN, (), f"{_FAILED}engine left and did not show up elsewhere", 0.0
        return S.MAYBE_AWAY, (), f"engine left this host ({age:.0f} of {t.maybe_away:.0f} s)", None
    if st == S.UNEXPECTEDLY_DOWN:
        return S.DOWN, (), "re-electing after the engine went down", 0.0
    return S.START, (), f"unknown state {st!r}: starting over", 0.0  # e.g. AgentStopped read back


def _start_failed(vm: LocalVM) -> Step:
    if vm.down_reason == "lease-busy":
        return S.DOWN, (), "lost the start race: another host holds the engine lease", None
    return S.DOWN, (), f"{_FAILED}{vm.down_reason or 'engine VM not running'}", None


def _down(obs: Observations, t: HAConfig, cfg: ScoreConfig, mem: Memory) -> Step:
    if obs.vm.state in ("up", "paused", "starting"):
        return S.STARTING, (), "engine VM running here", 0.0
    elsewhere = _engine_elsewhere(obs)
    if elsewhere is not None:
        verb = "up" if elsewhere.vm in ("up", "paused") else "starting" if elsewhere.live else "held"
        how = "" if elsewhere.live else f" (record stale, sanlock lease {elsewhere.lease})"
        if (
            elsewhere.host_id == obs.engine_lease
            and elsewhere.vm not in ("up", "paused")
            and elsewhere.state not in (S.START_VM, S.STARTING)
        ):
            return S.DOWN, (), f"engine lease held by host {elsewhere.host_id}{how}", None
        return S.DOWN, (), f"engine {verb} on host {elsewhere.host_id}{how}", None
    my = _score(mem, obs, cfg, t)
    if my.total == 0:
        return S.DOWN, (), f"engine down everywhere; not starting it here: {my.zeroed_by or 'score 0'}", None
    rival = _best_rival(obs, my.total)
    if rival is not None:
        return S.DOWN, (), f"engine down; host {rival.host_id} should start it (score {rival.score} vs {my.total})", None
    return S.START_VM, (START,), f"engine down everywhere; starting it here (score {my.total})", 0.0


def _up(st: str, age: float, obs: Observations, t: HAConfig, cfg: ScoreConfig, mem: Memory) -> Step:
    vm = obs.vm
    if vm.state == "down":
        if vm.down_reason == "migrated":
            return S.MAYBE_AWAY, (), "engine VM migrated away", None
        return S.UNEXPECTEDLY_DOWN, (), f"{_FAILED}engine VM {vm.down_reason or 'stopped'} unexpectedly", 0.0
    if obs.storage_ok and obs.host_lease == "held":  # never yield on a stale view of the others
        my = _score(mem, obs, cfg, t).total
        better = [h for h in obs.hosts if h.live and not h.local_maintenance and h.score >= my + t.yield_margin]
        if better:
            h = max(better, key=lambda h: h.score)
            return S.STOP, (SHUTDOWN,), f"host {h.host_id} scores {h.score}, at least {t.yield_margin:g} above {my}", None
    if vm.state == "up" and vm.health == "good":
        return S.UP, (), "engine healthy", None
    what = "paused" if vm.state == "paused" else f"health {vm.health}"
    if st == S.UP:
        return S.UP_BAD, (), f"engine {what}", None
    if age >= t.bad_health:
        return S.STOP, (SHUTDOWN,), f"{_FAILED}engine {what} for {t.bad_health:.0f} s", None
    return S.UP_BAD, (), f"engine {what} ({age:.0f} of {t.bad_health:.0f} s)", None


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
    return out
