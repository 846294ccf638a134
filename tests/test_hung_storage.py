"""Hung shared storage never hangs hectl: a real domain on a FUSE mount that stops answering.

The domain lives on ``stallfs.StallFS`` (lab/stallfs.py), a pass-through FUSE
filesystem. Stalling it makes every request wait inside the daemon, the way a
hard NFS mount behaves when its server is gone: a process blocked there cannot
even be killed until the request is answered. The real ``hectl`` console script
must still exit with its documented codes within a small multiple of
``--timeout``.

Timing bounds are deliberately loose (a loaded 2-core machine): the stall itself
never ends on its own, so any bound at all proves "never hangs".
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import pytest
from conftest import HECTL, Domain, run_hectl, write_config

from hectl.errors import ExitCode, StorageTimeout
from hectl.storage import directio, records
from hectl.storage.domain import init_domain
from lab import stallfs

pytestmark = pytest.mark.integration

TIMEOUT = "1"  # --timeout for every command under a stall
EXIT_BOUND = 6.0  # seconds of wall time in which hectl must have exited (timeout 1 s)
HARD_LIMIT = 60.0  # past this the test gives up on the process: it hung


@pytest.fixture
def hung(tmp_path: Path):  # type: ignore[no-untyped-def]
    """(domain on a StallFS mount, the mount); host 1 and 2 have published, host 1's engine is up."""
    reason = stallfs.missing_requirements()
    if reason:
        pytest.skip(f"FUSE not usable here: {reason}")
    mount = stallfs.FuseMount(tmp_path / "backing", tmp_path / "mnt", tmp_path / "control")
    mount.start()
    try:
        root = mount.mountpoint / "domain"
        root.mkdir()
        state = tmp_path / "state"
        cfg = write_config(tmp_path / "hectl.conf", root, state, host_id=1)
        dom = Domain(root, cfg, state, 1)
        app = dom.app()
        init_domain(app.backend(), app.clock, 10.0)
        dom.publish(1, vm="up", health="good")
        dom.publish(2, vm="down", health="unknown")
        assert (mount.backing / "domain" / "ha" / "metadata").stat().st_size == records.METADATA_SIZE
        yield dom, mount
    finally:
        mount.stop()
    assert not stallfs.mounted(mount.mountpoint)


class Ran:
    """A finished hectl run and its wall time."""

    def __init__(self, code: int, stdout: str, stderr: str, elapsed: float) -> None:
        self.returncode, self.stdout, self.stderr, self.elapsed = code, stdout, stderr, elapsed


def run_until_exit(args: list[str], env: dict[str, str]) -> Ran:
    """Run the real ``hectl`` through the conftest runner (pipes, read to EOF) and time it.

    The time covers both the process's exit and its output pipes closing: an I/O
    helper that hectl abandoned on the hung mount must not keep them open.
    """
    start = time.monotonic()
    try:
        done = run_hectl(args, env=env, timeout=HARD_LIMIT)
    except subprocess.TimeoutExpired:
        pytest.fail(f"hectl {' '.join(args)} hung for {HARD_LIMIT} s on stalled storage")
    return Ran(done.returncode, done.stdout, done.stderr, time.monotonic() - start)


def assert_storage_error(r: Ran, args: list[str]) -> None:
    what = f"hectl {' '.join(args)}: exit {r.returncode} after {r.elapsed:.1f}s\nstdout: {r.stdout}\nstderr: {r.stderr}"
    assert r.returncode == ExitCode.STORAGE, what
    assert r.elapsed < EXIT_BOUND, what
    assert "Traceback" not in r.stderr, what
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("hectl: error: "), what
    assert "no answer from storage within 1 s" in lines[0], what
    if "--json" in args or "json" in args:  # the error is a JSON document on stdout too
        error = json.loads(r.stdout)["error"]
        assert (error["code"], error["name"]) == (ExitCode.STORAGE, "STORAGE") and error["message"] in lines[0], what
    else:
        assert r.stdout == "", what


STALLS = {
    "everything": (),  # lookup/stat hang too
    "data": ("open", "read", "write", "fsync"),  # the domain can be stat'ed, its files cannot be used
}


@pytest.mark.parametrize("stall", sorted(STALLS))
@pytest.mark.parametrize(
    "args",
    [
        ["vm-status", "--json", "--timeout", TIMEOUT],  # fast path
        ["vm-status", "--timeout", TIMEOUT],  # table: the click path
        ["--config", "{config}", "vm-status", "--format", "json", "--timeout", TIMEOUT],
        ["set-maintenance", "--mode", "global", "--reason", "hung", "--timeout", TIMEOUT],
    ],
    ids=["json", "table", "json-config", "set-maintenance"],
)
def test_stalled_storage_gives_exit_4(hung, args: list[str], stall: str) -> None:  # type: ignore[no-untyped-def]
    dom, mount = hung
    args = [a.replace("{config}", str(dom.config)) for a in args]
    mount.stall(STALLS[stall])
    r = run_until_exit(args, dom.env)
    assert_storage_error(r, args)
    assert mount.blocked_count() >= 1, "the filesystem never saw a request: the stall was not exercised"
    # the first storage I/O that stalls is reported: the cluster configuration, or the metadata when
    # lookups still answer (then the cluster configuration's absence is known at once)
    first = os.path.join("config", "cluster.json") if stall == "everything" else os.path.join("ha", "metadata")
    assert first in r.stderr, r.stderr


