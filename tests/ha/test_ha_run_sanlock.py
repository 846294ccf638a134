"""Two real ``hectl ha run`` agents, each with its own real sanlock daemon, on one localfs domain.

Both join the lockspace and show live in ``vm-status``; a SIGKILL of one agent
together with its sanlock daemon (power loss) makes the other report it stale
within the liveness window, and sanlock report it failed, then dead. SIGTERM
stops an agent promptly with a clean "stopped" record and the host id released.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import HECTL, run_hectl, write_config

from hectl.context import AppContext
from hectl.storage.domain import init_domain
from lab import sanlock as lab

pytestmark = [pytest.mark.integration, pytest.mark.slow]

IO_TIMEOUT = 2  # fail after 8 x 2 = 16 s without renewal, dead after 8 x 2 + 60 = 76 s
WINDOW = 8


@pytest.fixture
def lab_hosts(tmp_path: Path) -> Iterator[dict[str, Any]]:
    reason = lab.missing()
    if reason:
        pytest.skip(reason)
    base = lab.shared_dir("hectl-sanlock-")
    daemons = [lab.Daemon(base / f"run{i}", lab.build_shim(tmp_path)) for i in (1, 2)]
    agents: list[subprocess.Popen[str]] = []
    try:
        for d in daemons:
            d.start()
        root = base / "domain"
        root.mkdir()
        root.chmod(0o755)
        configs = []
        for i in (1, 2):
            extra = (
                f"[timeouts]\nliveness_window = {WINDOW}\nagent_silent_after = 10\n"
                f"[ha]\nio_timeout = {IO_TIMEOUT}\nloop = 2\nhistory = 8\n"
            )
            configs.append(write_config(base / f"hectl-{i}.conf", root, base / f"state{i}", host_id=i, extra=extra))
        app = AppContext(config_path=str(configs[0]), environ={})
        init_domain(app.backend(), app.clock, 5.0)
        lab.initialize_domain_leases(root, daemons[0], IO_TIMEOUT)
        for i, (d, cfg) in enumerate(zip(daemons, configs, strict=True), 1):
            env = dict(os.environ, HECTL_CONFIG=str(cfg), **d.env)
            log = open(base / f"agent{i}.log", "w")  # noqa: SIM115 - closed with the process
            agents.append(subprocess.Popen([HECTL, "ha", "run"], env=env, stdout=log, stderr=log, text=True))
        yield {"base": base, "daemons": daemons, "agents": agents, "configs": configs}
    finally:
        for a in agents:
            if a.poll() is None:
                a.kill()
            a.wait(10)
        for d in daemons:
            d.stop()
        shutil.rmtree(base, ignore_errors=True)


def status(config: Path) -> dict[str, Any]:
    res = run_hectl(["vm-status", "--json"], env=dict(os.environ, HECTL_CONFIG=str(config)))
    assert res.returncode == 0, res.stderr
    return json.loads(res.stdout)


def wait_for(predicate, timeout: float, what: str, config: Path) -> tuple[float, dict[str, Any]]:  # type: ignore[no-untyped-def]
    start = time.monotonic()
    while True:
        data = status(config)
        if predicate(data):
            return time.monotonic() - start, data
        assert time.monotonic() - start < timeout, f"{what} not seen within {timeout} s: {json.dumps(data['hosts'])}"
        time.sleep(0.5)


def host(data: dict[str, Any], host_id: int) -> dict[str, Any]:
    return next(h for h in data["hosts"] if h["host_id"] == host_id)


def test_two_agents_join_explain_and_a_clean_stop(lab_hosts: dict[str, Any]) -> None:
    """Two agents with real sanlock daemons join and see each other live; explain shows the real monitors; a clean
    stop is prompt, published and releases the host id. (A power loss, seen stale, failing and dead in
    vm-status, is tests/cluster/test_cluster.py's.)"""
    cfg1 = lab_hosts["configs"][0]

    def both_live(d: dict[str, Any]) -> bool:
        agent_running = d["local_agent"]["status"] == "running"
        return agent_running and all(host(d, i)["live"] and host(d, i).get("lease") == "live" for i in (1, 2))

    _, data = wait_for(both_live, 60, "both hosts live with their sanlock leases", cfg1)
    assert data["liveness"]["source"] == "agent"
    for d, i in zip(lab_hosts["daemons"], (1, 2), strict=True):
        assert f"s hectl:{i}:" in d.client("status").stdout  # each daemon holds its own host id
    res = run_hectl(["explain", "--json"], env=dict(os.environ, HECTL_CONFIG=str(cfg1)))
    assert res.returncode == 0, res.stderr
    why = json.loads(res.stdout)
    assert why["agent"]["status"] == "running" and why["agent"]["state"] == "UnknownLocalVmState"
    terms = why["score"]["terms"]  # real monitors: memory and CPU load of this machine
    assert terms[0] == "base 3400" and terms[-1] == f"= {why['score']['total']}"
    assert {(h["host_id"], h["record"], h["sanlock"]) for h in why["hosts"]} == {(1, "live", "live"), (2, "live", "live")}
    assert why["storage"]["read_ok"] and why["storage"]["write_ok"] and why["storage"]["read_ms"] >= 0  # the storage monitor

    # A clean stop of host 1: prompt, published, host id released.
    t0 = time.monotonic()
    lab_hosts["agents"][0].send_signal(signal.SIGTERM)
    assert lab_hosts["agents"][0].wait(30) == 0
    assert time.monotonic() - t0 < 15
    final = status(cfg1)
    assert host(final, 1)["state"] == "AgentStopped" and host(final, 1)["stale_reason"] == "agent-stopped"
    assert "s hectl:1:" not in lab_hosts["daemons"][0].client("status").stdout


def test_duplicate_host_id_is_reported_in_words(lab_hosts: dict[str, Any], tmp_path: Path) -> None:
    """A third host configured with host id 1 (held by a live host) says so in words, not -262, and keeps trying."""
    cfg1 = lab_hosts["configs"][0]
    wait_for(lambda d: host(d, 1).get("lease") == "live", 60, "host 1 joined", cfg1)
    third = lab.Daemon(lab_hosts["base"] / "run3", lab.build_shim(tmp_path))
    third.start()
    log = lab_hosts["base"] / "agent3.log"
    try:
        with open(log, "w") as out:
            cfg3 = tmp_path / "hectl-3.conf"  # host id 1 again, on a host of its own (its own state directory)
            cfg3.write_text(re.sub(r"state_dir = .*", f"state_dir = {tmp_path / 'state3'}", Path(cfg1).read_text()))
            env = dict(os.environ, HECTL_CONFIG=str(cfg3), **third.env)
            agent = subprocess.Popen([HECTL, "ha", "run"], env=env, stdout=out, stderr=out)
            deadline = time.monotonic() + 150  # sanlock answers after 8 x io_timeout + 60 s
            while "is being used by another host" not in log.read_text() and time.monotonic() < deadline:
                assert agent.poll() is None, log.read_text()
                time.sleep(1)
            agent.send_signal(signal.SIGTERM)
            assert agent.wait(30) == 0
        assert "sanlock: host id 1: this host id is being used by another host (-262)" in log.read_text()
    finally:
        third.stop()
