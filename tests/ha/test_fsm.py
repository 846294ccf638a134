"""Every transition of the HA state machine, from hand-built observations (pure, no clock)."""

from __future__ import annotations

from typing import Any

import pytest

from hectl.config import HAConfig, ScoreConfig
from hectl.ha.fsm import (
    ALL_STATES,
    DONE,
    FAILED,
    FENCE,
    MIGRATE,
    POWEROFF,
    RUNNING,
    SHUTDOWN,
    START,
    Decision,
    LocalVM,
    Memory,
    Observations,
    Outcome,
    RemoteHost,
    S,
    claim_wait,
    dead_for,
    ineligible,
    migration_wait,
    step,
)
from hectl.ha.score import HostHealth
from hectl.lease import LEASE_FREE

T = HAConfig()
CFG = ScoreConfig()
NOW = 10_000.0
HEALTHY = HostHealth(network_ok=5, network_probes=5, bridge_up=True, mem_free_mib=16384, cpu_load=0.1)
UP = LocalVM("up", "good")
DOWN = LocalVM("down")
WEAK = HEALTHY._replace(network_ok=4, bridge_up=False)  # 3400 - 320 - 600 = 2480


def remote(host_id: int = 2, **kw: Any) -> RemoteHost:
    base: dict[str, Any] = dict(live=True, lease="live", state=S.DOWN, score=3400, vm="down")
    base.update(kw)
    return RemoteHost(host_id, **base)


def observe(**kw: Any) -> Observations:
    base: dict[str, Any] = dict(now=NOW, host_id=1, history=600.0, vm=DOWN, health=HEALTHY, engine_mem_mib=4096)
    base.update(kw)
    return Observations(**base)


def go(state: str, age: float = 5.0, failed: tuple[float, ...] = (), target: int = 2, **kw: Any):  # type: ignore[no-untyped-def]
    return step(Memory(state, NOW - age, failed, target=target), observe(**kw), CFG, T)


FOUR = (NOW - 300, NOW - 200, NOW - 100, NOW - 50)  # four engine failures within the retry window
# host 2 ran the engine and went silent: record unchanged 15 s, delta lease unchanged 21 s (a missed renewal at io 10)
FENCING: dict[str, Any] = dict(engine_lease=2, fence_after=15.0)
DEAD2 = RemoteHost(2, live=False, lease="live", state=S.UP, score=3400, vm="up", silent=15.0, renewal_silent=21.0, fenceable=True)


