"""Shared storage is untrusted input: no path leaves the domain, nothing is half-read, no update is lost.

Real ``hectl`` processes against real localfs domains: symbolic links and
special files planted in the domain, a truncated metadata file, concurrent
read-modify-writes, a full filesystem and signals arriving mid-write (the
last two on the stalling FUSE filesystem of lab/stallfs.py).
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import signal
import struct
import subprocess
import threading
import time
from pathlib import Path

import pytest
from conftest import HECTL, Domain, run_hectl, write_config

from hectl import audit
from hectl.errors import ExitCode, StorageError
from hectl.lease import SanlockLeases
from hectl.storage import directio, records
from hectl.storage.domain import init_domain
from hectl.vm import spec as vmspec

SPEC = ["name=engine", "memory_mib=256", "vcpus=1", "disk=engine.qcow2", "host_port=28080"]


def metadata(domain: Domain) -> Path:
    return domain.root / "ha" / "metadata"


def assert_refused(done: subprocess.CompletedProcess[str], path: Path, what: str = "is a symbolic link") -> None:
    assert done.returncode == ExitCode.STORAGE, done.stderr
    assert f"{path} {what}" in done.stderr, done.stderr
    assert "Traceback" not in done.stderr


# --- no path leaves the domain ----------------------------------------------------------------------


def test_symlinked_metadata_is_refused_and_its_target_untouched(domain: Domain, tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.write_bytes(os.urandom(8192))
    before = victim.read_bytes()
    metadata(domain).unlink()
    metadata(domain).symlink_to(victim)
    done = run_hectl(["set-maintenance", "--mode", "global", "--reason", "x"], env=domain.env)
    assert_refused(done, metadata(domain))
    assert "global maintenance unchanged" in done.stderr
    assert victim.read_bytes() == before
    assert_refused(run_hectl(["vm-status"], env=domain.env), metadata(domain))
    with pytest.raises(StorageError, match="is a symbolic link"):  # the agent writes its slot through the same code
        domain.publish(1)
    assert victim.read_bytes() == before


def test_dangling_spec_symlink_is_refused_and_nothing_created(domain: Domain, tmp_path: Path) -> None:
    target = tmp_path / "created-by-hectl"
    spec = domain.root / "config" / vmspec.SPEC_FILE
    spec.symlink_to(target)
    done = run_hectl(["vm-config", "set", *SPEC], env=domain.env)
    assert_refused(done, spec)
    assert "the engine VM spec is unchanged" in done.stderr
    assert not target.exists() and spec.is_symlink()
    assert_refused(run_hectl(["vm-config", "show"], env=domain.env), spec)


def test_a_symlinked_directory_of_the_domain_is_refused(domain: Domain, tmp_path: Path) -> None:
    outside = tmp_path / "outside-ha"
    (domain.root / "ha").rename(outside)
    (domain.root / "ha").symlink_to(outside)
    before = (outside / "metadata").read_bytes()
    done = run_hectl(["set-maintenance", "--mode", "global"], env=domain.env)
    assert_refused(done, domain.root / "ha")
    assert (outside / "metadata").read_bytes() == before
    assert not (outside / "update.lock").exists()


def test_the_domain_root_itself_may_be_a_symlink(domain: Domain, tmp_path: Path) -> None:
    """The root is the admin's configuration: it may be a link; what is below it may not."""
    link = tmp_path / "root-link"
    link.symlink_to(domain.root)
    cfg = write_config(tmp_path / "via-link.conf", link, domain.state_dir)
    env = dict(domain.env, HECTL_CONFIG=str(cfg))
    done = run_hectl(["set-maintenance", "--mode", "global"], env=env)
    assert done.returncode == 0, done.stderr
    assert domain.store().read_slot(0).record.maintenance  # type: ignore[union-attr]


@pytest.mark.parametrize("kind", ["fifo", "dir"])
def test_a_special_file_in_place_of_metadata_is_refused(domain: Domain, kind: str) -> None:
    metadata(domain).unlink()
    if kind == "fifo":
        os.mkfifo(metadata(domain))
    else:
        metadata(domain).mkdir()
    done = run_hectl(["set-maintenance", "--mode", "global", "--timeout", "30"], env=domain.env)
    assert_refused(done, metadata(domain), "is not a regular file")


def test_sanlock_files_are_checked_before_sanlock_gets_their_paths(domain: Domain, tmp_path: Path) -> None:
    backend = domain.app().backend()
    paths = backend.paths()
    victim = tmp_path / "victim"
    victim.write_bytes(b"x" * 4096)
    Path(paths.lockspace).symlink_to(victim)
    Path(paths.engine_lease).write_bytes(b"")
    leases = SanlockLeases(paths, 1, 10, lambda p: backend.check_file(p, 5))
    with pytest.raises(StorageError, match=f"{paths.lockspace} is a symbolic link"):
        leases.check_files()
    with pytest.raises(StorageError, match="is a symbolic link"):
        leases.join()  # refused before sanlock is asked
    assert leases.error and victim.read_bytes() == b"x" * 4096


