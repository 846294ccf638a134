"""hectl.storage.directio against real filesystems: ext4 under tmp_path, tmpfs, a FUSE mount, a FIFO.

Every operation really forks its helper and really opens the file, so these
tests also prove the fork/shared-buffer/pipe protocol end to end.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from conftest import REPO

from hectl.errors import ExitCode, StorageError, StorageTimeout
from hectl.storage import directio, records
from hectl.storage.metadata import MetadataStore

pytestmark = pytest.mark.integration

SLOT = records.SLOT_SIZE
# Filesystems known to take O_DIRECT on every kernel hectl supports.
DIRECT_FILESYSTEMS = frozenset({"ext4", "ext3", "xfs", "btrfs"})


def fs_type(path: Path) -> str:
    """The type of the filesystem holding ``path`` (longest mount point that contains it)."""
    real = os.path.realpath(path)
    best, kind = "", ""
    with open("/proc/self/mountinfo", encoding="utf-8") as f:
        for line in f:
            fields = line.split()
            mnt = fields[4].replace("\\040", " ")
            inside = real == mnt or real.startswith(mnt.rstrip("/") + "/")
            if inside and len(mnt) >= len(best):
                best, kind = mnt, fields[fields.index("-") + 1]
    return kind


def kernel_takes_o_direct(directory: Path) -> bool:
    """Whether this kernel's filesystem at ``directory`` accepts O_DIRECT (tmpfs does since Linux 6.6)."""
    probe = directory / ".odirect-probe"
    try:
        fd = os.open(probe, os.O_RDWR | os.O_CREAT | os.O_DIRECT, 0o600)
    except OSError as exc:
        if exc.errno == errno.EINVAL:
            return False
        raise
    else:
        os.close(fd)
        return True
    finally:
        probe.unlink(missing_ok=True)


def host_record(host_id: int, **changes: object) -> records.HostRecord:
    rec = records.HostRecord(
        host_id=host_id,
        seq=41 + host_id,
        wall_time=1_790_000_000.125,
        score=3400,
        state="EngineUp",
        engine=records.EngineStatus("up", "good", "running", "all fine"),
        hostname=f"host{host_id}.example",
    )
    rec = rec._replace(**changes)
    return rec._replace(details=records.host_details(rec))


def sparse_metadata(path: Path) -> None:
    with open(path, "wb") as f:
        f.truncate(records.METADATA_SIZE)


def expect_direct(directory: Path) -> bool:
    """Whether directio must report O_DIRECT in ``directory``: always on disk filesystems, else as the kernel says."""
    return fs_type(directory) in DIRECT_FILESYSTEMS or kernel_takes_o_direct(directory)


@pytest.fixture
def disk_dir(tmp_path: Path) -> Path:
    """tmp_path: ext4 on hectl's machines (where O_DIRECT must be used); elsewhere whatever it is."""
    if fs_type(tmp_path) in DIRECT_FILESYSTEMS:
        assert kernel_takes_o_direct(tmp_path)
    return tmp_path


@pytest.fixture
def shm_dir():  # type: ignore[no-untyped-def]
    if fs_type(Path("/dev/shm")) != "tmpfs":
        pytest.skip("/dev/shm is not a tmpfs here")
    d = Path(tempfile.mkdtemp(prefix="hectl-test-", dir="/dev/shm"))
    try:
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)


# --- round trips -------------------------------------------------------------------------------


def test_round_trip_on_disk_is_direct(disk_dir: Path) -> None:
    path = disk_dir / "metadata"
    sparse_metadata(path)
    slot = records.encode_host(host_record(3))
    w = directio.write(str(path), 3 * SLOT, slot, timeout=10)
    assert w.direct is expect_direct(disk_dir) and w.size == SLOT
    r = directio.read(str(path), 3 * SLOT, SLOT, timeout=10)
    assert r.direct is expect_direct(disk_dir)
    assert r.size == SLOT and r.data == slot
    assert records.decode_slot(3, r.data) == records.Slot(3, records.SlotKind.VALID, host_record(3), version=1)
    assert path.read_bytes()[3 * SLOT : 4 * SLOT] == slot  # what a plain reader sees too