# (from state, observations, age in state, expected state, expected actions, words in the reason)
TABLE: list[tuple[str, dict[str, Any], float, str, tuple[str, ...], str]] = [
    # guards, from any state
    (S.UP, dict(vm=UP, global_maintenance=True), 5, S.GLOBAL_MAINTENANCE, (), "global maintenance"),
    (S.DOWN, dict(global_maintenance=True), 5, S.GLOBAL_MAINTENANCE, (), "hands off"),
    (S.UP, dict(vm=LocalVM("unknown", detail="libvirtd down")), 5, S.UNKNOWN_VM, (), "libvirtd down"),
    (S.UP, dict(vm=UP, local_maintenance=True), 5, S.STOP, (SHUTDOWN,), "local maintenance"),
    (S.STARTING, dict(vm=LocalVM("starting"), local_maintenance=True), 5, S.STOP, (SHUTDOWN,), "local maintenance"),
    (S.STOP, dict(vm=UP, local_maintenance=True), 5, S.STOP, (), "waiting for shutdown"),
    (S.DOWN, dict(local_maintenance=True), 5, S.LOCAL_MAINTENANCE, (), "local maintenance"),
    # local maintenance of the engine's host: a live migration to the best host that can take it
    (
        S.UP,
        dict(vm=UP, local_maintenance=True, hosts=(remote(),)),
        5,
        S.MIGRATE_AWAY,
        (MIGRATE,),
        "migrating the engine to host 2",
    ),
    (S.UP_BAD, dict(vm=LocalVM("up", "bad"), local_maintenance=True, hosts=(remote(),)), 5, S.MIGRATE_AWAY, (MIGRATE,), "host 2"),
    (
        S.UP,
        dict(vm=UP, local_maintenance=True, hosts=(remote(2, score=3000), remote(3))),
        5,
        S.MIGRATE_AWAY,
        (MIGRATE,),
        "host 3 (score 3400)",
    ),
    (
        S.UP,
        dict(vm=UP, local_maintenance=True, hosts=(remote(3), remote(2))),
        5,
        S.MIGRATE_AWAY,
        (MIGRATE,),
        "host 2",
    ),  # tie: lower id
    (
        S.GLOBAL_MAINTENANCE,
        dict(vm=UP, local_maintenance=True, hosts=(remote(state=S.GLOBAL_MAINTENANCE),)),
        5,
        S.MIGRATE_AWAY,
        (MIGRATE,),
        "host 2",
    ),
    (
        S.UP,
        dict(vm=UP, local_maintenance=True, global_maintenance=True, hosts=(remote(),)),
        5,
        S.GLOBAL_MAINTENANCE,
        (),
        "hands off",
    ),
    (
        S.UP,
        dict(vm=UP, local_maintenance=True, hosts=(remote(lease="fail"),)),
        5,
        S.STOP,
        (SHUTDOWN,),
        "no other host can take it live",
    ),
    (
        S.UP,
        dict(vm=UP, local_maintenance=True, hosts=(remote(live=False),)),
        5,
        S.STOP,
        (SHUTDOWN,),
        "no other host can take it live",
    ),
    (S.UP, dict(vm=UP, local_maintenance=True, hosts=(remote(local_maintenance=True),)), 5, S.STOP, (SHUTDOWN,), "no other host"),
    (S.UP, dict(vm=UP, local_maintenance=True, hosts=(remote(score=0),)), 5, S.UP, (), "waiting for host 2"),  # it may soon
    (S.UP, dict(vm=UP, local_maintenance=True, hosts=(remote(state=S.UNKNOWN_VM),)), 5, S.STOP, (SHUTDOWN,), "no other host"),
    (S.UP, dict(vm=UP, local_maintenance=True, hosts=(remote(score=2**31 - 1),)), 5, S.UP, (), "waiting for host 2"),
    (S.STARTING, dict(vm=LocalVM("starting"), local_maintenance=True, hosts=(remote(),)), 5, S.STOP, (SHUTDOWN,), "shutting"),
    # EngineMigratingAway: the outcome of the migration
    (
        S.MIGRATE_AWAY,
        dict(vm=LocalVM("up", "good", migration=Outcome(RUNNING)), local_maintenance=True),
        10,
        S.MIGRATE_AWAY,
        (),
        "host 2 (10 s)",
    ),
    (S.MIGRATE_AWAY, dict(vm=LocalVM("unknown", detail="no answer"), local_maintenance=True), 10, S.MIGRATE_AWAY, (), "unknown"),
    (
        S.MIGRATE_AWAY,
        dict(vm=LocalVM("down", down_reason="migrated"), local_maintenance=True),
        10,
        S.LOCAL_MAINTENANCE,
        (),
        "migrated to host 2",
    ),
    (
        S.MIGRATE_AWAY,
        dict(vm=LocalVM("down", down_reason="killed"), engine_lease=3, local_maintenance=True),
        10,
        S.LOCAL_MAINTENANCE,
        (),
        "to host 3",
    ),
    (S.MIGRATE_AWAY, dict(vm=LocalVM("down", down_reason="migrated")), 10, S.DOWN, (), "migrated to host 2"),
    (
        S.MIGRATE_AWAY,
        dict(vm=LocalVM("down", down_reason="crashed"), local_maintenance=True),
        10,
        S.LOCAL_MAINTENANCE,
        (),
        "engine failure: engine VM crashed during its migration to host 2",
    ),
    (
        S.MIGRATE_AWAY,
        dict(vm=LocalVM("up", "good", migration=Outcome(FAILED, "lease refused")), local_maintenance=True),
        10,
        S.STOP,
        (SHUTDOWN,),
        "migration to host 2 failed (lease refused): shutting the engine down here",
    ),
    (
        S.MIGRATE_AWAY,
        dict(vm=LocalVM("up", "good", migration=Outcome(FAILED, "lost"))),
        10,
        S.UP,
        (),
        "failed (lost); local maintenance ended",
    ),
    (S.MIGRATE_AWAY, dict(vm=UP, local_maintenance=True, global_maintenance=True), 10, S.GLOBAL_MAINTENANCE, (), "hands off"),
    # re-evaluation states
    (S.START, dict(vm=UP), 0, S.STARTING, (), "found running"),
    (S.START, dict(), 0, S.DOWN, (), "not running here"),
    (S.GLOBAL_MAINTENANCE, dict(vm=UP), 50, S.STARTING, (), "found running"),
    (S.LOCAL_MAINTENANCE, dict(), 50, S.DOWN, (), "not running here"),
    (S.UNKNOWN_VM, dict(), 50, S.DOWN, (), "not running here"),
    ("NoSuchState", dict(), 5, S.START, (), "unknown state"),
    (S.STOPPED, dict(), 5, S.START, (), "starting over"),
    # EngineDown: the election
    (S.DOWN, dict(), 5, S.START_VM, (START,), "starting it here (score 3400)"),
    (S.DOWN, dict(vm=LocalVM("starting")), 5, S.STARTING, (), "running here"),
    (S.DOWN, dict(hosts=(remote(vm="up", health="good", state=S.UP),)), 5, S.DOWN, (), "engine up on host 2"),
    (S.DOWN, dict(hosts=(remote(live=False, lease="live", vm="up"),)), 5, S.DOWN, (), "record stale, sanlock lease live"),
    (S.DOWN, dict(hosts=(remote(live=False, lease="unknown", vm="up"),)), 5, S.DOWN, (), "sanlock lease unknown"),
    (S.DOWN, dict(hosts=(remote(live=False, lease="fail", vm="up"),)), 5, S.START_VM, (START,), "starting it here"),
    (S.DOWN, dict(hosts=(remote(live=False, lease="live", vm="up"),), engine_lease=2), 5, S.DOWN, (), "lease live"),
    (S.DOWN, dict(hosts=(remote(live=False, lease="live", vm="up"),), engine_lease=0), 5, S.START_VM, (START,), "start"),
    (
        S.DOWN,
        dict(hosts=(remote(vm="unknown", state=S.UNKNOWN_VM),), engine_lease=2),
        5,
        S.DOWN,
        (),
        "engine lease held by host 2",
    ),
    (S.DOWN, dict(hosts=(remote(live=False, lease="dead", vm="down"),), engine_lease=2), 5, S.START_VM, (START,), "start"),
    (S.DOWN, dict(hosts=(remote(live=False, lease="dead", vm="up"),)), 5, S.START_VM, (START,), "starting it here"),
    (S.DOWN, dict(hosts=(remote(state=S.STARTING, vm="down"),)), 5, S.DOWN, (), "engine starting on host 2"),
    (S.DOWN, dict(history=20.0), 5, S.DOWN, (), "collecting history (20 of 30 s)"),
    (S.DOWN, dict(host_lease="joining"), 5, S.DOWN, (), "sanlock host-id lease joining"),
    (S.DOWN, dict(storage_ok=False), 5, S.DOWN, (), "shared storage unreachable"),
    (S.UP, dict(vm=UP, storage_ok=False), 5, S.UP, (), "healthy"),  # sanlock, not the agent, fences
    (S.DOWN, dict(health=WEAK, hosts=(remote(score=3399),)), 5, S.DOWN, (), "host 2 should start it (score 3399 vs 2480)"),
    (S.DOWN, dict(hosts=(remote(host_id=2),)), 5, S.START_VM, (START,), "starting"),  # tie: lower id (1) starts
    (S.DOWN, dict(host_id=3, hosts=(remote(host_id=2),)), 5, S.DOWN, (), "host 2 should start it"),
    (S.DOWN, dict(health=WEAK, hosts=(remote(live=False, lease="dead"),)), 5, S.START_VM, (START,), "starting"),
    (S.DOWN, dict(health=WEAK, hosts=(remote(local_maintenance=True),)), 5, S.START_VM, (START,), "starting"),
    (S.DOWN, dict(hosts=(remote(score=0),)), 5, S.START_VM, (START,), "starting"),
    (S.DOWN, dict(health=WEAK, hosts=(remote(state=S.UNKNOWN_VM),)), 5, S.START_VM, (START,), "starting"),
    (S.DOWN, dict(health=WEAK, hosts=(remote(state=S.GLOBAL_MAINTENANCE),)), 5, S.START_VM, (START,), "starting"),
    (S.DOWN, dict(health=HEALTHY._replace(bridge_up=False), hosts=(remote(),)), 5, S.DOWN, (), "host 2 should start"),
    (S.DOWN, dict(hosts=(remote(score=2**31 - 1),)), 5, S.START_VM, (START,), "starting"),  # above the ceiling: ineligible
    (S.DOWN, dict(health=WEAK, hosts=(remote(score=-5),)), 5, S.START_VM, (START,), "starting"),
    (S.DOWN, dict(hosts=(remote(state=S.STARTING),), engine_lease=2), 5, S.DOWN, (), "engine starting on host 2"),
    (S.DOWN, dict(hosts=(remote(state=S.STARTING),), engine_lease=LEASE_FREE), 5, S.DOWN, (), "not by sanlock"),
    (S.DOWN, dict(hosts=(remote(vm="up", state=S.UP),), engine_lease=LEASE_FREE), 5, S.DOWN, (), "up on host 2 by its record"),
    (
        S.DOWN,
        dict(failed=FOUR),
        5,
        S.RETRY_WAIT,
        (),
        "retry here in 300 s: engine failed here 4 times, no other host can start it",
    ),
    (S.DOWN, dict(failed=FOUR, hosts=(remote(),)), 5, S.DOWN, (), "not starting it here: 4 engine failures"),
    # EngineRetryWait: as EngineDown
    (S.RETRY_WAIT, dict(failed=FOUR), 50, S.RETRY_WAIT, (), "retry here in 300 s"),
    (S.RETRY_WAIT, dict(failed=FOUR, hosts=(remote(),)), 50, S.DOWN, (), "4 engine failures here recently"),
    (S.RETRY_WAIT, dict(), 50, S.START_VM, (START,), "starting it here"),
    # EngineStart: what became of the start
    (S.START_VM, dict(vm=LocalVM("starting")), 1, S.STARTING, (), "started"),
    (S.START_VM, dict(vm=LocalVM("up")), 1, S.STARTING, (), "started"),
    (S.START_VM, dict(vm=LocalVM("down", down_reason="lease-busy")), 1, S.DOWN, (), "lost the start race"),
    (S.START_VM, dict(vm=LocalVM("down", down_reason="start-failed")), 1, S.DOWN, (), "engine failure: start-failed"),
    # EngineStarting
    (S.STARTING, dict(vm=UP), 30, S.UP, (), "healthy"),
    (S.STARTING, dict(vm=LocalVM("up", "bad")), 30, S.STARTING, (), "starting (30 of 300 s)"),
    (S.STARTING, dict(vm=LocalVM("up", "bad")), 300, S.STOP, (SHUTDOWN,), "engine failure: engine not healthy 300 s after start"),
    (S.STARTING, dict(vm=LocalVM("down", down_reason="lease-busy")), 30, S.DOWN, (), "lost the start race"),
    (S.STARTING, dict(vm=LocalVM("down", down_reason="crashed")), 30, S.DOWN, (), "engine failure: crashed"),
    (
        S.STARTING,
        dict(vm=LocalVM("down", down_reason="migration-failed")),
        30,
        S.DOWN,
        (),
        "incoming migration of the engine did not",
    ),
    # fencing: the engine's host (2) silent by its record and by sanlock; this host would start the engine
    (S.DOWN, dict(hosts=(DEAD2,), **FENCING), 5, S.FENCE, (FENCE,), "judged dead"),
    (S.DOWN, dict(hosts=(DEAD2._replace(silent=14.0),), **FENCING), 5, S.DOWN, (), "fencing it in 1 s"),
    (S.DOWN, dict(hosts=(DEAD2,), engine_lease=2), 5, S.DOWN, (), "engine up on host 2 (record stale"),  # fencing off
    (S.DOWN, dict(hosts=(DEAD2._replace(fenceable=False),), **FENCING), 5, S.DOWN, (), "up on host 2"),
    (S.FENCE, dict(hosts=(DEAD2,), **FENCING, fence=Outcome(RUNNING)), 3, S.FENCE, (), "fencing host 2"),
    (S.FENCE, dict(hosts=(DEAD2,), **FENCING, fence=Outcome(DONE, "off")), 3, S.DOWN, (), "fenced host 2: off"),
    (S.FENCE, dict(hosts=(DEAD2,), **FENCING, fence=Outcome(FAILED, "still on")), 3, S.DOWN, (), "still on"),
    # EngineUp
    (S.UP, dict(vm=UP), 50, S.UP, (), "healthy"),
    (S.UP, dict(vm=LocalVM("up", "bad")), 50, S.UP_BAD, (), "health bad"),
    (S.UP, dict(vm=LocalVM("paused", "bad")), 50, S.UP_BAD, (), "paused"),
    (S.UP, dict(vm=LocalVM("down", down_reason="killed")), 50, S.UNEXPECTEDLY_DOWN, (), "engine VM killed unexpectedly"),
    (S.UP, dict(vm=LocalVM("down", down_reason="migrated")), 50, S.MAYBE_AWAY, (), "migrated"),
    (S.UP, dict(vm=LocalVM("down", down_reason="killed"), engine_lease=3), 50, S.MAYBE_AWAY, (), "host 3 holds the engine lease"),
    (S.UP, dict(vm=UP, health=WEAK, hosts=(remote(score=3280),)), 50, S.STOP, (SHUTDOWN,), "host 2 scores 3280"),
    (S.UP, dict(vm=UP, health=WEAK, hosts=(remote(score=3279),)), 50, S.UP, (), "healthy"),
    (S.UP, dict(vm=UP, health=WEAK, hosts=(remote(score=3400, live=False),)), 50, S.UP, (), "healthy"),
    (S.UP, dict(vm=UP, health=WEAK, hosts=(remote(score=3400, local_maintenance=True),)), 50, S.UP, (), "healthy"),
    (S.UP, dict(vm=UP, health=WEAK, hosts=(remote(state=S.UNKNOWN_VM),)), 50, S.UP, (), "healthy"),  # it could not start it
    (S.UP, dict(vm=UP, storage_ok=False, hosts=(remote(),)), 50, S.UP, (), "healthy"),  # no yield on a stale view
    (S.UP, dict(vm=UP, host_lease="lost", hosts=(remote(),)), 50, S.UP, (), "healthy"),
    # EngineUpBadHealth
    (S.UP_BAD, dict(vm=UP), 100, S.UP, (), "healthy"),
    (S.UP_BAD, dict(vm=LocalVM("up", "bad")), 100, S.UP_BAD, (), "health bad (100 of 300 s)"),
    (S.UP_BAD, dict(vm=LocalVM("up", "bad")), 300, S.STOP, (SHUTDOWN,), "engine failure: engine health bad for 300 s"),
    (S.UP_BAD, dict(vm=LocalVM("down", down_reason="crashed")), 100, S.UNEXPECTEDLY_DOWN, (), "crashed"),
    # EngineStop / EngineForceStop
    (S.STOP, dict(), 10, S.DOWN, (), "stopped"),
    (S.STOP, dict(vm=UP), 10, S.STOP, (), "waiting for shutdown (10 of 120 s)"),
    (S.STOP, dict(vm=LocalVM("paused")), 10, S.FORCE_STOP, (POWEROFF,), "paused"),
    (S.STOP, dict(vm=UP), 120, S.FORCE_STOP, (POWEROFF,), "did not shut down within 120 s"),
    (S.FORCE_STOP, dict(), 10, S.DOWN, (), "powered off"),
    (S.FORCE_STOP, dict(vm=UP), 10, S.FORCE_STOP, (POWEROFF,), "powering off again"),
    # EngineMaybeAway / EngineUnexpectedlyDown
    (S.MAYBE_AWAY, dict(vm=UP), 10, S.UP, (), "back here"),
    (S.MAYBE_AWAY, dict(hosts=(remote(vm="up", state=S.UP),)), 10, S.DOWN, (), "moved to host 2"),
    (S.MAYBE_AWAY, dict(), 10, S.MAYBE_AWAY, (), "left this host (10 of 40 s)"),
    (S.MAYBE_AWAY, dict(), 40, S.UNEXPECTEDLY_DOWN, (), "did not show up elsewhere"),
    (S.UNEXPECTEDLY_DOWN, dict(), 0, S.DOWN, (), "re-electing"),
]


