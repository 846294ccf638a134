"""The three-host lab (lab/cluster.py), built with hectl deploy and deploy --join, under faults, with the
never-two-engines watcher running throughout."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator

import pytest

from hectl.lease import host_dead_seconds
from lab import cluster as lab_cluster

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.lab]


def wait_until(predicate, timeout: float, what: str, every: float = 0.5):  # type: ignore[no-untyped-def]
    start = time.monotonic()
    while True:
        value = predicate()
        if value:
            return time.monotonic() - start, value
        assert time.monotonic() - start < timeout, f"{what}: not within {timeout} s"
        time.sleep(every)


@pytest.fixture(scope="module")
def lab() -> Iterator[tuple[lab_cluster.Cluster, lab_cluster.NeverTwo]]:
    reason = lab_cluster.missing()
    if reason:
        pytest.skip(reason)
    cluster = lab_cluster.Cluster(3)
    watcher = lab_cluster.NeverTwo(cluster)
    try:
        cluster.start()
        cluster.deploy()
        watcher.start()
        cluster.start_agents()
        print(f"\nlab: {', '.join(f'{k} {v:.1f}' for k, v in cluster.timings.items())}")
        yield cluster, watcher
    finally:
        watcher.stop.set()
        watcher.join(10)
        cluster.close()
    assert cluster.leftovers() == []


def one_engine(cluster: lab_cluster.Cluster, via: lab_cluster.Host) -> int:
    """The host the engine runs on when exactly one holds the lease and the health page answers, else 0."""
    holders = cluster.engine_hosts()
    return holders[0] if len(holders) == 1 and cluster.healthy(via) else 0


def test_power_loss_of_the_engine_host_fails_over(lab: tuple[lab_cluster.Cluster, lab_cluster.NeverTwo]) -> None:
    cluster, watcher = lab
    h1, h2, _ = cluster.hosts
    wait_until(lambda: all(r["live"] for r in h2.status()["hosts"]), 60, "all three hosts live in vm-status")
    assert one_engine(cluster, h2) == 1  # deploy started it on host 1; the agents kept it there
    h1.power_loss()
    t0 = time.monotonic()
    took, winner = wait_until(lambda: one_engine(cluster, h2), host_dead_seconds(cluster.io_timeout) + 120, "failover")
    dead = host_dead_seconds(cluster.io_timeout)
    print(f"\npower loss of host 1 -> engine healthy on host {winner}: {took:.1f} s (host_dead_seconds {dead:.0f})")
    assert winner in (2, 3) and took >= dead - 2 * cluster.io_timeout  # nothing could start before the lease expired
    assert time.monotonic() - t0 >= took and watcher.violations == [] and watcher.polls > 100


def test_the_watcher_catches_a_second_engine_started_without_the_lease(
    lab: tuple[lab_cluster.Cluster, lab_cluster.NeverTwo],
) -> None:
    """Outside the product: a copy of the engine VM without its <lease> started on another live host."""
    import libvirt

    cluster, watcher = lab
    engine = next(h for h in cluster.hosts if h.up and h.lease_held())
    other = next(h for h in cluster.hosts if h.up and h is not engine)
    conn = libvirt.open(engine.libvirtd.uri)
    try:
        xml = conn.lookupByName(cluster.vm_name).XMLDesc(0)
    finally:
        conn.close()
    rogue_xml = re.sub(r"<lease>.*?</lease>|<disk .*?</disk>", "", xml, flags=re.S)  # no lease; no disk to fight over
    conn = libvirt.open(other.libvirtd.uri)
    try:
        dom = conn.createXML(rogue_xml, 0)
        try:
            wait_until(lambda: watcher.violations, 10, "the watcher sees two engines", every=0.1)
        finally:
            dom.destroy()
    finally:
        conn.close()
    assert sorted(watcher.violations[0][1]) == sorted([engine.id, other.id])
    watcher.violations.clear()  # caused on purpose: the lab goes on without it
