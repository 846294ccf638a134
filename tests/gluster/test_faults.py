"""Brick failures on the real replica-3 volume: one down keeps the domain usable, two down (client quorum lost)
or a frozen volume make commands exit 4 within their --timeout, through the FUSE mount and through gfapi."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from hectl.errors import ExitCode, StorageError
from lab import gluster
from tests.conftest import Domain, run_hectl

pytestmark = pytest.mark.integration

EXIT_BOUND = 8.0  # wall seconds in which a command with --timeout 2 must have exited (loaded 2-core machine)
HARD_LIMIT = 60.0  # past this the command hung


def _run(dom: Domain, args: list[str]) -> tuple[subprocess.CompletedProcess[str], float]:
    start = time.monotonic()
    try:
        done = run_hectl(args, env=dom.env, timeout=HARD_LIMIT)
    except subprocess.TimeoutExpired:
        pytest.fail(f"hectl {' '.join(args)} hung for {HARD_LIMIT} s")
    return done, time.monotonic() - start


def _unmount(dom: Domain) -> None:
    """Unmount; after a freeze, helpers hectl abandoned hold the mount busy until their requests are answered."""
    backend = dom.app().backend(connect=False)
    deadline = time.monotonic() + 30.0
    while True:
        try:
            backend.disconnect(5.0)
            return
        except StorageError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


@contextlib.contextmanager
def bricks_down(volume: gluster.Volume, count: int) -> Iterator[None]:
    try:
        for index in range(count):
            volume.kill_brick(index)
        yield
    finally:
        volume.restart_bricks()


@contextlib.contextmanager
def frozen(glusterd: gluster.Glusterd) -> Iterator[None]:
    """SIGSTOP glusterd, the bricks and the self-heal daemon: a server that stops answering without closing."""
    pids = [glusterd.pid, *glusterd.service_pids()]
    try:
        for pid in pids:
            os.kill(pid, signal.SIGSTOP)
        yield
    finally:
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)


def test_one_brick_down_the_domain_stays_usable(gdomain: Domain, gluster_volume: gluster.Volume) -> None:
    gdomain.publish(1, vm="up", health="good")
    with bricks_down(gluster_volume, 1):
        assert gluster_volume.brick_pids()[0] == -1
        rec = gdomain.publish(1, vm="up", health="good")  # the agent's write goes on, through the mount
        done = run_hectl(["set-maintenance", "--mode", "global", "--timeout", "2"], env=gdomain.env)
        assert done.returncode == 0, done.stderr
        for access in ("fuse", "gfapi"):
            if access == "gfapi":
                _unmount(gdomain)
            done, _ = _run(gdomain, ["vm-status", "--json", "--timeout", "2"])
            assert done.returncode == 0, done.stderr
            report = json.loads(done.stdout)
            assert report["storage"]["access"] == access
            assert report["hosts"][0]["seq"] == rec.seq and report["global_maintenance"]["active"]


def test_two_bricks_down_commands_exit_4(gdomain: Domain, gluster_volume: gluster.Volume) -> None:
    gdomain.publish(1)
    with bricks_down(gluster_volume, 2):
        for access in ("fuse", "gfapi"):
            if access == "gfapi":
                _unmount(gdomain)
            for args in (["vm-status", "--json"], ["vm-status"], ["set-maintenance", "--mode", "global"]):
                done, elapsed = _run(gdomain, [*args, "--timeout", "2"])
                what = f"{access} {args}: exit {done.returncode} after {elapsed:.1f}s: {done.stderr}"
                assert done.returncode == ExitCode.STORAGE, what
                assert elapsed < EXIT_BOUND and "Traceback" not in done.stderr, what
    gluster.wait_usable(
        Path(gdomain.app().backend(connect=False).root())
    )  # quorum back: the mount reconnects and the domain is usable again
    done = run_hectl(["vm-status", "--json"], env=gdomain.env)
    assert done.returncode == 0, done.stderr


def test_frozen_volume_commands_exit_4_within_timeout(gdomain: Domain, glusterd: gluster.Glusterd) -> None:
    gdomain.publish(1)
    for access in ("fuse", "gfapi"):
        if access == "gfapi":
            _unmount(gdomain)
        with frozen(glusterd):
            for args in (["vm-status", "--json"], ["set-maintenance", "--mode", "global"]):
                done, elapsed = _run(gdomain, [*args, "--timeout", "2"])
                what = f"{access} {args}: exit {done.returncode} after {elapsed:.1f}s: {done.stderr}"
                assert done.returncode == ExitCode.STORAGE, what
                assert elapsed < EXIT_BOUND and "Traceback" not in done.stderr, what
