"""What the lab's test modules share: where the engine runs, and that it stays there."""

from __future__ import annotations

import time

from lab import cluster as lab_cluster
from tests.virt.vmlab import wait_until


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
