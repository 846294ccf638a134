"""``hectl ha run`` with its sanlock lockspace on the Gluster FUSE mount keeps publishing with one brick killed."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from hectl.context import AppContext
from hectl.storage.domain import init_domain
from lab import gluster
from lab import sanlock as lab
from tests.conftest import HECTL, run_hectl
from tests.gluster.conftest import gluster_config

pytestmark = [pytest.mark.integration, pytest.mark.slow]

IO_TIMEOUT = 2


def status(config: Path) -> dict:  # type: ignore[type-arg]
    res = run_hectl(["vm-status", "--json"], env=dict(os.environ, HECTL_CONFIG=str(config)))
    assert res.returncode == 0, res.stderr
    return json.loads(res.stdout)


def wait_for(predicate, timeout: float, what: str, config: Path) -> dict:  # type: ignore[no-untyped-def,type-arg]
    deadline = time.monotonic() + timeout
    while True:
        data = status(config)
        if predicate(data):
            return data
        assert time.monotonic() < deadline, f"{what} not seen within {timeout} s: {json.dumps(data['hosts'])}"
        time.sleep(0.5)


def test_agent_holds_its_lockspace_on_the_mount_and_publishes_with_a_brick_down(
    gluster_volume: gluster.Volume, tmp_path: Path
) -> None:
    reason = lab.missing()
    if reason:
        pytest.skip(reason)
    gluster_volume.clear()
    base = lab.shared_dir("hectl-glha-")
    daemon = lab.Daemon(base / "run", lab.build_shim(tmp_path))
    agent = None
    config = gluster_config(
        base / "hectl.conf",
        base / "state",
        f"connection = {gluster_volume.connection}\nmount_base = {base / 'mnt'}\n",
    )
    config.write_text(
        config.read_text() + f"[timeouts]\nliveness_window = 8\n[ha]\nio_timeout = {IO_TIMEOUT}\nloop = 2\nhistory = 8\n"
    )
    app = AppContext(config_path=str(config), environ={})
    try:
        daemon.start()
        backend = app.backend()
        init_domain(backend, app.clock, 5.0)
        lab.initialize_domain_leases(Path(backend.root()), daemon, IO_TIMEOUT)
        env = dict(os.environ, HECTL_CONFIG=str(config), **daemon.env)
        log = open(base / "agent.log", "w")  # noqa: SIM115 - closed with the process
        agent = subprocess.Popen([HECTL, "ha", "run"], env=env, stdout=log, stderr=log, text=True)
        host1 = lambda d: d["hosts"][0] if d["hosts"] else {}  # noqa: E731
        data = wait_for(lambda d: host1(d).get("lease") == "live" and host1(d)["live"], 60, "host 1 live", config)
        lockspace = f"{backend.root()}/ha/lockspace".replace(":", "\\:")  # sanlock escapes the colon
        assert f"s hectl:1:{lockspace}:0" in daemon.client("status").stdout  # on the FUSE mount
        with_bricks = host1(data)["seq"]
        gluster_volume.kill_brick(0)
        try:
            data = wait_for(lambda d: host1(d)["seq"] >= with_bricks + 3, 30, "publishing with a brick down", config)
            assert host1(data)["live"] and host1(data).get("lease") == "live" and agent.poll() is None
        finally:
            gluster_volume.restart_bricks()
    finally:
        if agent is not None:
            agent.terminate()
            try:
                agent.wait(30)
            except subprocess.TimeoutExpired:
                agent.kill()
                agent.wait(10)
        daemon.stop()
        with_mount = app.backend(connect=False)
        for _ in range(50):
            try:
                with_mount.disconnect(5.0)
                break
            except Exception:
                time.sleep(0.2)
        shutil.rmtree(base, ignore_errors=True)
