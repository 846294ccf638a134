"""The nfs backend against a real NFS server (NFS-Ganesha in a network namespace), with no mount: this kernel has
no NFS client, so every domain file goes through libnfs. The short commands work, never hang on a stopped or
frozen server, and updates from several processes queue on the update lock file."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hectl.context import AppContext
from hectl.errors import ExitCode
from hectl.storage.domain import init_domain
from tests.conftest import HECTL, clear_dir, run_hectl

pytestmark = pytest.mark.integration
TIMEOUT = 2.0


def write_config(path: Path, state: Path, storage: str) -> Path:
    path.write_text(f"[host]\nid = 1\nhostname = n1.example\n[storage]\ntype = nfs\n{storage}timeout = {TIMEOUT:g}\n"
                    f"[paths]\nstate_dir = {state}\n")  # fmt: skip
    return path


@pytest.fixture
def domain(nfs_server: Any, tmp_path: Path) -> Iterator[dict[str, Any]]:
    """A deployed domain on the emptied export, reached through libnfs only; the server thawed and running after."""
    clear_dir(nfs_server.export)
    config = write_config(tmp_path / "hectl.conf", tmp_path / "state", f"connection = {nfs_server.connection}\n"
                          f"mount_base = {nfs_server.base}\n")  # fmt: skip
    app = AppContext(config_path=str(config), environ={})
    init_domain(app.backend(), app.clock, 5.0)
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "HECTL_CONFIG": str(config)}
    yield {"config": config, "env": env, "server": nfs_server, "root": nfs_server.export}
    if nfs_server.proc is None:
        nfs_server.start()
    else:
        nfs_server.thaw()


def test_the_short_commands_work_without_a_mount(domain: dict[str, Any]) -> None:
    env = domain["env"]
    res = run_hectl(["set-maintenance", "--mode", "global", "--reason", "nfs test"], env=env)
    assert res.returncode == 0, res.stderr
    res = run_hectl(["vm-status", "--json"], env=env)
    assert res.returncode == 0, res.stderr
    doc = json.loads(res.stdout)
    assert doc["storage"]["type"] == "nfs" and doc["storage"]["access"] == "libnfs"
    assert doc["global_maintenance"]["active"] is True
    assert run_hectl(["metrics"], env=env).returncode == 0
    res = run_hectl(["storage", "check", "--json"], env=env)
    doc = json.loads(res.stdout)
    assert res.returncode == 1, res.stdout  # a warning: not mounted (the agent needs the kernel mount)
    checks = {f["check"]: f["severity"] for f in doc["findings"]}
    assert checks["nfs-server"] == "ok" and checks["nfs-mount"] == "warn"
    assert any(s["layer"] == "nfs" for s in doc["stalls"])
    assert "/proc/fs/nfs" not in Path("/proc/self/mounts").read_text() and " nfs" not in Path("/proc/self/mounts").read_text()


def test_the_files_arrive_on_the_server_as_the_domain_layout(domain: dict[str, Any]) -> None:
    root: Path = domain["root"]
    assert (root / "hectl-domain.json").is_file() and (root / "ha" / "metadata").stat().st_size > 0
    res = run_hectl(["vm-config", "set", "disk=engine.qcow2", "host_port=8080"], env=domain["env"])
    assert res.returncode == 0, res.stderr
    assert b"engine.qcow2" in (root / "config" / "engine-vm.json").read_bytes()


def test_concurrent_updates_queue_on_the_lock_file(domain: dict[str, Any]) -> None:
    env = domain["env"]
    procs = [
        subprocess.Popen([HECTL, "set-maintenance", "--mode", "global", "--reason", f"r{i}", "--timeout", "20"], env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for i in range(6)
    ]  # fmt: skip
    assert [p.wait(60) for p in procs] == [0] * 6, [p.stderr.read() for p in procs if p.stderr]
    app = AppContext(config_path=str(domain["config"]), environ={})
    assert app.store().read_all().global_record.seq == 6  # each one read what the previous wrote: none lost
    assert not (domain["root"] / "ha" / "update.lock.owner").exists()


def test_a_stale_lock_is_broken_and_a_live_one_waited_for(domain: dict[str, Any]) -> None:
    owner = domain["root"] / "ha" / "update.lock.owner"
    owner.write_text(json.dumps({"host": "gone", "pid": 1, "until": time.time() - 60}))
    res = run_hectl(["set-maintenance", "--mode", "global"], env=domain["env"])
    assert res.returncode == 0, res.stderr
    owner.write_text(json.dumps({"host": "busy", "pid": 1, "until": time.time() + 600}))
    res = run_hectl(["set-maintenance", "--mode", "none", "--timeout", "1"], env=domain["env"])
    assert res.returncode == ExitCode.LOCKED and "lock" in res.stderr
    owner.unlink()


@pytest.mark.parametrize("fault", ["frozen", "stopped"])
@pytest.mark.parametrize(
    "args", [["vm-status", "--json"], ["set-maintenance", "--mode", "global"], ["storage", "check"], ["metrics"]], ids=" ".join
)
def test_a_frozen_or_stopped_server_is_exit_4_within_the_timeout(domain: dict[str, Any], fault: str, args: list[str]) -> None:
    server = domain["server"]
    server.freeze() if fault == "frozen" else server.stop()
    t0 = time.monotonic()
    res = subprocess.run(
        [HECTL, *args, "--timeout", f"{TIMEOUT:g}"], env=domain["env"], capture_output=True, text=True, timeout=60
    )
    took = time.monotonic() - t0
    assert res.returncode == ExitCode.STORAGE, (res.stdout, res.stderr)
    assert took < TIMEOUT + 3.0, took  # a bounded child per storage access, abandoned at the deadline
    assert "Traceback" not in res.stderr


@pytest.mark.parametrize(
    ("line", "key"),
    [
        ("connection = 192.0.2.1:/a/../b\n", "connection"),
        ("connection = -oport=1:/x\n", "connection"),
        ("connection = 192.0.2.1:/x\nnfs_version = 5\n", "nfs_version"),
        ("connection = 192.0.2.1:/x\nmount_options = sec=sys,nolock\n", "mount_options"),
        ("connection = [::1:/x\n", "connection"),
    ],
)
def test_bad_options_are_exit_3_naming_the_key_and_nothing_is_contacted(tmp_path: Path, line: str, key: str) -> None:
    config = write_config(tmp_path / "hectl.conf", tmp_path / "state", line)
    t0 = time.monotonic()
    res = run_hectl(["vm-status"], env={"PATH": "/usr/bin:/bin", "HECTL_CONFIG": str(config)})
    assert res.returncode == ExitCode.CONFIG and f"[storage] {key}" in res.stderr, res.stderr
    assert res.stderr.count("\n") <= 2 and time.monotonic() - t0 < 2


@pytest.mark.kernel_nfs
def test_kernel_mount_is_idempotent_and_carries_the_domain(nfs_server: Any, tmp_path: Path) -> None:
    """Only where the kernel has an NFS client (deselected by name on this project's machines: see README)."""
    clear_dir(nfs_server.export)
    config = write_config(tmp_path / "hectl.conf", tmp_path / "state", f"connection = {nfs_server.connection}\n"
                          f"mount_base = {tmp_path / 'mnt'}\n")  # fmt: skip
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "HECTL_CONFIG": str(config)}
    for _ in range(2):
        assert run_hectl(["storage", "connect"], env=env).returncode == 0
    assert " nfs" in Path("/proc/self/mounts").read_text()
    assert run_hectl(["storage", "disconnect"], env=env).returncode == 0
