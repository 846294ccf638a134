"""The three-host lab (lab/cluster.py), built with hectl deploy and deploy --join, under faults, with the
never-two-engines watcher running throughout: on localfs, then on a Gluster volume served by the hosts themselves
(a storage stall there: every brick stopped) for every fault where the storage matters."""

from __future__ import annotations

import re
import subprocess
import time
from collections.abc import Iterator

import pytest

from hectl.lease import host_dead_seconds, renewal_fail_seconds
from lab import cluster as lab_cluster
from tests.cluster.helpers import deployed, engine_host, sanlock_failover, stays
from tests.virt.vmlab import wait_until

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.lab]


@pytest.fixture(scope="module", params=["localfs", "glusterfs"])
def lab(request: pytest.FixtureRequest) -> Iterator[tuple[lab_cluster.Cluster, lab_cluster.NeverTwo]]:
    """The lab on localfs (through the stallable FUSE layer), then on a Gluster volume served by its hosts."""
    storage = request.param
    reason = lab_cluster.missing(stallable=storage == "localfs", storage=storage)
    if reason:
        pytest.skip(reason)
    cluster = lab_cluster.Cluster(3, stallable=storage == "localfs", storage=storage)
    with deployed(cluster, lab_cluster.NeverTwo(cluster), request) as lab:
        print(f"\nlab ({storage}): {', '.join(f'{k} {v:.1f}' for k, v in cluster.timings.items())}")
        yield lab


# What does not depend on the storage runs on localfs only (the suite's time): an agent restart, global
# maintenance, gateway loss, a hung guest, a libvirtd hang and the watcher's own test.
localfs_only = pytest.mark.parametrize("lab", ["localfs"], indirect=True)
# A power loss and the dead host's return run on Gluster only here: on localfs, tests/cluster/test_fencing.py has
# both (fenced, and with the BMC silent the normal path: sanlock's host_dead_seconds).
gluster_only = pytest.mark.parametrize("lab", ["glusterfs"], indirect=True)


def test_all_hosts_live_and_the_engine_where_deploy_started_it(lab: tuple[lab_cluster.Cluster, lab_cluster.NeverTwo]) -> None:
    cluster, _ = lab
    h2 = cluster.hosts[1]
    wait_until(lambda: all(r["live"] for r in h2.status()["hosts"]), 60, "all three hosts live in vm-status")
    assert engine_host(cluster).id == 1  # deploy started it on host 1; the agents took it over, no restart
    res = h2.hectl("vm-start")
    assert res.returncode == 5 and "host 1" in res.stderr, res.stderr  # another host refuses by itself


@localfs_only
def test_an_agent_restart_does_not_restart_the_engine(lab: tuple[lab_cluster.Cluster, lab_cluster.NeverTwo]) -> None:
    cluster, _ = lab
    host = engine_host(cluster)
    host.restart_agent()
    stays(cluster, host, 10 * 2)  # ten cycles of the restarted agent


@localfs_only
def test_global_maintenance_nothing_moves_whatever_fails(lab: tuple[lab_cluster.Cluster, lab_cluster.NeverTwo]) -> None:
    cluster, _ = lab
    host = engine_host(cluster)
    assert host.hectl("set-maintenance", "--mode", "global", "--reason", "lab").returncode == 0
    host.gateway(reachable=False)
    host.hang_engine()
    try:
        stays(cluster, host, 8 * 2 + 20)  # past the bad-health timeout (20 s): the hung engine is left alone
    finally:
        host.gateway(reachable=True)
        host.hang_engine(False)
    assert host.hectl("vm-poweroff").returncode == 0
    time.sleep(8 * 2)  # eight cycles: nobody starts it
    assert cluster.engine_hosts() == [] and not any(h.engine_pids() for h in cluster.hosts)
    # The lease is free, but another process has the engine's disk open (QEMU's image lock): a clean refusal.
    image = cluster.root / "images" / "engine.qcow2"
    holder = subprocess.Popen(["qemu-io", "-f", "qcow2", str(image)], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL)
    try:
        time.sleep(1)
        res = host.hectl("vm-start")
        assert res.returncode == 5 and "in use by another process" in res.stderr, res.stderr
        assert cluster.engine_hosts() == [] and not any(h.engine_pids() for h in cluster.hosts)
    finally:
        assert holder.stdin is not None
        holder.stdin.close()
        holder.wait(10)
    assert host.hectl("set-maintenance", "--mode", "none").returncode == 0
    engine_host(cluster)  # and out of maintenance it runs again