@pytest.mark.parametrize("stall", sorted(STALLS))
@pytest.mark.parametrize("fmt", [[], ["--json"]], ids=["text", "json"])
def test_check_is_critical_on_stalled_storage(hung, stall: str, fmt: list[str]) -> None:  # type: ignore[no-untyped-def]
    dom, mount = hung
    args = ["vm-status", "--check", *fmt, "--timeout", TIMEOUT]
    mount.stall(STALLS[stall])
    r = run_until_exit(args, dom.env)
    what = f"exit {r.returncode} after {r.elapsed:.1f}s\nstdout: {r.stdout}\nstderr: {r.stderr}"
    assert r.returncode == 2, what  # Nagios CRITICAL
    assert r.elapsed < EXIT_BOUND, what
    assert "Traceback" not in r.stderr + r.stdout, what
    if fmt:
        data = json.loads(r.stdout)
        assert data["status"] == "CRITICAL" and data["code"] == 2, what
        line = data["line"]
    else:
        assert len(r.stdout.splitlines()) == 1, what
        line = r.stdout.strip()
    assert line.startswith("HECTL CRITICAL - storage unreachable: "), what
    assert "no answer from storage within 1 s" in line, what


def test_storage_timeout_from_the_environment(hung) -> None:  # type: ignore[no-untyped-def]
    """Without --timeout, HECTL_STORAGE_TIMEOUT (over [storage] timeout = 5) bounds the wait."""
    dom, mount = hung
    env = dict(dom.env, HECTL_STORAGE_TIMEOUT="1")
    mount.stall()
    r = run_until_exit(["vm-status", "--json"], env)
    assert_storage_error(r, ["vm-status", "--json"])


def test_everything_works_again_after_release(hung) -> None:  # type: ignore[no-untyped-def]
    dom, mount = hung
    mount.stall()
    for args in (
        ["vm-status", "--json", "--timeout", TIMEOUT],
        ["vm-status", "--timeout", TIMEOUT],
        ["set-maintenance", "--mode", "global", "--timeout", TIMEOUT],
    ):
        assert_storage_error(run_until_exit(args, dom.env), args)
    r = run_until_exit(["vm-status", "--check", "--timeout", TIMEOUT], dom.env)
    assert r.returncode == 2 and r.stdout.startswith("HECTL CRITICAL"), r.stdout + r.stderr
    mount.release()

    r = run_until_exit(["vm-status", "--json", "--timeout", "10"], dom.env)
    assert r.returncode == 0, r.stderr
    report = json.loads(r.stdout)
    assert [h["host_id"] for h in report["hosts"] if h["slot"] == "valid"] == [1, 2]
    assert report["global_maintenance"]["active"] is False
    assert report["summary"]["engine_up_on"] == [1]

    r = run_until_exit(["vm-status", "--check", "--timeout", "10"], dom.env)
    assert r.returncode == 0 and r.stdout.startswith("HECTL OK"), r.stdout + r.stderr

    r = run_until_exit(["set-maintenance", "--mode", "global", "--reason", "after", "--timeout", "10"], dom.env)
    assert r.returncode == 0, r.stderr
    r = run_until_exit(["vm-status", "--timeout", "10"], dom.env)
    assert r.returncode == 0 and "GLOBAL MAINTENANCE" in r.stdout, r.stdout + r.stderr
    snap = dom.store().read_all()
    assert snap.global_record.maintenance and snap.global_record.reason == "after"
    assert {i for i, s in snap.slots.items() if s.kind == records.SlotKind.VALID} == {0, 1, 2}


def test_abandoned_helpers_are_reaped_after_release(hung) -> None:  # type: ignore[no-untyped-def]
    """In-process: a timed-out I/O helper stuck on the mount is abandoned, then collected once storage answers."""
    dom, mount = hung
    path = str(dom.root / "ha" / "metadata")
    deadline = time.monotonic() + 30
    while directio.reap_abandoned() and time.monotonic() < deadline:  # left over by other tests
        time.sleep(0.05)
    assert directio.reap_abandoned() == 0
    mount.stall()
    start = time.monotonic()
    for _ in range(2):
        with pytest.raises(StorageTimeout) as exc:
            directio.read(path, 0, records.SLOT_SIZE, timeout=0.5)
        assert exc.value.exit_code == ExitCode.STORAGE
    assert time.monotonic() - start < 2 * EXIT_BOUND
    # SIGKILLed, but a FUSE request already taken by the daemon holds them until it is answered.
    assert directio.reap_abandoned() == 2
    mount.release()
    deadline = time.monotonic() + 30
    while directio.reap_abandoned() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert directio.reap_abandoned() == 0
    slot = records.decode_slot(1, directio.read(path, records.SLOT_SIZE, records.SLOT_SIZE, timeout=10).data)
    assert slot.kind == records.SlotKind.VALID


