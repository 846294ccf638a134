"""Randomized fault schedules: never two engines, and the engine back within the bound (a few hundred here;
bench/bench_ha.py runs 10,000+)."""

from __future__ import annotations

import pytest

from hectl.config import HAConfig
from hectl.ha import chaos, fsm, scenario, sim
from hectl.ha.scenario import Event, Scenario

CONFIGS = [dict(hosts=3, faults=8), dict(hosts=2, faults=14), dict(hosts=4, faults=16), dict(hosts=1, faults=6)]


@pytest.mark.parametrize("config", CONFIGS, ids=lambda c: f"{c['hosts']}hosts-{c['faults']}faults")
def test_random_schedules_are_safe_and_live(config: dict[str, int]) -> None:
    outcomes = [chaos.check(seed, **config) for seed in range(80)]
    bad = [o for o in outcomes if not o.ok]
    assert not bad, bad[:3]
    assert all(o.recovered_after is not None and o.recovered_after <= o.bound for o in outcomes)


def test_random_schedules_with_fencing_and_failing_devices_are_safe_and_live() -> None:
    outcomes = [chaos.check(seed, fencing=True, **config) for config in CONFIGS[:3] for seed in range(60)]
    assert not [o for o in outcomes if not o.ok], [o for o in outcomes if not o.ok][:3]
    assert sum(o.fencings[0] for o in outcomes) > 30 and sum(o.fencings[1] for o in outcomes) > 0  # both paths ran


def test_the_liveness_check_holds_fenced_power_losses_to_the_tighter_bound(monkeypatch: pytest.MonkeyPatch) -> None:
    """Break the fast path (nobody ever fences): a power loss with a working device must now be a violation."""
    monkeypatch.setattr(fsm, "fence_target", lambda mem, obs, cfg, t: None)
    timings = HAConfig(loop=2.0)  # the tight bound: 21 + 26 (claim wait) + 30 + 4 + 0.5 + 0.3 + 8 = 90 s
    sc = Scenario("no-fencing", "", 3, 400, 1, (Event(120, "power-off", 1),), timings=timings, fence_after=12.0)
    result = scenario.run(sc)
    assert [v for v in result.violations if "engine not up since t=120.0" in v], result.lines()


def test_schedules_are_reproducible() -> None:
    assert chaos.random_scenario(7) == chaos.random_scenario(7) != chaos.random_scenario(8)
    assert chaos.check(7) == chaos.check(7)


def test_the_safety_check_catches_a_second_engine(monkeypatch: pytest.MonkeyPatch) -> None:
    """Break sanlock in the model (leases granted to anyone): the checker must see two engines."""

    def grab(self: sim.World, h: sim.SimHost, since: float, generation: int) -> None:
        h.vm.holds_lease, h.vm.state = True, "up"

    monkeypatch.setattr(sim.World, "_acquire", grab)
    monkeypatch.setattr(fsm, "_engine_elsewhere", lambda obs: None)  # and every host starts the engine
    outcome = chaos.check(1, hosts=3, faults=0)
    assert any("engine running on hosts" in v for v in outcome.violations)


@pytest.mark.parametrize(
    ("fault", "violation"),
    [
        ("storage-lost", "engine running on hosts [1, 2]"),  # host 2 takes the engine over: two engines
        # host 1's record stays live, but sanlock no longer backs its engine: host 2 passes it over and starts a second
        ("sanlock-io-lost", "engine running on hosts [1, 2]"),
    ],
)
def test_the_checks_catch_an_engine_sanlock_failed_to_kill(monkeypatch: pytest.MonkeyPatch, fault: str, violation: str) -> None:
    """Break the kill: sanlock drops the lockspace of a host that cannot renew, but its engine VM keeps running."""
    monkeypatch.setattr(sim.World, "_fence", lambda self, h: None)
    result = scenario.run(Scenario("no-kill", "", 2, 400, 1, (Event(100, fault, 1),)))
    assert any(violation in v for v in result.violations), result.violations


def _never_start(monkeypatch: pytest.MonkeyPatch) -> None:
    """Break the election: nobody ever starts the engine."""
    real_down = fsm._down

    def never(obs, t, cfg, mem):  # type: ignore[no-untyped-def]
        nxt, actions, reason, delay, event = real_down(obs, t, cfg, mem)
        return (
            (fsm.S.DOWN, (), "refusing to start", delay, fsm.NONE)
            if nxt == fsm.S.START_VM
            else (nxt, actions, reason, delay, event)
        )

    monkeypatch.setattr(fsm, "_down", never)


def test_the_liveness_check_catches_an_engine_never_restarted(monkeypatch: pytest.MonkeyPatch) -> None:
    _never_start(monkeypatch)
    result = scenario.run(Scenario("never", "", 2, 900, 1, (Event(100, "power-off", 1),)))
    assert [v for v in result.violations if "engine not up since t=100.0" in v]


def test_the_liveness_clock_pauses_while_no_host_could_run_the_engine(monkeypatch: pytest.MonkeyPatch) -> None:
    """A moment in which no host could run the engine pauses the clock; it does not start it again."""
    _never_start(monkeypatch)
    stalls = tuple(Event(t, "storage-stall", 2, duration=1) for t in range(150, 900, 100))
    result = scenario.run(Scenario("never", "", 2, 900, 1, (Event(100, "power-off", 1), *stalls)))
    assert [v for v in result.violations if "engine not up since t=100.0" in v]


def test_the_liveness_check_catches_an_unhealthy_engine_never_replaced(monkeypatch: pytest.MonkeyPatch) -> None:
    """Break the bad-health timeout (the agent keeps an unhealthy engine forever): an unhealthy engine is not up."""
    real_up = fsm._up

    def keep(st, age, obs, t, cfg, mem):  # type: ignore[no-untyped-def]
        nxt, actions, reason, delay, event = real_up(st, age, obs, t, cfg, mem)
        return (fsm.S.UP_BAD, (), reason, delay, fsm.NONE) if nxt == fsm.S.STOP else (nxt, actions, reason, delay, event)

    monkeypatch.setattr(fsm, "_up", keep)
    result = scenario.run(Scenario("unhealthy", "", 2, 1500, 1, (Event(100, "health-bad", 1),)))
    assert result.engine_host is None
    assert [v for v in result.violations if "engine not up since t=100.0" in v]


def test_new_faults_join_the_random_schedules() -> None:
    drawn = {ev.action for seed in range(40) for ev in chaos.random_scenario(seed).events}
    assert {"host-shutdown", "host-reboot", "vm-start-fails", "metadata-io-lost", "sanlock-io-lost"} <= drawn


def test_an_engine_started_unhealthy_moves_to_a_healthy_host() -> None:
    """Host 1 dies; host 2 takes over but its engine is unhealthy; host 3 could run it and must get it in time."""
    events = (Event(120, "power-off", 1), Event(235, "health-bad", 2))
    result = scenario.run(Scenario("unhealthy-start", "", 3, 900, 1, events))
    assert not result.violations and result.engine_host == 3
