"""Live migration on the three-host lab (real libvirtd + QEMU + sanlock in each host's namespaces), over TLS
(qemu+tls:// between the libvirtds, an encrypted migration stream, certificates from a lab CA): vm-migrate,
local maintenance, a target that cannot take the lease, and power loss of either side in the middle (fencing
is configured: each host has a BMC, and a source that dies mid-migration is fenced); the never-two-engines
watcher polls every 50 ms throughout, and the health page is probed every 100 ms from a third host."""

from __future__ import annotations

import json
import re
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from hectl.config import VMConfig
from hectl.errors import HectlError, LockHeld, OperationFailed
from hectl.lease import host_dead_seconds
from hectl.vm import migration
from hectl.vm.libvirt import LibvirtHypervisor
from lab import cluster as lab_cluster
from lab import pki
from lab.probe import HealthProbe
from tests.cluster.helpers import deployed, engine_host, stays
from tests.virt.vmlab import wait_until

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.lab]
RUNNING_MIGRATED = (1, 2)  # libvirt: running, reason "migrated" (the guest arrived live, it did not boot here)
BANDWIDTH = 4  # MiB/s: a migration of the lab's engine (~80 MiB) takes ~20 s, long enough to cut it in the middle
DEAD_AFTER = 8.0  # [fencing] dead_after, as in tests/cluster/test_fencing.py


@pytest.fixture(scope="module")
def lab(request: pytest.FixtureRequest) -> Iterator[tuple[lab_cluster.Cluster, lab_cluster.NeverTwo]]:
    reason = lab_cluster.missing(tls=True, fencing=True)
    if reason:
        pytest.skip(reason)
    # (tests/cluster/test_cluster.py migrates over plain qemu+tcp://, without fencing)
    cluster = lab_cluster.Cluster(3, tls=True, fencing=DEAD_AFTER)
    watcher = lab_cluster.NeverTwo(cluster, every=0.05)
    with deployed(cluster, watcher, request) as lab:
        yield lab
    assert watcher.violations == [], watcher.why


def others(cluster: lab_cluster.Cluster, *hosts: lab_cluster.Host) -> list[lab_cluster.Host]:
    return [h for h in cluster.hosts if h.up and h not in hosts]


def arrived_live(host: lab_cluster.Host, cluster: lab_cluster.Cluster) -> bool:
    """libvirt on ``host`` runs the engine, reason "migrated": it came live, it did not boot there."""
    conn = host.libvirtd.connect()
    try:
        return tuple(conn.lookupByName(cluster.vm_name).state()) == RUNNING_MIGRATED
    finally:
        conn.close()


def moved_away(cluster: lab_cluster.Cluster, source: lab_cluster.Host, states: set[str]) -> int:
    """The host the engine runs on once it left ``source`` (0: not yet); ``states`` collects the source's agent's."""
    states.add(source.agent_state())
    holders = cluster.engine_hosts()
    return holders[0] if holders and holders != [source.id] else 0


def settle(lab: tuple[lab_cluster.Cluster, lab_cluster.NeverTwo]) -> tuple[lab_cluster.Host, lab_cluster.Host, list[int]]:
    """Once every host is settled: the engine's host, another host, and the engine's QEMU."""
    cluster, _ = lab
    all_live(cluster)
    source = engine_host(cluster)
    return source, others(cluster, source)[0], source.engine_pids()


REFUSALS = 20  # switch-overs refused in a row (a refusal once left the guest paused without its lease)


def refused(cluster: lab_cluster.Cluster, source: lab_cluster.Host, req: migration.MigrationRequest) -> HectlError:
    """The migration ``req`` asked of the source's libvirtd directly (below hectl's checks): the error it ends in."""
    hyper = LibvirtHypervisor(source.libvirtd.uri)
    try:
        hyper.migrate(cluster.vm_name, req, lambda _p: None)
    except HectlError as exc:
        return exc
    finally:
        hyper.close()
    raise AssertionError("the migration went through")