def test_init_replaces_a_planted_link_instead_of_writing_through_it(domain: Domain, tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.write_bytes(b"precious")
    metadata(domain).unlink()
    metadata(domain).symlink_to(victim)
    app = domain.app()
    init_domain(app.backend(), app.clock, 5.0, force=True)
    assert victim.read_bytes() == b"precious"
    assert not metadata(domain).is_symlink() and metadata(domain).stat().st_size == records.METADATA_SIZE
    assert not [p for p in (domain.root / "ha").iterdir() if p.name.endswith(".tmp")]


# --- a truncated metadata file ----------------------------------------------------------------------


def test_truncated_metadata_is_reported_not_read_as_fewer_hosts(domain: Domain) -> None:
    for host in (1, 2, 3):
        domain.publish(host, vm="up" if host == 1 else "down", health="good")
    ok = run_hectl(["vm-status", "--check"], env=domain.env)
    assert ok.stdout.startswith("HECTL OK"), ok.stdout
    os.truncate(metadata(domain), 6000)
    check = run_hectl(["vm-status", "--check"], env=domain.env)
    assert check.returncode == 1 and check.stdout.startswith("HECTL WARNING"), check.stdout
    assert f"metadata file truncated (6000 of {records.METADATA_SIZE} bytes)" in check.stdout
    assert "host slots 2 to 2000 are missing" in check.stdout
    data = json.loads(run_hectl(["vm-status", "--json"], env=domain.env).stdout)
    st = data["storage"]
    assert st["truncated"] is True and st["metadata_size"] == 6000
    assert st["metadata_expected_size"] == records.METADATA_SIZE and "host slots 2 to 2000" in st["problem"]
    table = run_hectl(["vm-status"], env=domain.env).stdout
    assert "metadata file truncated (6000 of" in table


def test_the_agent_storage_monitor_reports_a_truncated_file(domain: Domain) -> None:
    snap = domain.store().read_all()
    assert snap.truncation() == ""
    os.truncate(metadata(domain), 300)
    snap = domain.store().read_all()
    assert snap.truncation().startswith("metadata file truncated (300 of")
    assert "the global record and every host slot are missing" in snap.truncation()


# --- no lost or phantom updates ---------------------------------------------------------------------


def _spawn(args: list[str], env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen([HECTL, *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_concurrent_updates_are_neither_lost_nor_half_read(domain: Domain) -> None:
    env = dict(domain.env, HECTL_STORAGE_TIMEOUT="60")
    first = run_hectl(["vm-config", "set", *SPEC], env=env)
    assert first.returncode == 0, first.stderr
    backend = domain.app().backend()
    store = domain.store()
    versions: list[int] = []
    slots: list[str] = []
    errors: list[str] = []
    stop = threading.Event()

    def hammer() -> None:  # a reader during the writes: never a half-written spec or record
        while not stop.is_set():
            try:
                versions.append(vmspec.read(backend, 30).version)
                slots.append(store.read_slot(0).kind)
            except StorageError as exc:
                errors.append(exc.message)

    reader = threading.Thread(target=hammer)
    reader.start()
    try:
        procs = [_spawn(["set-maintenance", "--mode", "global", "--reason", f"r{i}"], env) for i in range(20)]
        procs += [_spawn(["vm-config", "set", f"vcpus={i + 1}"], env) for i in range(10)]
        results = [(p.args[1], p.wait(timeout=300), *p.communicate()) for p in procs]
    finally:
        stop.set()
        reader.join(timeout=60)
    for cmd, code, _out, err in results:  # each one succeeded, or was told that it lost
        assert code == 0 or (code == ExitCode.LOCKED and "update lock" in err), (cmd, code, err)
    won_global = sum(1 for cmd, code, *_ in results if cmd == "set-maintenance" and code == 0)
    won_spec = sum(1 for cmd, code, *_ in results if cmd == "vm-config" and code == 0)
    assert won_global + won_spec > 0
    assert store.read_slot(0).record.seq == won_global  # type: ignore[union-attr]
    assert vmspec.read(backend, 5).version == 1 + won_spec
    assert errors == [] and versions and set(slots) <= {records.SlotKind.VALID, records.SlotKind.EMPTY}, errors
    assert versions == sorted(versions)  # a reader never sees the version go back
    assert len(audit.read(domain.app().config.audit_log)) == won_global


def _hold_update_lock(domain: Domain) -> int:
    fd = os.open(domain.root / directio.LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
    fcntl.fcntl(fd, fcntl.F_OFD_SETLK, struct.pack("hhqqi4x", fcntl.F_WRLCK, os.SEEK_SET, 0, 0, 0))
    return fd


def test_a_lock_not_obtained_in_time_is_exit_5_and_nothing_changes(domain: Domain) -> None:
    fd = _hold_update_lock(domain)
    try:
        done = run_hectl(["set-maintenance", "--mode", "global", "--timeout", "1"], env=domain.env)
        spec = run_hectl(["vm-config", "set", *SPEC], env=dict(domain.env, HECTL_STORAGE_TIMEOUT="1"))
    finally:
        os.close(fd)
    assert spec.returncode == ExitCode.LOCKED and "update lock" in spec.stderr, spec.stderr
    assert not (domain.root / "config" / vmspec.SPEC_FILE).exists()
    assert done.returncode == ExitCode.LOCKED, done.stderr
    assert "global maintenance unchanged" in done.stderr and "update lock" in done.stderr
    assert domain.store().read_slot(0).kind == records.SlotKind.EMPTY
    assert audit.read(domain.app().config.audit_log) == []


# --- a full filesystem, a signal mid-write (on the stalling FUSE filesystem) -------------------------


@pytest.fixture
def fuse_domain(tmp_path: Path):  # type: ignore[no-untyped-def]
    from lab import stallfs

    reason = stallfs.missing_requirements()
    if reason:
        pytest.skip(f"FUSE not usable here: {reason}")
    mount = stallfs.FuseMount(tmp_path / "backing", tmp_path / "mnt", tmp_path / "control")
    mount.start()
    try:
        root = mount.mountpoint / "domain"
        root.mkdir()
        cfg = write_config(tmp_path / "hectl.conf", root, tmp_path / "state", host_id=1)
        dom = Domain(root, cfg, tmp_path / "state", 1)
        app = dom.app()
        init_domain(app.backend(), app.clock, 10.0)
        dom.publish(1)
        yield dom, mount
    finally:
        mount.stop()


@pytest.mark.integration
def test_full_storage_is_a_storage_error_even_when_the_audit_log_fails_too(fuse_domain, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    dom, mount = fuse_domain
    (tmp_path / "not-a-dir").write_text("")
    cfg = write_config(
        tmp_path / "bad-audit.conf", dom.root, dom.state_dir, extra=f"audit_log = {tmp_path / 'not-a-dir' / 'audit.log'}\n"
    )
    env = dict(dom.env, HECTL_CONFIG=str(cfg))
    mount.no_space(True)
    done = run_hectl(["set-maintenance", "--mode", "global", "--reason", "full"], env=env)
    mount.no_space(False)
    assert done.returncode == ExitCode.STORAGE, done.stderr
    assert os.strerror(errno.ENOSPC) in done.stderr, done.stderr
    assert "global maintenance unchanged" in done.stderr
    assert "changed, but" not in done.stderr
    assert dom.store().read_slot(0).kind == records.SlotKind.EMPTY


@pytest.mark.integration
def test_full_storage_leaves_the_spec_unchanged(fuse_domain) -> None:  # type: ignore[no-untyped-def]
    dom, mount = fuse_domain
    assert run_hectl(["vm-config", "set", *SPEC], env=dom.env).returncode == 0
    mount.no_space(True)
    done = run_hectl(["vm-config", "set", "vcpus=2"], env=dom.env)
    mount.no_space(False)
    assert done.returncode == ExitCode.STORAGE and "the engine VM spec is unchanged" in done.stderr, done.stderr
    assert vmspec.read(dom.app().backend(), 5).version == 1
    assert not [p for p in (dom.root / "config").iterdir() if p.name.endswith(".tmp")]


@pytest.mark.integration
@pytest.mark.parametrize(
    ("signum", "code"),
    [(signal.SIGINT, ExitCode.INTERRUPTED), (signal.SIGTERM, ExitCode.TERMINATED), (signal.SIGHUP, ExitCode.HANGUP)],
    ids=["SIGINT", "SIGTERM", "SIGHUP"],
)
def test_a_signal_mid_write_says_outcome_unknown_and_is_audited(fuse_domain, signum: int, code: int) -> None:  # type: ignore[no-untyped-def]
    dom, mount = fuse_domain
    mount.stall(("write",))  # the lock and the read answer; the write hangs in the storage
    proc = _spawn(["set-maintenance", "--mode", "global", "--reason", "mid-write", "--timeout", "60", "--json"], dom.env)
    try:
        deadline = time.monotonic() + 60
        while mount.blocked_count() == 0:  # the write has reached the storage
            assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
            time.sleep(0.02)
        proc.send_signal(signum)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
        mount.release()
    assert proc.returncode == code, err
    assert "outcome unknown" in err and "global maintenance may or may not have been set to 'global'" in err, err
    error = json.loads(out)["error"]  # --json: the error document says the same
    assert (error["code"], error["name"]) == (code, ExitCode(code).name) and "outcome unknown" in error["message"]
    entries = audit.read(dom.app().config.audit_log)
    assert [(e["scope"], e["new_mode"], e.get("outcome")) for e in entries] == [("global", "global", "unknown")]
    deadline = time.monotonic() + 30  # the abandoned write lands once the storage answers: "unknown" was right
    while not dom.store().read_slot(0).record and time.monotonic() < deadline:
        time.sleep(0.1)
    assert dom.store().read_slot(0).record.maintenance  # type: ignore[union-attr]