def test_local_maintenance_moves_the_engine_and_none_does_not_move_it_back(
    lab: tuple[lab_cluster.Cluster, lab_cluster.NeverTwo],
) -> None:
    cluster, _ = lab
    old = engine_host(cluster)
    t0 = time.monotonic()
    assert old.hectl("set-maintenance", "--mode", "local", "--reason", "patching").returncode == 0
    via = next(h for h in cluster.hosts if h.up and h is not old)
    took, new = wait_until(lambda: (w := cluster.one_engine(via)) != old.id and w, 240, "the engine moved")
    print(f"\nlocal maintenance of host {old.id} -> engine healthy on host {new}: {took:.1f} s")
    assert old.hectl("set-maintenance", "--mode", "none").returncode == 0
    stays(cluster, cluster.hosts[new - 1], 8 * 2)
    assert time.monotonic() - t0 > took


@localfs_only
def test_gateway_loss_on_the_engine_host_moves_the_engine(lab: tuple[lab_cluster.Cluster, lab_cluster.NeverTwo]) -> None:
    cluster, _ = lab
    old = engine_host(cluster)
    via = next(h for h in cluster.hosts if h.up and h is not old)
    old.gateway(reachable=False)
    try:
        took, new = wait_until(lambda: (w := cluster.one_engine(via)) != old.id and w, 240, "the engine moved")
    finally:
        old.gateway(reachable=True)
    print(f"\ngateway loss on host {old.id} -> engine healthy on host {new}: {took:.1f} s")


def test_a_network_cut_of_the_engine_host_moves_the_engine(lab: tuple[lab_cluster.Cluster, lab_cluster.NeverTwo]) -> None:
    """The host's link is cut: it loses its gateway and the engine moves; with the link back the engine stays
    where it went. On localfs its storage stays reachable (as on a separate storage network); on Gluster its FUSE
    client loses the other two bricks too."""
    cluster, _ = lab
    old = engine_host(cluster)
    via = next(h for h in cluster.hosts if h.up and h is not old)
    old.cut(True)
    try:
        took, new = wait_until(lambda: (w := cluster.one_engine(via)) != old.id and w, 240, "the engine moved")
    finally:
        old.cut(False)
    print(f"\nnetwork cut of host {old.id} -> engine healthy on host {new}: {took:.1f} s")
    stays(cluster, cluster.hosts[new - 1], 8 * 2)


@localfs_only
def test_a_hung_engine_is_restarted_after_the_bad_health_timeout(lab: tuple[lab_cluster.Cluster, lab_cluster.NeverTwo]) -> None:
    cluster, _ = lab
    host = engine_host(cluster)
    frozen = host.engine_pids()
    via = next(h for h in cluster.hosts if h.up and h is not host)
    host.hang_engine()
    try:
        took, _ = wait_until(
            lambda: cluster.one_engine(via) and not any(p in frozen for h in cluster.hosts for p in h.engine_pids()),
            300, "a new engine healthy",
        )  # fmt: skip
    except AssertionError:
        for h in cluster.hosts:
            print(f"--- agent {h.id}\n" + h.log.read_text()[-3000:])
        raise
    print(f"\nengine guest hang -> a new engine healthy after {took:.1f} s (bad_health 20 s, stop 10 s)")
    assert took >= 20


