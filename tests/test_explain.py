"""hectl explain: state, score terms, timers and both liveness views, from the local agent's view file."""

from __future__ import annotations

import json
import time

from conftest import Domain, run_hectl

from hectl import localstate
from hectl.config import HAConfig
from hectl.ha import fsm


def test_without_a_running_agent_it_says_so(domain: Domain) -> None:
    domain.publish(1)
    res = run_hectl(["explain"], env=domain.env)
    assert res.returncode == 0 and "local agent absent" in res.stdout
    data = json.loads(run_hectl(["explain", "--json"], env=domain.env).stdout)
    assert data["schema"] == "hectl.explain/1" and data["score"] is None and data["timers"] == []


def test_with_an_agent_view(domain: Domain) -> None:
    rec1, rec2 = domain.publish(1, vm="up", health="bad"), domain.publish(2)
    view = localstate.AgentView(
        1,
        fsm.S.UP_BAD,
        localstate.boot_id(),
        time.monotonic(),
        time.time(),
        {1: localstate.HostView(True, rec1.seq, 0.0, "live"), 2: localstate.HostView(False, rec2.seq, 40.0, "fail")},
        reason="engine health bad (100 of 300 s)",
        state_age=100.0,
        score=3400,
        score_lines=("base 3400", "= 3400"),
        timers=(("EngineStop: engine unhealthy too long", 200.0),),
        storage=(("read_ok", True), ("read_ms", 1.5), ("direct_io", True), ("write_ok", False), ("write_error", "timed out")),
    )
    localstate.write_agent_view(str(domain.state_dir), view)
    data = json.loads(run_hectl(["explain", "--json"], env=domain.env).stdout)
    assert data["agent"]["state"] == fsm.S.UP_BAD and data["agent"]["reason"].startswith("engine health bad")
    assert data["score"] == {"total": 3400, "terms": ["base 3400", "= 3400"]}
    assert data["timers"][0]["then"] == "EngineStop: engine unhealthy too long" and 190 < data["timers"][0]["in_s"] <= 200
    hosts = {h["host_id"]: (h["record"], h["sanlock"]) for h in data["hosts"]}
    assert hosts == {1: ("live", "live"), 2: ("remote-host-silent", "fail")}
    text = run_hectl(["explain"], env=domain.env).stdout
    assert "state EngineUpBadHealth for 100 s" in text and "EngineStop: engine unhealthy too long" in text
    assert "storage (last cycle): read 1.5 ms, write FAILED: timed out" in text
    assert data["storage"]["write_error"] == "timed out"
    assert data["vm"]["engine"] == {"vm": "up", "health": "bad", "detail": "", "reason": ""}
    assert data["vm"]["accelerator"] in ("kvm", "tcg") and data["vm"]["accelerator_reason"]
    assert "engine VM here: up, health bad" in text and f"accelerator for a start here: {data['vm']['accelerator']}" in text


def test_an_impossible_score_is_flagged(domain: Domain) -> None:
    domain.publish(1)
    domain.publish(2, score=2**31 - 1)
    data = json.loads(run_hectl(["explain", "--json"], env=domain.env).stdout)
    ignored = {h["host_id"]: h["score_ignored"] for h in data["hosts"]}
    assert ignored == {1: None, 2: "score 2147483647 outside 0..3400 ([score] base)"}
    assert "host 2 is ineligible: score 2147483647 outside 0..3400" in run_hectl(["explain"], env=domain.env).stdout


def test_accelerator_setting_is_reported(domain: Domain) -> None:
    domain.config.write_text(domain.config.read_text() + "[vm]\naccelerator = tcg\n")
    data = json.loads(run_hectl(["explain", "--json"], env=domain.env).stdout)
    assert data["vm"] == {"engine": None, "accelerator": "tcg", "accelerator_reason": "set in [vm] accelerator"}


def test_timers() -> None:
    t = HAConfig()
    mem = fsm.Memory(fsm.S.STARTING, 100.0, (50.0,))
    assert fsm.timers(mem, 160.0, t, history=10.0) == [
        ("EngineStop: engine not healthy in time", 240.0),
        ("may start the engine: enough history observed", 20.0),
        ("forget an engine failure (1 counted)", 490.0),
    ]
    assert fsm.timers(fsm.Memory(fsm.S.UP, 0.0), 500.0, t, history=500.0) == []
    failed = (10.0, 20.0, 30.0, 40.0)
    mem = fsm.Memory(fsm.S.RETRY_WAIT, 50.0, failed, waiting_since=None, passed_over=((3, 700.0),))
    assert fsm.timers(mem, 100.0, t, history=500.0) == [
        ("forget an engine failure (4 counted)", 510.0),
        ("may retry the engine here: few enough recent failures", 510.0),
        ("believe host 3's record again (it claimed without acting)", 600.0),
    ]
    waiting = fsm.Memory(fsm.S.DOWN, 50.0, waiting_since=80.0)
    assert fsm.timers(waiting, 100.0, t, history=500.0) == [
        ("pass over the host waited on: its claim is not backed by sanlock", 30.0)
    ]
