"""Every score penalty, from hand-built monitor values."""

from __future__ import annotations

import pytest

from hectl.config import ScoreConfig
from hectl.ha.score import HostHealth, compute

CFG = ScoreConfig()
HEALTHY = HostHealth(network_ok=5, network_probes=5, bridge_up=True, bridge_name="br0", mem_free_mib=8192, cpu_load=0.1)


def score(health: HostHealth = HEALTHY, **kw: object):  # type: ignore[no-untyped-def]
    args: dict[str, object] = dict(engine_mem_mib=4096, engine_here=False, global_maintenance=False)
    args.update(kw)
    return compute(health, CFG, **args)  # type: ignore[arg-type]


def test_healthy_host_scores_the_base() -> None:
    s = score()
    assert (s.total, s.penalties, s.zeroed_by) == (3400, (), "")
    assert s.explain() == ["base 3400", "= 3400"]


@pytest.mark.parametrize(
    ("change", "name", "points", "cause"),
    [
        (dict(network_ok=4), "network", 320, "4/5 gateway probes answered"),
        (dict(network_ok=0), "network", 1600, "0/5 gateway probes answered"),
        (dict(config_current=False), "config", 1000, "local configuration differs from the shared one"),
        (dict(bridge_up=False), "bridge", 600, "br0 is down"),
        (dict(bridge_up=None), "bridge", 600, "br0 state unknown"),
        (dict(mem_free_mib=1024), "memory", 400, "1024 MiB free < 4096 MiB for the engine"),
        (dict(cpu_load=0.65), "cpu", 500, "load 0.65 (penalty from 0.4 to 0.9)"),
        (dict(cpu_load=0.95), "cpu", 1000, "load 0.95 (penalty from 0.4 to 0.9)"),
    ],
)
def test_each_penalty_with_its_cause(change: dict[str, object], name: str, points: int, cause: str) -> None:
    s = score(HEALTHY._replace(**change))
    assert [(p.name, p.points, p.cause) for p in s.penalties] == [(name, points, cause)]
    assert s.total == 3400 - points
    assert f"-{points} {name}: {cause}" in s.explain()


def test_unknown_network_and_cpu_cost_nothing() -> None:
    assert score(HEALTHY._replace(network_ok=None, cpu_load=None)).total == 3400


def test_memory_is_not_counted_where_the_engine_runs_or_in_global_maintenance() -> None:
    low = HEALTHY._replace(mem_free_mib=100)
    assert score(low).total == 3000
    assert score(low, engine_here=True).total == 3400
    assert score(low, global_maintenance=True).total == 3400


def test_failed_starts_cost_50_each_then_zero() -> None:
    assert score(failed_starts=1).total == 3350
    assert score(failed_starts=3).total == 3250
    s = score(failed_starts=4)
    assert s.total == 0 and s.zeroed_by == "4 engine failures here recently (more than 3)"


def test_penalties_add_up_and_never_go_below_zero() -> None:
    bad = HostHealth(network_ok=0, network_probes=5, bridge_up=False, mem_free_mib=0, cpu_load=1.0, config_current=False)
    s = score(bad, failed_starts=2)
    assert sum(p.points for p in s.penalties) == 1600 + 1000 + 600 + 400 + 1000 + 100
    assert s.total == 0 and s.zeroed_by == ""


def test_state_can_force_zero_with_a_reason() -> None:
    s = score(zeroed_by="local maintenance")
    assert s.total == 0 and s.explain()[-1] == "= 0: local maintenance"


def test_configured_weights_apply() -> None:
    cfg = CFG._replace(base=2000, bridge_penalty=999, cpu_min=0.5, cpu_max=0.5, cpu_penalty=7)
    health = HEALTHY._replace(bridge_up=False, cpu_load=0.5)
    s = compute(health, cfg, engine_mem_mib=1, engine_here=False, global_maintenance=False)
    assert s.total == 2000 - 999 - 7
