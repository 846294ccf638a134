"""Real failover: two hosts, each in its own network namespace with its own sanlock daemon, libvirtd and agent.

One engine runs (the lease makes a second impossible); the engine host loses
power (agent, sanlock daemon and QEMU SIGKILLed at once); the other host's agent
starts the engine as soon as sanlock lets it take the lease (host_dead_seconds
after the dead host's last renewal) and vm-status shows it EngineUp and healthy.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hectl.lease import host_dead_seconds
from lab import sanlock as lab_sanlock
from tests.conftest import write_config
from tests.virt.vmlab import IO_TIMEOUT, Host, free_port, host_config, install_engine, missing, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture
def hosts() -> Iterator[tuple[Host, Host, Path]]:
    from lab import appliance as lab_appliance

    reason = missing()
    if reason:
        pytest.skip(reason)
    base = lab_sanlock.shared_dir("hectl-failover-")
    shim = lab_sanlock.build_shim(base)
    pair = (Host(1, base, shim), Host(2, base, shim))
    try:
        appliance = lab_appliance.build()
        for h in pair:
            h.start()
        root = base / "domain"
        root.mkdir()
        port = free_port()  # the same in both namespaces: the engine keeps its address wherever it runs
        for h in pair:
            extra = host_config(h.libvirtd.uri, port, "loop = 2\nhistory = 6\n", start_timeout=120)
            write_config(h.config, root, base / f"state{h.id}", h.id, extra)
        install_engine(root, pair[0].config, pair[0].daemon, appliance, port, f"hectl-fo-{uuid.uuid4().hex[:8]}")
        yield pair[0], pair[1], base
    finally:
        for h in pair:
            h.close()
        shutil.rmtree(base, ignore_errors=True)


def rows(host: Host) -> dict[int, dict[str, Any]]:
    res = host.hectl("vm-status", "--json")
    assert res.returncode == 0, res.stderr
    return {r["host_id"]: r for r in json.loads(res.stdout)["hosts"] if r["host_id"] in (1, 2)}


def healthy_engine_on(row: dict[str, Any]) -> bool:
    return row["state"] == "EngineUp" and (row["engine"] or {}).get("health") == "good"


def test_engine_host_power_loss_fails_over(hosts: tuple[Host, Host, Path]) -> None:
    h1, h2, _ = hosts
    for h in (h1, h2):
        h.start_agent()

    def one_engine() -> int:
        seen = rows(h1)
        up = [i for i, r in seen.items() if healthy_engine_on(r)]
        return up[0] if len(up) == 1 and all(r["live"] for r in seen.values()) else 0

    took, winner = wait_until(one_engine, 180, "one host runs the engine, both live", every=0.5)
    print(f"\nengine up on host {winner} {took:.1f} s after both agents started")
    engine_host, other = (h1, h2) if winner == 1 else (h2, h1)
    assert len(engine_host.libvirtd.domains()) == 1 and other.libvirtd.domains() == []  # never two engines
    res = other.hectl("vm-start")
    assert res.returncode == 5 and f"host {winner}" in res.stderr  # the other host refuses by itself

    # Power loss of the engine host: its agent, its sanlock daemon and its QEMU die at once.
    line = next(x for x in engine_host.daemon.client("status").stdout.splitlines() if x.startswith("r hectl:engine:"))
    qemu = int(line.rsplit(" p ", 1)[1])
    assert engine_host.agent is not None
    for pid in (engine_host.agent.pid, engine_host.daemon.pid, qemu):
        os.kill(pid, signal.SIGKILL)

    def failed_over() -> bool:
        seen = rows(other)
        return healthy_engine_on(seen[other.id]) and not seen[engine_host.id]["live"]

    limit = host_dead_seconds(IO_TIMEOUT) + 90
    took, _ = wait_until(failed_over, limit, f"engine up on host {other.id}", every=1.0)
    dead = host_dead_seconds(IO_TIMEOUT)
    print(f"power loss of host {winner} -> engine healthy on host {other.id}: {took:.1f} s (host_dead_seconds {dead:.0f})")
    assert len(other.libvirtd.domains()) == 1
    # The dead host renewed at most 2 x io_timeout before it died: nothing could start before its lease expired.
    assert took >= host_dead_seconds(IO_TIMEOUT) - 2 * IO_TIMEOUT
    log = other.log.read_text()
    assert "Traceback" not in log
