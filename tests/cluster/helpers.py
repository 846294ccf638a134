"""What the lab's test modules share: where the engine runs, and that it stays there."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator

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


@contextlib.contextmanager
def deployed(
    cluster: lab_cluster.Cluster, watcher: lab_cluster.NeverTwo
) -> Iterator[tuple[lab_cluster.Cluster, lab_cluster.NeverTwo]]:
    """The lab started, deployed and its agents running with ``watcher`` polling; afterwards closed, leaving
    nothing behind, no agent having logged a traceback."""
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
        cluster.close()
    assert cluster.leftovers() == []
    assert not [i for i, text in logs.items() if "Traceback" in text], "an agent logged a traceback"