def all_live(cluster: lab_cluster.Cluster) -> None:
    """Every host live, settled (EngineUp or EngineDown) and scoring, as the others see it, and each host's
    sanlock sees every other one live (a host powered on again has rejoined with a new generation)."""
    up = [h for h in cluster.hosts if h.up]
    want = {h.id for h in up}

    def settled() -> bool:
        rows = up[0].status()["hosts"]
        ready = {r["host_id"] for r in rows if r["live"] and r["score"] and r["state"] in ("EngineUp", "EngineDown")}
        return ready >= want and all(want - {h.id} <= {i for i, s in h.lease_view().items() if s == "live"} for h in up)

    wait_until(settled, 240, "every host live and settled")


def test_local_maintenance_right_after_deploy_waits_for_a_host_and_migrates_live(
    lab: tuple[lab_cluster.Cluster, lab_cluster.NeverTwo],
) -> None:
    """The agents have just started: the other hosts still collect history (score 0) and their sanlock host ids
    may not be live yet. Local maintenance waits for one and migrates the engine live (bench_failover's planned
    move right after deploy used to fall back to the cold move: "no other host can take it live")."""
    cluster, watcher = lab
    source = engine_host(cluster)
    states: set[str] = set()
    assert source.hectl("set-maintenance", "--mode", "local", "--reason", "right after deploy").returncode == 0
    try:
        took, new = wait_until(lambda: moved_away(cluster, source, states), 120, "the engine migrated away", every=0.5)
        print(f"\nlocal maintenance right after deploy: migrated to host {new} in {took:.1f} s; states {sorted(states)}")
        assert "EngineMigratingAway" in states and arrived_live(cluster.hosts[new - 1], cluster), states
        wait_until(lambda: source.agent_state() == "LocalMaintenance", 60, "local maintenance")
    finally:
        assert source.hectl("set-maintenance", "--mode", "none").returncode == 0
    assert watcher.violations == []


def test_vm_migrate_moves_the_running_engine_with_one_short_gap(lab: tuple[lab_cluster.Cluster, lab_cluster.NeverTwo]) -> None:
    cluster, watcher = lab
    all_live(cluster)
    source = engine_host(cluster)
    target, third = others(cluster, source)
    with HealthProbe(third.netns, cluster.health_url) as probe:
        time.sleep(1)
        t0 = time.monotonic()
        res = source.hectl("vm-migrate", "--to", str(target.id), "--wait", "--json")
        time.sleep(2)
    assert res.returncode == 0, res.stderr
    data = json.loads(res.stdout)
    assert (data["to_host_id"], data["result"], data["transport"]) == (target.id, "migrated", "tls")
    assert data["downtime_ms"] is not None
    assert cluster.engine_hosts() == [target.id] and not source.engine_pids() and arrived_live(target, cluster)
    gaps = probe.outages(since=t0 - 1)
    print(f"\nvm-migrate {source.id} -> {target.id}: {data['migration_s']:.1f} s, libvirt downtime {data['downtime_ms']} ms, "
          f"{len(probe.samples)} probes, outages {[round(g[1], 2) for g in gaps]}")  # fmt: skip
    assert len(gaps) <= 1 and all(g[1] < 2.0 for g in gaps), gaps  # a cold restart is a boot: ~5 s here
    assert watcher.violations == [], watcher.why
    stays(cluster, target, 6)
    # the source's agent saw the engine leave with its lease: no engine failure counted there
    wait_until(lambda: source.agent_state() == "EngineDown", 60, "the source back in EngineDown")
    assert next(r["score"] for r in source.status()["hosts"] if r["host_id"] == source.id) == 3400