def test_run_hectl_works_once_released(hung) -> None:  # type: ignore[no-untyped-def]
    """The conftest runner (pipes) against the FUSE domain: healthy storage, ordinary answers."""
    dom, _mount = hung
    r = run_hectl(["vm-status", "--json", "--timeout", "10"], env=dom.env, timeout=HARD_LIMIT)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["storage"]["root"] == str(dom.root)


def test_output_pipes_close_when_hectl_exits(hung) -> None:  # type: ignore[no-untyped-def]
    """hectl's pipes reach EOF as soon as it exits, while storage is still hung.

    A caller reading the output to EOF (NRPE, ``$(hectl ...)``, ``| jq``) must
    not wait for storage: the I/O helper, stuck in the kernel and unkillable
    until the request is answered, must not hold the caller's stdout/stderr.
    """
    dom, mount = hung
    mount.stall()
    proc = subprocess.Popen(
        [HECTL, "vm-status", "--check", "--timeout", TIMEOUT],
        env=dom.env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        assert proc.wait(timeout=HARD_LIMIT) == 2
        # hectl has exited; its pipes must reach EOF promptly, while the storage is still hung.
        out, err = proc.communicate(timeout=3)
    except subprocess.TimeoutExpired:
        pytest.fail("hectl exited, but its stdout/stderr pipes stayed open while storage hung")
    finally:
        proc.kill()
        mount.release()
        proc.communicate()
    assert out.decode().startswith("HECTL CRITICAL"), out + err


def test_timed_out_write_is_not_reported_as_unchanged(hung) -> None:  # type: ignore[no-untyped-def]
    dom, mount = hung
    r = run_until_exit(["set-maintenance", "--mode", "global", "--reason", "first", "--timeout", "10"], dom.env)
    assert r.returncode == 0, r.stderr
    r = run_until_exit(["set-maintenance", "--mode", "local", "--reason", "l"], dom.env)
    assert r.returncode == 0, r.stderr
    mount.stall(("write",))  # the read of slot 0 answers; the write of the cleared record hangs
    r = run_until_exit(["set-maintenance", "--mode", "none", "--timeout", TIMEOUT], dom.env)
    assert r.returncode == ExitCode.STORAGE, r.stderr
    mount.release()
    deadline = time.monotonic() + 30
    while dom.store().read_slot(0).record.maintenance and time.monotonic() < deadline:  # type: ignore[union-attr]
        time.sleep(0.1)
    landed = not dom.store().read_slot(0).record.maintenance  # type: ignore[union-attr]
    assert landed  # what the storage did: the "failed" write took effect
    assert "global maintenance is unchanged" not in r.stderr, r.stderr
    assert "may or may not have been set to 'none'" in r.stderr, r.stderr


@pytest.mark.parametrize("stall", sorted(STALLS))
@pytest.mark.parametrize("fmt", [[], ["--json"]], ids=["text", "json"])
def test_storage_check_reports_stalled_storage_unreachable(hung, stall: str, fmt: list[str]) -> None:  # type: ignore[no-untyped-def]
    dom, mount = hung
    mount.stall(STALLS[stall])
    args = ["storage", "check", *fmt, "--timeout", TIMEOUT]
    r = run_until_exit(args, dom.env)
    what = f"hectl {' '.join(args)}: exit {r.returncode} after {r.elapsed:.1f}s\nstdout: {r.stdout}\nstderr: {r.stderr}"
    assert r.returncode == ExitCode.STORAGE and r.elapsed < EXIT_BOUND and "Traceback" not in r.stderr, what
    assert mount.blocked_count() >= 1, "the filesystem never saw a request: the stall was not exercised"
    if fmt:
        doc = json.loads(r.stdout)
        assert doc["status"] == "unreachable" and doc["code"] == 4, what
        (finding,) = doc["findings"]
        assert finding["check"] == "reachable" and "no answer from storage within 1 s" in finding["what"], what
    else:
        assert ": UNREACHABLE\n" in r.stdout and "no answer from storage within 1 s" in r.stdout, what


def test_storage_connect_on_stalled_storage_gives_exit_4(hung) -> None:  # type: ignore[no-untyped-def]
    dom, mount = hung
    mount.stall(STALLS["everything"])
    args = ["storage", "connect", "--timeout", TIMEOUT]
    r = run_until_exit(args, dom.env)
    assert_storage_error(r, args)