@pytest.mark.parametrize(("state", "obs", "age", "expected", "actions", "words"), TABLE)
def test_transition(state: str, obs: dict[str, Any], age: float, expected: str, actions: tuple[str, ...], words: str) -> None:
    d = go(state, age=age, **obs)  # ``failed`` in ``obs`` goes to the memory
    assert (d.state, d.actions) == (expected, actions), d.reason
    assert words in d.reason
    assert d.memory.since == (NOW if expected != state else NOW - age)


def test_every_state_is_left_and_reached_in_the_table() -> None:
    sources = {row[0] for row in TABLE}
    targets = {row[3] for row in TABLE}
    assert set(ALL_STATES) <= sources | {S.STOPPED}
    assert set(ALL_STATES) - {S.STOPPED} <= targets  # AgentStopped is published by the driver on exit


@pytest.mark.parametrize(
    ("state", "obs"),
    [
        (S.START_VM, dict(vm=LocalVM("down", down_reason="start-failed"))),
        (S.STARTING, dict(vm=LocalVM("down", down_reason="crashed"))),
        (S.UP, dict(vm=LocalVM("down", down_reason="killed"))),
        (S.MAYBE_AWAY, dict()),
        (S.UP_BAD, dict(vm=LocalVM("up", "bad"))),
        (S.STARTING, dict(vm=LocalVM("up", "bad"))),  # a start that never became healthy
    ],
)
def test_failed_starts_are_counted(state: str, obs: dict[str, Any]) -> None:
    d = go(state, age=300, **obs)
    assert d.memory.failed_starts == (NOW,)
    assert d.score.total == 3350 or d.score.zeroed_by  # -50 per failed start


