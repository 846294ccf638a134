"""The simulator tells the truth: what counts as up, when downtime starts, what the summary and timeline say,
how long sanlock takes to rejoin."""

from __future__ import annotations

from pathlib import Path

from hectl.ha import scenario
from hectl.ha.scenario import Event, Result, Scenario

HERE = Path(__file__).parent / "scenarios"


def run(name: str) -> Result:
    return scenario.run(scenario.load(str(HERE / f"{name}.toml")))


def times(result: Result, host: int, what: str) -> list[float]:
    return [e.t for e in result.timeline if e.host == host and e.what == what]


def test_an_isolated_engine_is_down_from_the_moment_its_storage_goes() -> None:
    """Storage stalls at 100 on the engine host; sanlock kills the VM at 160; host 2 has the engine up at 229."""
    result = run("storage-stall-long")
    assert times(result, 1, "vm: killed") == [160.0] and times(result, 2, "vm: engine up") == [229.0]
    assert result.downtime == 229.0 - 100.0


def test_downtime_counts_from_a_fault_before_the_engine_was_ever_up() -> None:
    """Cold start; host 2 loses power at 5 s; host 1 has the engine up later: all of that after the fault is downtime."""
    result = scenario.run(Scenario("cold", "", 2, 200, 0, (Event(5, "power-off", 2),)))
    [up] = times(result, 1, "vm: engine up")
    assert result.engine_host == 1 and round(result.downtime, 1) == round(up - 5, 1) > 0


def test_the_summary_says_where_the_engine_is_when_it_is_not_healthy() -> None:
    result = scenario.run(Scenario("sick", "", 1, 200, 1, (Event(100, "health-bad", 1),)))
    end = result.lines()[-2]
    assert result.engine_host is None and "nowhere" not in end
    assert end.startswith("end 200 s: engine not healthy anywhere (host 1: VM up, health bad); downtime 100.0 s")


def test_the_wait_for_the_engine_lease_shows_as_a_wait() -> None:
    """Host 2 starts the engine while host 1's lease has not expired: the acquire waits, and the timeline says so."""
    result = run("engine-host-power-loss")
    waits = [e for e in result.timeline if e.host == 2 and e.what == "sanlock: engine lease acquire waits"]
    [taken] = times(result, 2, "sanlock: engine lease taken over")
    assert len(waits) == 1 and waits[0].t < taken and "host 1" in waits[0].detail


def test_a_rejoin_after_a_storage_outage_takes_the_join_time() -> None:
    """The stall ends at 300: add_lockspace then takes 2 x io_timeout + 1 s (21 s), not nothing."""
    result = run("storage-stall-long")
    assert times(result, 1, "sanlock: host-id lease held") == [321.0]


def test_a_rejoin_after_a_power_cycle_waits_out_the_old_host_id_lease() -> None:
    """Power back at 300: the host id was held by the host's previous sanlock daemon, so sanlock waits 140 s first."""
    result = run("power-loss-and-return")
    assert times(result, 1, "sanlock: host-id lease held") == [300.0 + 140 + 21]


def test_a_graceful_shutdown_releases_the_host_id_for_a_fast_rejoin() -> None:
    result = scenario.run(Scenario("reboot", "", 2, 600, 2, (Event(100, "host-reboot", 1),)))
    [down] = times(result, 1, "host: shut down")
    assert times(result, 1, "sanlock: host-id lease held") == [21.0, down + 120 + 21]


def test_the_summary_says_why_an_isolated_engine_is_not_up() -> None:
    result = scenario.run(Scenario("isolated", "", 1, 150, 1, (Event(100, "storage-lost", 1),)))
    assert "engine not healthy anywhere (host 1: VM up, storage unreachable); downtime 50.0 s" in result.lines()[-2]