def test_a_storage_stall_shorter_than_the_lease_budget_moves_nothing(
    lab: tuple[lab_cluster.Cluster, lab_cluster.NeverTwo],
) -> None:
    """Every host's I/O on the domain frozen for half of sanlock's renewal budget: the engine keeps running where
    it is, the same QEMU process, and stays there once the storage answers again."""
    cluster, _ = lab
    host = engine_host(cluster)
    pids = host.engine_pids()
    cluster.stall_storage(True)
    try:
        stays(cluster, host, renewal_fail_seconds(cluster.io_timeout) / 2)
    finally:
        cluster.stall_storage(False)
    stays(cluster, host, 8 * 2)
    assert host.engine_pids() == pids


def test_a_storage_stall_longer_than_the_lease_budget_stops_the_engine_and_it_comes_back(
    lab: tuple[lab_cluster.Cluster, lab_cluster.NeverTwo],
) -> None:
    """Past sanlock's renewal budget no host can prove it holds its lease: sanlock kills the engine (which dies
    as soon as its frozen I/O returns: on a real host the watchdog resets it if it cannot), and once the storage
    answers one engine runs again, never two."""
    cluster, watcher = lab
    host = engine_host(cluster)
    pids = host.engine_pids()
    budget = renewal_fail_seconds(cluster.io_timeout)
    cluster.stall_storage(True)
    try:
        time.sleep(budget + 10)
    finally:
        cluster.stall_storage(False)
    wait_until(lambda: not any(p in pids for p in host.engine_pids()), 30, "the old engine gone")
    via = next(h for h in cluster.hosts if h.up)
    took, winner = wait_until(lambda: cluster.one_engine(via), 180, "one healthy engine again")
    print(f"\nstorage stall of {budget + 10:.0f} s (budget {budget:.0f} s) -> engine healthy on host {winner} {took:.1f} s after")
    assert watcher.violations == []


@localfs_only
def test_a_libvirtd_hang_on_the_engine_host_moves_nothing(lab: tuple[lab_cluster.Cluster, lab_cluster.NeverTwo]) -> None:
    """libvirtd of the engine host stops answering (the agent's hypervisor calls time out): the engine, healthy
    and holding its lease, keeps running; nobody else can or tries to start it; with libvirtd back all is as before."""
    cluster, _ = lab
    host = engine_host(cluster)
    host.hang_libvirtd(True)
    try:
        stays(cluster, host, 40)  # four of the agent's hypervisor timeouts (10 s)
    finally:
        host.hang_libvirtd(False)
    stays(cluster, host, 8 * 2)


@gluster_only
def test_power_loss_of_the_engine_host_fails_over(lab: tuple[lab_cluster.Cluster, lab_cluster.NeverTwo]) -> None:
    """The survivors' vm-status shows the dead host stale, then sanlock's view of it failing, then dead; one
    engine runs elsewhere once its lease has expired, never before."""
    cluster, watcher = lab
    dead = engine_host(cluster)
    took, winner, seen = sanlock_failover(cluster, dead)
    limit = host_dead_seconds(cluster.io_timeout)
    print(f"\npower loss of host {dead.id} -> engine healthy on host {winner}: {took:.1f} s (host_dead_seconds {limit:.0f}); "
          f"seen: {', '.join(f'{k} {v:.1f}' for k, v in seen.items() if k)}")  # fmt: skip
    assert watcher.violations == [] and watcher.polls > 100


@gluster_only
def test_the_host_that_died_comes_back_without_fail_back(lab: tuple[lab_cluster.Cluster, lab_cluster.NeverTwo]) -> None:
    cluster, _ = lab
    current = engine_host(cluster)
    back = next(h for h in cluster.hosts if not h.up)
    back.start()
    back.start_agent()
    wait_until(lambda: all(r["live"] for r in back.status()["hosts"]), 120, "the host is back and live")
    stays(cluster, current, 8 * 2)

    def ready() -> bool:  # a host that could take the engine: its libvirt answers, it has joined, and it waits
        return next(r for r in back.status()["hosts"] if r["host_id"] == back.id)["state"] == "EngineDown"

    wait_until(ready, host_dead_seconds(cluster.io_timeout) + 60, "the host back in EngineDown")


@localfs_only
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