def test_round_trip_on_tmpfs(shm_dir: Path) -> None:
    """tmpfs: O_DIRECT where this kernel's tmpfs takes it (Linux >= 6.6), else the buffered fallback."""
    path = shm_dir / "metadata"
    sparse_metadata(path)
    takes_direct = kernel_takes_o_direct(shm_dir)
    slot = records.encode_host(host_record(9))
    assert directio.write(str(path), 9 * SLOT, slot, timeout=10).direct is takes_direct
    r = directio.read(str(path), 0, records.METADATA_SIZE, timeout=10)
    assert r.direct is takes_direct
    assert r.size == records.METADATA_SIZE
    slots = records.decode_metadata(r.extents, r.size)
    assert list(slots) == [9] and slots[9].record == host_record(9)


def test_buffered_fallback_when_o_direct_is_refused(shm_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A filesystem whose open() refuses O_DIRECT with EINVAL (the helper is forked: it sees the patch)."""
    real_open = os.open

    def no_direct_open(path, flags, *args, **kwargs):  # type: ignore[no-untyped-def]
        if flags & os.O_DIRECT:
            raise OSError(errno.EINVAL, os.strerror(errno.EINVAL), path)
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(directio.os, "open", no_direct_open)
    path = shm_dir / "metadata"
    sparse_metadata(path)
    slot = records.encode_host(host_record(2))
    assert directio.write(str(path), 2 * SLOT, slot, timeout=10).direct is False
    r = directio.read(str(path), 2 * SLOT, SLOT, timeout=10)
    assert r.direct is False and r.data == slot


@pytest.fixture
def fuse_dir(tmp_path: Path):  # type: ignore[no-untyped-def]
    from lab import stallfs

    reason = stallfs.missing_requirements()
    if reason:
        pytest.skip(f"FUSE not usable here: {reason}")
    with stallfs.FuseMount(tmp_path / "backing", tmp_path / "mnt", tmp_path / "control") as mount:
        yield mount


@pytest.mark.parametrize("refused_at", [None, "open", "io"])
def test_fuse_filesystem_refusing_o_direct_falls_back(fuse_dir, refused_at: str | None) -> None:  # type: ignore[no-untyped-def]
    """A real (FUSE) filesystem that refuses O_DIRECT at open() or at read/write time: buffered + O_DSYNC."""
    path = fuse_dir.mountpoint / "metadata"
    sparse_metadata(path)
    fuse_dir.refuse_direct(refused_at)
    slot = records.encode_host(host_record(4))
    assert directio.write(str(path), 4 * SLOT, slot, timeout=10).direct is (refused_at is None)
    r = directio.read(str(path), 0, 8 * SLOT, timeout=10)
    assert r.direct is (refused_at is None)
    assert r.data[4 * SLOT : 5 * SLOT] == slot
    assert (fuse_dir.backing / "metadata").read_bytes()[4 * SLOT : 5 * SLOT] == slot


# --- sparse files and short files ----------------------------------------------------------------


def test_sparse_read_returns_only_data_extents(disk_dir: Path) -> None:
    path = disk_dir / "metadata"
    sparse_metadata(path)
    written = {0: records.encode_global(records.GlobalRecord(seq=3, maintenance=True, reason="r", set_by="u@h", set_at=1.0))}
    for host in (1, 7, 1999, 2000):
        written[host] = records.encode_host(host_record(host))
    for index, data in written.items():
        directio.write(str(path), index * SLOT, data, timeout=10)
    r = directio.read(str(path), 0, records.METADATA_SIZE, timeout=10)
    assert r.size == records.METADATA_SIZE and r.direct is expect_direct(disk_dir)
    # Only the written blocks come back: an 8 MB file of holes costs nothing.
    assert sum(len(chunk) for _, chunk in r.extents) == len(written) * SLOT
    covered = sorted(i for off, chunk in r.extents for i in range(off // SLOT, (off + len(chunk)) // SLOT))
    assert covered == sorted(written)
    for offset, chunk in r.extents:
        assert offset % SLOT == 0 and len(chunk) % SLOT == 0
        assert chunk == path.read_bytes()[offset : offset + len(chunk)]
    slots = records.decode_metadata(r.extents, r.size)
    assert sorted(slots) == sorted(written)  # holes decode as empty and are left out
    assert all(s.kind == records.SlotKind.VALID for s in slots.values())
    assert slots[7].record == host_record(7)
    # The whole-range view fills holes with zeros.
    data = r.data
    assert len(data) == records.METADATA_SIZE
    assert data[2 * SLOT : 7 * SLOT] == bytes(5 * SLOT)
    assert data[7 * SLOT : 8 * SLOT] == written[7]


def test_offset_read_reports_extents_relative_to_its_start(disk_dir: Path) -> None:
    path = disk_dir / "metadata"
    sparse_metadata(path)
    slot = records.encode_host(host_record(12))
    directio.write(str(path), 12 * SLOT, slot, timeout=10)
    r = directio.read(str(path), 10 * SLOT, 4 * SLOT, timeout=10)
    assert r.size == 4 * SLOT
    assert [(off, len(chunk)) for off, chunk in r.extents] == [(2 * SLOT, SLOT)]
    assert r.data[2 * SLOT : 3 * SLOT] == slot


@pytest.mark.parametrize("sector", [1, 7, 9])
def test_a_sector_inside_an_aligned_block_reads_itself(disk_dir: Path, sector: int) -> None:
    """sanlock's delta leases are 512-byte sectors: a read at 512 * n must not start at the 4 KiB block."""
    path = disk_dir / "lockspace"
    path.write_bytes(b"".join(bytes([i]) * 512 for i in range(16)))
    r = directio.read(str(path), sector * 512, 512, timeout=10)
    assert r.size == 512 and r.data == bytes([sector]) * 512


@pytest.mark.parametrize("cut", [512, 300])
def test_short_file_reports_its_size_and_a_truncated_slot(disk_dir: Path, cut: int) -> None:
    """A file that ends inside slot 2: a whole first sector still decodes; a cut one is truncated."""
    path = disk_dir / "metadata"
    host1 = records.encode_host(host_record(1))
    host2 = records.encode_host(host_record(2))
    path.write_bytes(bytes(SLOT) + host1 + host2[:cut])
    r = directio.read(str(path), 0, records.METADATA_SIZE, timeout=10)
    assert r.size == 2 * SLOT + cut
    assert r.direct is expect_direct(disk_dir)  # reaching the end of the file is no reason to give up O_DIRECT
    assert r.data == path.read_bytes()
    slots = records.decode_metadata(r.extents, r.size)
    assert sorted(slots) == [1, 2]
    assert slots[1].record == host_record(1)
    if cut >= records.SECTOR_SIZE:
        assert slots[2].record == host_record(2)._replace(details=())
    else:
        assert slots[2].kind == records.SlotKind.CORRUPT and "truncated" in slots[2].problem


# --- errors and timeouts -------------------------------------------------------------------------


def test_missing_file_is_a_storage_error(tmp_path: Path) -> None:
    path = tmp_path / "nowhere" / "metadata"
    with pytest.raises(StorageError) as exc:
        directio.read(str(path), 0, SLOT, timeout=10)
    err = exc.value
    assert not isinstance(err, StorageTimeout)
    assert err.exit_code == ExitCode.STORAGE == 4
    assert err.message == f"read {path}: {os.strerror(errno.ENOENT)}"
    assert err.errno == errno.ENOENT
    assert err.hint and "connected" in err.hint
    with pytest.raises(StorageError, match="No such file or directory"):
        directio.write(str(path), 0, bytes(SLOT), timeout=10)
    assert directio.path_kind(str(path), timeout=10) is None
    assert directio.path_kind(str(tmp_path), timeout=10) == "dir"


def test_fifo_is_refused_without_blocking(tmp_path: Path) -> None:
    """open() of a FIFO without a peer would block forever: it is opened O_NONBLOCK and refused as not a file."""
    for op, fifo in (
        (lambda p: directio.read(p, 0, SLOT, timeout=30), tmp_path / "read-fifo"),
        (lambda p: directio.write(p, 0, bytes(SLOT), timeout=30), tmp_path / "write-fifo"),
    ):
        os.mkfifo(fifo)
        with pytest.raises(StorageError, match=f"refused: {fifo} is not a regular file") as exc:
            op(str(fifo))
        assert not isinstance(exc.value, StorageTimeout)
        assert exc.value.exit_code == ExitCode.STORAGE
    assert directio.path_kind(str(fifo), timeout=5) == "other"


# --- through MetadataStore -----------------------------------------------------------------------

WRITER = """
import json, sys
from hectl.storage import records
from hectl.context import AppContext
fields = json.loads(sys.argv[2])
rec = records.HostRecord(engine=records.EngineStatus(**fields.pop("engine")), **fields)
rec = rec._replace(details=records.host_details(rec))
store = AppContext(config_path=sys.argv[1], environ={}).store()
print(json.dumps({"direct": store.write_host(rec)}))
"""


def test_record_written_by_another_process_reads_back_identically(domain) -> None:  # type: ignore[no-untyped-def]
    fields = {
        "host_id": 17,
        "seq": 2**64 - 1,
        "wall_time": 1_790_000_123.456,
        "score": -5,
        "state": "LocalMaintenance",
        "engine": {"vm": "down", "health": "unknown", "detail": "shut off", "reason": "ünïcode réason"},
        "hostname": "h17.example.org",
        "local_maintenance": True,
        "stopped": False,
    }
    env = {k: v for k, v in os.environ.items() if not k.startswith("HECTL_")}
    done = subprocess.run(
        [sys.executable, "-c", WRITER, str(domain.config), json.dumps(fields)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
        env=env,
    )
    assert done.returncode == 0, done.stderr
    direct = json.loads(done.stdout)["direct"]
    assert direct is expect_direct(domain.root)

    engine = records.EngineStatus(**fields.pop("engine"))  # type: ignore[arg-type]
    expected = records.HostRecord(engine=engine, **fields)  # type: ignore[arg-type]
    expected = expected._replace(details=records.host_details(expected))
    store = domain.store()
    slot = store.read_slot(17)
    assert slot.kind == records.SlotKind.VALID
    assert slot.record == expected
    snap = store.read_all()
    assert snap.slot(17).record == expected
    assert store.next_seq(17) == 0  # wraps


def test_writes_are_whole_slots_that_never_touch_a_neighbour(domain) -> None:  # type: ignore[no-untyped-def]
    store: MetadataStore = domain.store()
    path = Path(store.path)
    # Poison every byte: whatever a write leaves or overwrites shows.
    size = path.stat().st_size
    with open(path, "r+b") as f:
        f.write(b"\xaa" * size)
    store.write_host(host_record(6))
    store.write_host(host_record(8))
    before = path.read_bytes()
    assert before[6 * SLOT : 7 * SLOT] == records.encode_host(host_record(6))

    rec = host_record(7, state="EngineDown", score=0)
    store.write_host(rec)
    after = path.read_bytes()
    assert len(after) == size
    assert after[7 * SLOT : 8 * SLOT] == records.encode_host(rec)  # the whole slot, padding included
    assert after[: 7 * SLOT] == before[: 7 * SLOT]  # slot 6 and everything before it: untouched
    assert after[8 * SLOT :] == before[8 * SLOT :]  # slot 8 and everything after it: untouched
    assert store.read_slot(6).record == host_record(6)
    assert store.read_slot(8).record == host_record(8)
    assert store.read_slot(7).record == rec

    store.write_global(records.GlobalRecord(seq=1, maintenance=True, reason="x", set_by="u@h", set_at=5.0))
    final = path.read_bytes()
    assert final[SLOT:] == after[SLOT:]
    store.clear_slot(7)
    assert path.read_bytes()[7 * SLOT : 8 * SLOT] == bytes(SLOT)
    assert path.read_bytes()[8 * SLOT :] == after[8 * SLOT :]
    # A poisoned slot is never taken for a record.
    assert store.read_slot(9).kind == records.SlotKind.CORRUPT
    with pytest.raises(StorageError, match="refusing to write"):
        store._write(5, bytes(SLOT - 1))