def test_local_maintenance_migrates_and_none_does_not_move_it_back(lab: tuple[lab_cluster.Cluster, lab_cluster.NeverTwo]) -> None:
    cluster, watcher = lab
    all_live(cluster)
    source = engine_host(cluster)
    states: set[str] = set()
    with HealthProbe(others(cluster, source)[-1].netns, cluster.health_url) as probe:
        t0 = time.monotonic()
        assert source.hectl("set-maintenance", "--mode", "local", "--reason", "patching").returncode == 0
        took, new = wait_until(lambda: moved_away(cluster, source, states), 120, "the engine migrated away", every=0.5)
        wait_until(lambda: source.agent_state() == "LocalMaintenance", 60, "local maintenance")
    target = cluster.hosts[new - 1]
    gaps = probe.outages(since=t0)
    print(f"\nlocal maintenance of host {source.id} -> migrated to host {new} in {took:.1f} s; states {sorted(states)}; "
          f"outages {[round(g[1], 2) for g in gaps]}")  # fmt: skip
    assert "EngineMigratingAway" in states and arrived_live(target, cluster)
    assert len(gaps) <= 1 and all(g[1] < 2.0 for g in gaps), gaps
    explain = json.loads(source.hectl("explain", "--json").stdout)
    assert explain["agent"]["state"] == "LocalMaintenance"
    assert source.hectl("set-maintenance", "--mode", "none").returncode == 0
    stays(cluster, target, 16)
    assert watcher.violations == []


def test_a_target_that_cannot_take_the_lease_is_refused_and_the_engine_runs_on(
    lab: tuple[lab_cluster.Cluster, lab_cluster.NeverTwo],
) -> None:
    """Its agent stopped: vm-migrate refuses it (exit 5). Its sanlock out of the lockspace too, and libvirt asked
    anyway (below hectl's checks): the target's lease acquire fails at the switch-over, the source takes the lease
    back and the guest runs on there, paused only for the attempt."""
    cluster, watcher = lab
    source, target, pids = settle(lab)
    assert target.agent is not None
    target.agent.terminate()  # a clean stop: its record says stopped
    target.agent.wait(30)
    try:
        res = source.hectl("vm-migrate", "--to", str(target.id))
        assert res.returncode == LockHeld.exit_code and f"host {target.id} cannot take the engine" in res.stderr, res.stderr
        spec = next((line for line in target.daemon.client("status").stdout.splitlines() if line.startswith("s hectl:")), "")
        if spec:  # the agent leaves it joined when it stops
            assert target.daemon.client("rem_lockspace", "-s", spec.split()[1]).returncode == 0
        tls = VMConfig(migration_pki_dir=str(source.libvirtd.tls_dir))
        req = migration.request(tls, f"host{target.id}.lab", target.address, unsafe=True, timeout=60, bandwidth=0)
        began, restarted, logged = time.monotonic(), [], len(source.log.read_text())
        for attempt in range(REFUSALS):  # the engine runs on every time: resumed, or restarted under its lease
            error = refused(cluster, source, req)
            assert isinstance(error, LockHeld), (attempt, error.message)
            if re.search(r"could not take the engine lease.*keeps running here", error.message):
                assert source.engine_pids() == pids, attempt
            else:  # libvirt could not give the source its lease back: its agent powers it off and starts it again
                assert re.search(r"(paused|down) here", error.message), (attempt, error.message)  # (it may be done)
                took, _ = wait_until(lambda old=pids: source.engine_pids() not in ([], old) and cluster.healthy(source), 90,
                                     "the engine restarted under its lease")  # fmt: skip
                restarted.append(round(took, 1))
                pids = source.engine_pids()
            assert cluster.engine_hosts() == [source.id] and not target.engine_pids() and cluster.healthy(source), attempt
        took = time.monotonic() - began
        print(f"\n{REFUSALS} refused switch-overs in {took:.1f} s: resumed {REFUSALS - len(restarted)}, restarted "
              f"{len(restarted)} (healthy again after {restarted} s)")  # fmt: skip
        assert "engine failure" not in source.log.read_text()[logged:]  # a migration failure, never the engine's
    finally:
        target.start_agent()  # it joins the lockspace again
    stays(cluster, source, 4)
    assert watcher.violations == []


