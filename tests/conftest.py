"""Shared fixtures: real localfs domains in tmp dirs, the CLI in-process and as a real process."""

from __future__ import annotations

import dataclasses
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from hectl.clock import SystemClock
from hectl.context import AppContext
from hectl.storage import records
from hectl.storage.domain import init_domain

CI = os.environ.get("CI") == "true"
REPO = Path(__file__).resolve().parent.parent
HECTL = str(Path(sys.executable).with_name("hectl"))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):  # type: ignore[no-untyped-def]
    """Under CI=true a skipped test is a failure: integration tests must really run."""
    outcome = yield
    report = outcome.get_result()
    if CI and report.skipped and not hasattr(report, "wasxfail"):
        report.outcome = "failed"
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        report.longrepr = f"skipped under CI=true (skips are failures in CI): {reason}"


@dataclasses.dataclass
class Domain:
    """A real localfs domain with a config file for host ``host_id``."""

    root: Path
    config: Path
    state_dir: Path
    host_id: int

    @property
    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("HECTL_")}
        env["HECTL_CONFIG"] = str(self.config)
        return env

    def app(self, **kwargs: object) -> AppContext:
        kwargs.setdefault("config_path", str(self.config))
        return AppContext(environ=self.env, **kwargs)  # type: ignore[arg-type]

    def store(self):  # type: ignore[no-untyped-def]
        return self.app().store()

    def publish(
        self, host_id: int, *, age: float = 0.0, vm: str = "down", health: str = "unknown", **fields: object
    ) -> records.HostRecord:
        """Write a plausible record for ``host_id`` as if its agent wrote it ``age`` seconds ago."""
        store = self.store()
        rec = records.HostRecord(
            host_id=host_id,
            seq=int(fields.pop("seq", store.next_seq(host_id))),  # type: ignore[call-overload]
            wall_time=float(fields.pop("wall_time", SystemClock().wall() - age)),  # type: ignore[arg-type]
            score=int(fields.pop("score", 3400)),  # type: ignore[call-overload]
            state=str(fields.pop("state", "EngineUp" if vm == "up" else "EngineDown")),
            engine=records.EngineStatus(vm, health, str(fields.pop("detail", "")), str(fields.pop("reason", ""))),
            hostname=str(fields.pop("hostname", f"host{host_id}.example")),
            **fields,  # type: ignore[arg-type]
        )
        store.write_host(rec)
        return rec

    def config_for(self, host_id: int) -> Path:
        """A config file for another host on the same domain."""
        path = self.config.with_name(f"hectl-{host_id}.conf")
        path.write_text(self.config.read_text().replace(f"id = {self.host_id}\n", f"id = {host_id}\n"))
        return path


def write_config(path: Path, root: Path, state_dir: Path, host_id: int = 1, extra: str = "") -> Path:
    path.write_text(
        f"[host]\nid = {host_id}\nhostname = host{host_id}.example\n\n"
        f"[storage]\ntype = localfs\npath = {root}\ntimeout = 5\n\n"
        f"[paths]\nstate_dir = {state_dir}\n{extra}"
    )
    return path


def make_domain(base: Path, host_id: int = 1) -> Domain:
    root = base / "domain"
    root.mkdir(parents=True)
    state = base / "state"
    cfg = write_config(base / "hectl.conf", root, state, host_id)
    dom = Domain(root, cfg, state, host_id)
    app = dom.app()
    init_domain(app.backend(), app.clock, 5.0)
    return dom


@pytest.fixture
def domain(tmp_path: Path) -> Domain:
    return make_domain(tmp_path)


def clear_dir(directory: Path) -> None:
    """Empty ``directory`` (a test server's export), links removed, not followed."""
    for entry in directory.iterdir():
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()


def run_hectl(
    args: list[str], env: dict[str, str] | None = None, timeout: float = 60, input: str | None = None
) -> subprocess.CompletedProcess[str]:
    """Run the installed ``hectl`` console script as a real process."""
    return subprocess.run([HECTL, *args], env=env, capture_output=True, text=True, timeout=timeout, input=input)


@pytest.fixture(scope="session")
def glusterd():  # type: ignore[no-untyped-def]
    """One real glusterd for the session (lab/gluster.py); teardown is checked to leave nothing behind."""
    import glob

    from lab import gluster
    from lab.sanlock import alive

    reason = gluster.missing()
    if reason:
        pytest.skip(reason)  # a failure under CI=true
    cli_log_before = os.path.exists("/var/log/glusterfs/cli.log")
    georep_before = os.path.exists("/var/lib/glusterd/geo-replication")  # every gluster CLI run creates it
    with gluster.running() as daemon:
        pids = [daemon.pid]
        yield daemon
        pids += daemon.service_pids()
    for log in glob.glob(f"/var/log/glusterfs/hectl-{gluster.HOST}:*.log"):  # the backend's client logs
        os.unlink(log)
    if not georep_before:  # left by storage check's `gluster --remote-host` (an empty gsyncd template)
        shutil.rmtree("/var/lib/glusterd/geo-replication", ignore_errors=True)
    assert not os.path.exists("/var/log/glusterfs/cli.log") or cli_log_before  # the lab's CLI logs to its own dir
    assert not any(alive(pid) for pid in pids) and not daemon.base.exists()
    assert not {"glusterd.info", "vols", "peers"} & set(os.listdir("/var/lib/glusterd"))  # the host's state untouched
    assert "fuse.glusterfs" not in Path("/proc/self/mounts").read_text()


@pytest.fixture(scope="session")
def nfs_server():  # type: ignore[no-untyped-def]
    """One real NFS server (NFS-Ganesha, lab/nfs.py) for the session; teardown is checked to leave nothing behind."""
    from lab import nfs

    reason = nfs.missing()
    if reason:
        pytest.skip(reason)  # a failure under CI=true
    server = nfs.running()
    try:
        yield server
    finally:
        server.close()
    assert nfs.leftovers(server) == []


@pytest.fixture(scope="session")
def gluster_pool_volume():  # type: ignore[no-untyped-def]
    """A replica-3 virt volume with one brick on each of three glusterd (lab/gluster.py Pool), as the seeds have it;
    teardown is checked to leave nothing behind."""
    from lab import gluster

    reason = gluster.missing(pool=True)
    if reason:
        pytest.skip(reason)  # a failure under CI=true
    pool = gluster.pool()
    try:
        volume = pool.volume("hectl")
        volume.create(virt=True, owner=(0, 0))
        yield volume
    finally:
        pool.close()
    assert pool.leftovers() == []


@pytest.fixture(scope="session")
def ctdb_cluster():  # type: ignore[no-untyped-def]
    """Three real ctdbd nodes with NFS-Ganesha each (lab/ctdb.py) for the session; checked to leave nothing behind."""
    from lab import ctdb

    reason = ctdb.missing()
    if reason:
        pytest.skip(reason)  # a failure under CI=true
    cluster = ctdb.running()
    try:
        yield cluster
    finally:
        cluster.close()
    assert ctdb.leftovers(cluster) == []


@pytest.fixture(scope="session")
def gluster_volume(glusterd):  # type: ignore[no-untyped-def]
    """A started replica-3 virt-group volume (owner 0:0 so that tests as root may write its root)."""
    from lab import gluster

    vol = gluster.Volume(glusterd, "hectl")
    vol.create(virt=True, owner=(0, 0), ping_timeout=10)
    return vol
