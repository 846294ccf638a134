"""What the lab's test modules share: where the engine runs, and that it stays there."""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator

import pytest

from hectl.lease import host_dead_seconds
from lab import cluster as lab_cluster
from tests.virt.vmlab import wait_until

LOG_TAIL = 150


def engine_host(cluster: lab_cluster.Cluster) -> lab_cluster.Host:
    """The live host that runs the (healthy) engine, once there is exactly one."""
    via = next(h for h in cluster.hosts if h.up)
    _, winner = wait_until(lambda: cluster.one_engine(via), 180, "one healthy engine")
    return cluster.hosts[winner - 1]


def stays(cluster: lab_cluster.Cluster, host: lab_cluster.Host, seconds: float) -> None:
    """The engine stays on ``host`` (the same QEMU process) for ``seconds``."""
    pids = host.engine_pids()
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert cluster.engine_hosts() == [host.id] and host.engine_pids() == pids, "the engine moved or restarted"
        time.sleep(1)


def sanlock_failover(cluster: lab_cluster.Cluster, dead: lab_cluster.Host) -> tuple[float, int, dict[str, float]]:
    """Power loss of ``dead``, the engine's host, and the normal path after it: one engine elsewhere once sanlock
    holds the host dead, never before; a survivor's vm-status shows it stale, then sanlock failing it, then dead.
    Returns seconds to a healthy engine, its host and when vm-status showed each of those."""
    via = next(h for h in cluster.hosts if h.up and h is not dead)
    dead.power_loss()
    t0 = time.monotonic()
    seen: dict[str, float] = {}

    def over() -> int:
        row = next(r for r in via.status()["hosts"] if r["host_id"] == dead.id)
        for what in ("stale" if not row["live"] else "", row.get("lease") or ""):
            seen.setdefault(what, time.monotonic() - t0)
        return cluster.one_engine(via)

    limit = host_dead_seconds(cluster.io_timeout)
    took, winner = wait_until(over, limit + 120, "failover")
    # the survivor's agent publishes sanlock's view each cycle: "dead" may show a cycle after the engine runs again
    wait_until(lambda: over() and "dead" in seen, 30, "vm-status showing the dead host's lease dead")
    assert winner != dead.id and took >= limit - 2 * cluster.io_timeout  # nothing could start before the lease expired
    assert seen["stale"] < seen["fail"] < seen["dead"]  # the records first; sanlock fails it, then holds it dead
    return took, winner, seen


@contextlib.contextmanager
def deployed(
    cluster: lab_cluster.Cluster, watcher: lab_cluster.NeverTwo, request: pytest.FixtureRequest
) -> Iterator[tuple[lab_cluster.Cluster, lab_cluster.NeverTwo]]:
    """The lab started, deployed and its agents running with ``watcher`` polling; afterwards closed, leaving
    nothing behind, no agent having logged a traceback. When a test failed meanwhile (or HECTL_LAB_LOGS is set),
    the tail of each agent's log goes to the terminal first, past pytest's capture: CI keeps only its output."""
    failed_before = request.session.testsfailed
    try:
        cluster.start()
        cluster.deploy()
        watcher.start()
        cluster.start_agents()
        yield cluster, watcher
    finally:
        watcher.stop.set()
        watcher.join(10)
        logs = {h.id: h.log.read_text() for h in cluster.hosts if h.log.exists()}
        if os.environ.get("HECTL_LAB_LOGS") or request.session.testsfailed > failed_before:
            capture = request.config.pluginmanager.getplugin("capturemanager")
            with capture.global_and_fixture_disabled() if capture else contextlib.nullcontext():
                for i, text in logs.items():
                    lines = text.splitlines()[-LOG_TAIL:]
                    print(f"\n--- the last {len(lines)} lines of host {i}'s agent log ---", *lines, sep="\n", flush=True)
        cluster.close()
    assert cluster.leftovers() == []
    assert not [i for i, text in logs.items() if "Traceback" in text], "an agent logged a traceback"