def test_a_client_certificate_the_target_does_not_trust_is_refused_cleanly(
    lab: tuple[lab_cluster.Cluster, lab_cluster.NeverTwo], tmp_path: Path
) -> None:
    """TLS is in force: this host's libvirtd, given a key and certificate from another CA, cannot reach the target's."""
    cluster, watcher = lab
    source, target, pids = settle(lab)
    stranger = pki.Authority(tmp_path / "ca").issue(f"host{source.id}.lab", source.address, tmp_path / "pki")
    req = migration.request(VMConfig(migration_pki_dir=str(stranger)), f"host{target.id}.lab", target.address,
                            unsafe=True, timeout=60, bandwidth=0)  # fmt: skip
    error = refused(cluster, source, req)
    assert isinstance(error, OperationFailed) and re.search(r"cannot reach the target's.*keeps running here", error.message)
    assert source.engine_pids() == pids and cluster.engine_hosts() == [source.id] and not target.engine_pids()
    assert watcher.violations == []


def _migrate_in_background(source: lab_cluster.Host, target: lab_cluster.Host) -> subprocess.Popen[str]:
    argv = ["ip", "netns", "exec", source.netns, lab_cluster.HECTL, "vm-migrate", "--to", str(target.id),
            "--bandwidth", str(BANDWIDTH), "--json"]  # fmt: skip
    return subprocess.Popen(argv, env=source.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _incoming(target: lab_cluster.Host, proc: subprocess.Popen[str], timeout: float = 30) -> None:
    """Once the target's incoming QEMU runs, 3 s into the copy (~20 s at the limited bandwidth)."""

    def arrived() -> bool:
        if proc.poll() is not None:
            raise AssertionError(f"vm-migrate ended early ({proc.returncode}): {proc.communicate()}")
        return bool(target.engine_pids())

    wait_until(arrived, timeout, "the incoming QEMU on the target", every=0.1)
    time.sleep(3)


def test_power_loss_of_the_target_mid_migration_leaves_the_engine_running_at_the_source(
    lab: tuple[lab_cluster.Cluster, lab_cluster.NeverTwo],
) -> None:
    cluster, watcher = lab
    source, target, pids = settle(lab)
    proc = _migrate_in_background(source, target)
    try:
        _incoming(target, proc)
        target.power_loss()
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    try:
        assert proc.returncode != 0 and "keeps running here" in err, (out, err)
        assert source.engine_pids() == pids and cluster.engine_hosts() == [source.id] and cluster.healthy(source)
        stays(cluster, source, 6)
    finally:
        target.start()
        target.start_agent()
    assert watcher.violations == []


def test_power_loss_of_the_source_mid_migration_is_fenced_and_ends_with_one_engine(
    lab: tuple[lab_cluster.Cluster, lab_cluster.NeverTwo],
) -> None:
    """The source holds the engine lease until the guest arrives: it is fenced, its host id freed, and one engine
    runs elsewhere well before sanlock's host_dead_seconds; the target's incoming QEMU is gone with the migration."""
    cluster, watcher = lab
    source, target, _ = settle(lab)
    proc = _migrate_in_background(source, target)
    try:
        _incoming(target, proc)
        t0 = time.monotonic()
        source.power_loss()
    finally:
        proc.kill()
        proc.wait(30)
    try:
        via = others(cluster, source)[0]
        dead_s = host_dead_seconds(cluster.io_timeout)
        _, new = wait_until(lambda: cluster.one_engine(via), dead_s + 90, "one engine", every=0.5)
        took = time.monotonic() - t0
        rows = cluster.hosts[new - 1].status()["hosts"]
        fenced = [f for row in rows for f in row.get("fencing", ()) if f["host_id"] == source.id]
        print(f"\npower loss of the source mid-migration -> engine healthy on host {new} after {took:.1f} s; {fenced}")
        assert new != source.id and took < dead_s  # fenced: not sanlock's wait (76 s) plus a boot
        assert [(f["by_host_id"], f["result"]) for f in fenced] == [(new, "confirmed")]
    finally:
        source.start()
        source.start_agent()
    assert watcher.violations == [] and watcher.polls > 100