def test_migrating_away_remembers_its_target_and_costs_nothing() -> None:
    d = go(S.UP, vm=UP, local_maintenance=True, hosts=(remote(2, score=3000), remote(3)), target=0)
    assert (d.state, d.memory.target, d.memory.failed_starts) == (S.MIGRATE_AWAY, 3, ())
    d = go(S.STARTING, vm=LocalVM("down", down_reason="migration-failed"))
    assert d.memory.failed_starts == () and d.score.total == 3400


def test_lost_race_costs_nothing() -> None:
    d = go(S.START_VM, vm=LocalVM("down", down_reason="lease-busy"))
    assert d.memory.failed_starts == () and d.score.total == 3400


def test_four_failed_starts_in_the_window_zero_the_score_and_old_ones_expire() -> None:
    recent = (NOW - 300, NOW - 200, NOW - 100, NOW - 50)
    d = go(S.DOWN, failed=recent, hosts=(remote(),))
    assert (d.state, d.score.total) == (S.DOWN, 0) and "4 engine failures" in d.reason
    d = go(S.DOWN, failed=(NOW - 700, NOW - 650, NOW - 100, NOW - 50))  # two are older than the 600 s window
    assert d.memory.failed_starts == (NOW - 100, NOW - 50)
    assert (d.state, d.score.total) == (S.START_VM, 3300)


def test_score_zero_while_collecting_history_and_in_local_maintenance() -> None:
    assert go(S.DOWN, history=10.0).score.zeroed_by == "collecting history (10 of 30 s)"
    assert go(S.DOWN, local_maintenance=True).score.zeroed_by == "local maintenance"
    assert go(S.START, history=5.0).score.zeroed_by == "collecting history (5 of 30 s)"  # published for EngineDown


def test_memory_penalty_skipped_where_the_engine_runs() -> None:
    low = HEALTHY._replace(mem_free_mib=1024)
    assert go(S.UP, vm=UP, health=low).score.total == 3400
    assert go(S.DOWN, health=low).score.total == 3000


def test_delays() -> None:
    assert go(S.UP, vm=UP).delay == T.loop
    assert go(S.DOWN).delay == 0.0  # the start happens now
    assert go(S.UNEXPECTEDLY_DOWN).delay == 0.0


def run(state: str, steps: int, **kw: Any) -> list[Decision]:
    """``steps`` cycles one loop apart from ``state``, the same observations each time (but the clock)."""
    mem, out = Memory(state, NOW - 100), []
    for i in range(steps):
        d = step(mem, observe(now=NOW + i * T.loop, **kw), CFG, T)
        mem = d.memory
        out.append(d)
    return out


def first_start(decisions: list[Decision]) -> float | None:
    return next((i * T.loop for i, d in enumerate(decisions) if START in d.actions), None)


@pytest.mark.parametrize(
    "claimant",
    [
        remote(host_id=1),  # wins the tie but never starts
        remote(host_id=1, state=S.STARTING),  # says it starts, holds no engine lease
        remote(host_id=1, state=S.UP, vm="up", health="good"),  # says the engine runs there, sanlock says the lease is free
    ],
    ids=["rival", "starting", "up"],
)
def test_a_claim_sanlock_does_not_back_is_passed_over_after_claim_wait(claimant: RemoteHost) -> None:
    decisions = run(S.DOWN, 12, host_id=3, hosts=(claimant,), engine_lease=LEASE_FREE)
    started = first_start(decisions)
    assert started is not None and claim_wait(T) <= started <= claim_wait(T) + T.loop
    assert "host 1 did not start the engine in 50 s" in decisions[int(started // T.loop)].reason
    assert dict(decisions[-1].memory.passed_over)[1] > NOW  # and its record is not believed for a while


def test_a_start_waiting_for_a_failing_owners_lease_is_never_passed_over() -> None:
    owner = remote(host_id=5, live=False, lease="fail", state=S.UP, vm="up")
    starter = remote(host_id=2, state=S.STARTING, vm="starting")
    decisions = run(S.DOWN, 40, hosts=(owner, starter), engine_lease=5)
    assert first_start(decisions) is None and all("engine starting on host 2" in d.reason for d in decisions)


def test_the_engine_host_does_not_yield_to_a_host_it_passed_over() -> None:
    rogue = remote(host_id=1)
    mem = Memory(S.DOWN, NOW - 100)
    for i in range(12):  # waits for host 1, passes it over, starts
        d = step(mem, observe(now=NOW + i * T.loop, host_id=3, health=WEAK, hosts=(rogue,), engine_lease=LEASE_FREE), CFG, T)
        mem = d.memory
    assert d.state in (S.START_VM, S.STARTING), d.reason
    for i in range(12, 200):  # 1900 s up with host 1 still scoring 920 above: no yield, it stays passed over
        d = step(mem._replace(state=S.UP), observe(now=NOW + i * T.loop, host_id=3, vm=UP, health=WEAK, hosts=(rogue,)), CFG, T)
        mem = d.memory
        assert d.state == S.UP, d.reason
    assert go(S.UP, vm=UP, health=WEAK, host_id=3, hosts=(rogue,)).state == S.STOP  # without the memory it would yield


def test_an_impossible_score_does_not_make_the_engine_host_yield() -> None:
    assert go(S.UP, vm=UP, hosts=(remote(score=2**31 - 1),)).state == S.UP
    assert ineligible(2**31 - 1, CFG) == "score 2147483647 outside 0..3400 ([score] base)"
    assert ineligible(3400, CFG) == ineligible(0, CFG) == "" != ineligible(-1, CFG)


FENCING = dict(**FENCING)


@pytest.mark.parametrize(
    ("change", "why"),
    [
        (dict(hosts=(DEAD2._replace(silent=10.0),)), "record changed 10 s ago"),
        (dict(hosts=(DEAD2._replace(renewal_silent=20.0),)), "no renewal missed yet (due every 20 s)"),
        (dict(hosts=(DEAD2._replace(renewal_silent=None),)), "its delta lease not read"),
        (dict(hosts=(DEAD2._replace(live=True, silent=0.0),)), "its record just changed"),
        (dict(hosts=(DEAD2._replace(lease="dead"),)), "sanlock already calls it dead: the normal path"),
        (dict(hosts=(DEAD2, remote(3, score=3400))), "host 3 goes after this host (equal score, higher id): fence"),
        (dict(hosts=(DEAD2, remote(3)), health=WEAK), "host 3 scores more: it fences"),
        (dict(hosts=(DEAD2,), storage_ok=False), "this host's storage fails"),
        (dict(hosts=(DEAD2,), host_lease="joining"), "this host holds no host id"),
        (dict(hosts=(DEAD2,), engine_lease=3), "host 3 holds the engine lease"),
        (dict(hosts=(DEAD2,), history=1.0), "this host's score is 0 (collecting history)"),
    ],
)
def test_fencing_needs_a_dead_engine_host_and_this_host_as_the_one_to_take_over(change: dict[str, Any], why: str) -> None:
    obs = {**FENCING, **change}
    d = go(S.DOWN, **obs)
    fences = d.state == S.FENCE
    assert fences == why.endswith(": fence"), (why, d.reason)


def test_a_fenced_host_counts_dead_until_it_returns_and_a_failed_fence_is_not_retried() -> None:
    d = go(S.FENCE, age=1, hosts=(DEAD2,), fence=Outcome(DONE, "off"), **FENCING)
    assert d.memory.fenced == ((2, NOW),) and d.state == S.DOWN
    # sanlock on this host still calls host 2 live (it reads the freed id a renewal later): counted dead all the same
    d = step(d.memory, observe(now=NOW + 1, hosts=(DEAD2,), **FENCING), CFG, T)
    assert (d.state, d.actions) == (S.START_VM, (START,)), d.reason
    # host 2 back (powered on, its record changes): no longer counted dead
    back = DEAD2._replace(live=True, silent=0.0, vm="down", state=S.DOWN)
    d = step(d.memory._replace(state=S.DOWN), observe(now=NOW + 300, hosts=(back,), **FENCING), CFG, T)
    assert d.memory.fenced == ()
    d = go(S.FENCE, age=1, hosts=(DEAD2,), fence=Outcome(FAILED, "timed out"), **FENCING)
    assert d.memory.fence_failed == ((2, NOW),)
    d = step(d.memory, observe(now=NOW + 1, hosts=(DEAD2,), **FENCING), CFG, T)
    assert d.state == S.DOWN and "fencing" not in d.reason, d.reason  # the normal path: wait for sanlock
    d = step(d.memory, observe(now=NOW + T.retry_window + 1, hosts=(DEAD2,), **FENCING), CFG, T)
    assert d.state == S.FENCE  # tried again once the failure is forgotten


def test_a_live_engine_host_is_never_announced_for_fencing() -> None:
    live = DEAD2._replace(live=True, silent=2.0, renewal_silent=3.0)
    d = go(S.DOWN, hosts=(live,), **FENCING)
    assert d.state == S.DOWN and "fencing" not in d.reason and d.delay == T.loop, d.reason


def test_an_engine_running_here_while_another_live_host_holds_its_lease_is_powered_off_at_once() -> None:
    """Defence in depth: this QEMU runs without the lease (a wrong fencing freed it, say): never two engines."""
    for state in (S.UP, S.STARTING, S.MIGRATE_AWAY, S.UP_BAD):
        obs = dict(vm=UP, engine_lease=2, hosts=(remote(2, lease="live", vm="up"),))
        first = go(state, **obs)  # once: a live migration's switch-over looks like this for a moment
        assert POWEROFF not in first.actions and first.memory.usurped_since == NOW
        d = step(first.memory, observe(now=NOW + 1, **obs), CFG, T)  # the next cycle: still so
        assert (d.state, d.actions) == (S.FORCE_STOP, (POWEROFF,)) and "host 2, alive, holds the engine lease" in d.reason
    for lease in ("fail", "dead", "unknown"):  # not alive by sanlock: the usual rules
        assert go(S.UP, vm=UP, engine_lease=2, hosts=(remote(2, lease=lease),)).actions == ()
    assert go(S.UP, vm=UP, engine_lease=1, hosts=(remote(2),)).actions == ()  # it is ours
    paused = LocalVM("paused", "unknown")  # a switch-over of a live migration: the source is paused
    assert POWEROFF not in go(S.UP, vm=paused, engine_lease=2, hosts=(remote(2),)).actions


def test_silence_counts_for_fencing_only_over_time_this_agent_could_read() -> None:
    assert dead_for(DEAD2, 15.0, T, readable=30.0) == 0
    assert dead_for(DEAD2, 15.0, T, readable=5.0) == pytest.approx(16.0)  # its own reads failed until 5 s ago
    assert go(S.DOWN, hosts=(DEAD2,), readable_for=5.0, **FENCING).state == S.DOWN
    assert go(S.DOWN, hosts=(DEAD2,), readable_for=60.0, **FENCING).state == S.FENCE


def test_a_host_fences_by_the_score_the_others_see_it_publish() -> None:
    """Just restarted (its record still says 0 while it collects history), it is not first in anyone's eyes: another
    host fences; it fences once its record shows the score it has."""
    assert go(S.DOWN, hosts=(DEAD2,), published_score=0, **FENCING).state == S.DOWN
    assert go(S.DOWN, hosts=(DEAD2,), published_score=3400, **FENCING).state == S.FENCE
    third = remote(3, score=3000)  # goes after this host by the published 3400, before it by a published 2000
    assert go(S.DOWN, hosts=(DEAD2, third), published_score=3400, **FENCING).state == S.FENCE
    assert go(S.DOWN, hosts=(DEAD2, third), published_score=2000, **FENCING).state == S.DOWN


def test_an_engine_left_paused_by_a_failed_switch_over_is_restarted_not_counted_as_a_failure() -> None:
    stuck = LocalVM("paused", "unknown", switch_over=True)
    assert go(S.UP, vm=stuck).state == S.UP_BAD  # a switch-over under way looks like this for a second
    assert go(S.UP_BAD, age=T.loop, vm=stuck).actions == ()
    d = go(S.UP_BAD, age=2 * T.loop, vm=stuck)
    assert (d.state, d.actions, d.memory.failed_starts) == (S.FORCE_STOP, (POWEROFF,), ())
    assert "left paused by a migration" in d.reason
    running = stuck._replace(migration=Outcome(RUNNING))  # this agent's own migration: its timer decides
    assert go(S.UP_BAD, age=2 * T.loop, vm=running).actions == ()
    paused = LocalVM("paused", "unknown")  # paused for another reason: the bad-health timer, as before
    assert go(S.UP_BAD, age=2 * T.loop, vm=paused).actions == ()


def test_local_maintenance_waits_a_while_for_a_host_that_can_soon_take_the_engine_live() -> None:
    """Right after a deploy the other hosts still collect history (score 0): migrate once one can, not cold."""
    young = remote(2, score=0, state=S.DOWN)
    d = go(S.UP, vm=UP, local_maintenance=True, hosts=(young,))
    assert (d.state, d.actions, d.memory.migration_wait) == (S.UP, (), NOW) and "waiting for host 2" in d.reason
    later = step(d.memory, observe(now=NOW + 5, vm=UP, local_maintenance=True, hosts=(remote(2),)), CFG, T)
    assert (later.state, later.actions, later.memory.target) == (S.MIGRATE_AWAY, (MIGRATE,), 2)
    assert later.memory.migration_wait is None
    late = d.memory._replace(migration_wait=NOW - migration_wait(T))  # waited long enough: the cold move
    cold = step(late, observe(vm=UP, local_maintenance=True, hosts=(young,)), CFG, T)
    assert (cold.state, cold.actions) == (S.STOP, (SHUTDOWN,)) and "no other host can take it live" in cold.reason
    alone = go(S.UP, vm=UP, local_maintenance=True, hosts=(remote(2, local_maintenance=True),))
    assert alone.actions == (SHUTDOWN,)  # nobody will come: no wait


def test_an_agent_just_started_waits_for_a_migration_target_too() -> None:
    young = remote(2, score=0, state=S.START)
    for state in (S.START, S.STARTING):
        d = go(state, vm=UP, local_maintenance=True, hosts=(young,))
        assert (d.state, d.actions) == (state, ()) and "waiting for host 2" in d.reason


def test_an_agent_that_has_not_seen_the_others_yet_does_not_shut_the_engine_down_for_local_maintenance() -> None:
    d = step(Memory(S.START, NOW), observe(vm=UP, local_maintenance=True, history=2.0), CFG, T)
    assert (d.state, d.actions) == (S.START, ()) and "collecting history" in d.reason
    d = step(Memory(S.START, NOW), observe(vm=UP, local_maintenance=True, history=T.history), CFG, T)
    assert d.actions == (SHUTDOWN,)  # seen long enough: nobody can take it
