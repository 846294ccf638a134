"""The conformance suite every storage backend passes, run against each built-in backend on real storage.

A backend joins by adding a case to ``CASES``: how to build options for a real,
reachable domain root under ``tmp_path`` (starting whatever server it needs).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from hectl.backends import BUILTIN_BACKENDS
from hectl.clock import SystemClock
from hectl.config import HAConfig
from hectl.errors import ConfigError, NotDeployed, StorageError
from hectl.plugins import make_plugin_manager
from hectl.storage import doctor, records
from hectl.storage.backend import StorageBackend
from hectl.storage.domain import init_domain
from hectl.storage.metadata import MetadataStore
from tests.conftest import clear_dir

# backend name -> (options for a reachable root, options whose root is missing, options the factory must refuse)
CASES: dict[str, Callable[[Path], tuple[dict[str, str], dict[str, str], list[dict[str, str]]]]] = {
    "localfs": lambda tmp: (
        {"path": str(tmp)},
        {"path": str(tmp / "missing")},
        [{}, {"path": "relative/dir"}, {"path": str(tmp), "bogus": "1"}],
    ),
    # the session's replica-3 volume on a pool of three glusterd (conftest.py gluster_pool_volume), emptied for each test
    "glusterfs": lambda tmp: (
        {"connection": NFS[0].connection, "mount_base": str(tmp / "mnt")},
        {"connection": f"{NFS[0].glusterd.host}:/nosuchvolume", "mount_base": str(tmp / "mnt")},
        [
            {},
            {"connection": "127.0.0.2:/hectl", "bogus": "1"},
            {"connection": "-o:/hectl"},
            {"connection": "127.0.0.2:/vol/../x"},
            {"connection": "127.0.0.2:/hectl", "backup_servers": "a,--volfile-id=x"},
            {"connection": "127.0.0.2:/hectl", "mount_options": "log-file=/etc/passwd"},
            {"connection": "127.0.0.2:/hectl", "mount_options": "log-level=INFO --x"},
            {"connection": "127.0.0.2:/hectl", "mount_base": "relative"},
        ],
    ),
    # the session's real NFS-Ganesha, emptied for each test; mount_base is where the export directory is, so
    # the backend's paths are the server's (no kernel client here: everything goes through libnfs)
    "nfs": lambda tmp: (
        {"connection": NFS[0].connection, "mount_base": str(NFS[0].base)},
        {"connection": f"{NFS[0].address}:/nosuchexport", "mount_base": str(NFS[0].base)},
        [
            {},
            {"connection": NFS[0].connection, "bogus": "1"},
            {"connection": "-o:/hectl"},
            {"connection": "192.0.2.1:/a/../b"},
            {"connection": "192.0.2.1:/a b"},
            {"connection": "[::1]]:/x"},
            {"connection": NFS[0].connection, "nfs_version": "5"},
            {"connection": NFS[0].connection, "mount_options": "timeo=600,sec=krb5"},
            {"connection": NFS[0].connection, "mount_options": "timeo=6 00"},
            {"connection": NFS[0].connection, "mount_base": "relative"},
        ],
    ),
    # the session's three ctdbd + Ganesha; the domain is reached through the public address CTDB moves
    "ctdb": lambda tmp: (
        {"connection": NFS[0].connection, "mount_base": str(NFS[0].base), "ctdb_socket": NFS[0].socket(0)},
        {"connection": f"{NFS[0].public}:/nosuchexport", "mount_base": str(NFS[0].base), "ctdb_socket": NFS[0].socket(0)},
        [
            {},
            {"connection": NFS[0].connection, "ctdb_socket": "relative.sock"},
            {"connection": NFS[0].connection, "ctdb_socket": "/run/../etc/x"},
            {"connection": "-o:/hectl"},
            {"connection": NFS[0].connection, "bogus": "1"},
        ],
    ),
}
NFS: list[Any] = []  # the session's server (NFS, CTDB cluster, Gluster pool volume), set by the case fixture


def test_every_builtin_backend_runs_the_suite() -> None:
    assert set(CASES) == set(BUILTIN_BACKENDS)


@pytest.fixture(params=sorted(CASES))
def case(
    request: pytest.FixtureRequest, tmp_path: Path
) -> tuple[Callable[..., StorageBackend], dict[str, str], dict[str, str], list[dict[str, str]]]:
    factory = make_plugin_manager(load_entrypoints=False, environ={}).backend_factory(request.param)
    servers = {"nfs": "nfs_server", "ctdb": "ctdb_cluster", "glusterfs": "gluster_pool_volume"}
    if request.param in servers:
        NFS[:] = [request.getfixturevalue(servers[request.param])]
    if request.param in ("nfs", "ctdb"):
        clear_dir(NFS[0].export)
    good, missing, bad = CASES[request.param](tmp_path)
    if request.param == "glusterfs":
        NFS[0].clear()
        request.addfinalizer(lambda: factory(good, SystemClock()).disconnect(10.0))
    return factory, good, missing, bad


def test_factory_validates_options(case) -> None:  # type: ignore[no-untyped-def]
    factory, _, _, bad = case
    for options in bad:
        with pytest.raises(ConfigError):
            factory(options, SystemClock())


def test_constructor_does_no_io_and_missing_storage_is_reported(case) -> None:  # type: ignore[no-untyped-def]
    factory, _, missing, _ = case
    backend = factory(missing, SystemClock())  # must not touch storage
    with pytest.raises(StorageError):
        backend.connect(2.0)
    health = backend.health(2.0)  # never raises
    assert not health.ok and health.detail
    with pytest.raises(StorageError) as info:
        MetadataStore(backend, SystemClock(), 2.0).read_all()  # the first I/O finds out: storage missing
    assert not isinstance(info.value, NotDeployed)


def test_reachable_but_not_deployed(case) -> None:  # type: ignore[no-untyped-def]
    factory, good, _, _ = case
    backend = factory(good, SystemClock())
    backend.connect(5.0)
    with pytest.raises(NotDeployed):
        MetadataStore(backend, SystemClock(), 5.0).read_all()


def test_connect_disconnect_are_idempotent(case) -> None:  # type: ignore[no-untyped-def]
    factory, good, _, _ = case
    backend = factory(good, SystemClock())
    backend.connect(5.0)
    backend.connect(5.0)
    assert backend.is_connected()
    backend.disconnect(5.0)
    backend.disconnect(5.0)
    backend.connect(5.0)
    assert backend.is_connected()


def test_layout_description_and_health(case) -> None:  # type: ignore[no-untyped-def]
    factory, good, _, _ = case
    backend = factory(good, SystemClock())
    backend.connect(5.0)
    paths = backend.paths()
    assert paths.metadata == f"{backend.root()}/ha/metadata" and paths.lockspace.endswith("/ha/lockspace")
    described = backend.describe()
    assert described["type"] == backend.name and json.loads(json.dumps(described)) == described
    init_domain(backend, SystemClock(), 5.0)
    health = backend.health(5.0)
    assert health.ok and isinstance(health.direct_io, bool) and health.latency_ms is not None


def test_slots_round_trip_through_the_backend(case) -> None:  # type: ignore[no-untyped-def]
    factory, good, _, _ = case
    backend = factory(good, SystemClock())
    backend.connect(5.0)
    init_domain(backend, SystemClock(), 5.0)
    store = MetadataStore(backend, SystemClock(), 5.0)
    rec = records.HostRecord(7, 1, 1_800_000_000.0, 2000, "EngineDown", records.EngineStatus("down"), "h7")
    store.write_host(rec)
    store.write_global(records.GlobalRecord(seq=3, maintenance=True, reason="r"))
    snap = store.read_all()
    assert snap.slot(7).record == rec and snap.global_record.maintenance
    assert sorted(snap.slots) == [0, 7] and not snap.truncated
    assert store.next_seq(7) == 2


def test_storage_check_contract(case) -> None:  # type: ignore[no-untyped-def]
    """``checks`` and ``stall_budget`` give well-formed findings and stalls; the doctor runs end to end."""
    factory, good, missing, _ = case
    backend = factory(good, SystemClock())
    backend.connect(5.0)
    init_domain(backend, SystemClock(), 5.0)
    found = backend.checks(5.0, 10.0)
    assert all(isinstance(f, doctor.Finding) and f.severity in doctor.SEVERITIES and f.check and f.what for f in found)
    assert all(f.why and f.fix for f in found if f.severity != doctor.OK)  # every problem says why and how to fix it
    stalls = backend.stall_budget(5.0)
    assert all(isinstance(s, doctor.Stall) and s.layer and s.seconds >= 0 and s.source for s in stalls)
    report = doctor.run(backend, MetadataStore(backend, SystemClock(), 5.0).read_all, HAConfig(), 5.0)
    assert report["status"] in doctor.SEVERITIES and json.loads(json.dumps(report)) == report
    gone = factory(missing, SystemClock())
    report = doctor.run(gone, MetadataStore(gone, SystemClock(), 2.0).read_all, HAConfig(), 2.0)
    assert (report["status"], report["code"]) == ("unreachable", 4)


def test_domain_files_never_lead_out_of_the_domain(case, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Links and special files planted in the domain are refused by every file operation, naming the file."""
    factory, good, _, _ = case
    backend = factory(good, SystemClock())
    backend.connect(5.0)
    init_domain(backend, SystemClock(), 5.0)
    paths = backend.paths()
    victim = tmp_path.parent / f"{tmp_path.name}-victim"
    victim.write_bytes(b"v" * 8192)
    spec = f"{paths.config_dir}/engine-vm.json"
    Path(spec).symlink_to(victim)
    for op in (
        lambda: backend.read(spec, 0, 4096, 5.0),
        lambda: backend.write(spec, 0, bytes(4096), 5.0),
        lambda: backend.update(spec, 0, 4096, lambda old: bytes(4096), 5.0, replace=True),
        lambda: backend.check_file(spec, 5.0),
    ):
        with pytest.raises(StorageError, match=f"{spec} is a symbolic link"):
            op()
    with pytest.raises(StorageError, match="outside the storage domain"):
        backend.read(str(victim), 0, 4096, 5.0)
    assert victim.read_bytes() == b"v" * 8192
    backend.create(spec, b"x" * 512, 8192, 5.0)  # creation replaces the link, never follows it
    assert not Path(spec).is_symlink() and backend.read(spec, 0, 512, 5.0).data == b"x" * 512
    assert victim.read_bytes() == b"v" * 8192


def test_update_reads_changes_and_writes_under_the_lock(case) -> None:  # type: ignore[no-untyped-def]
    factory, good, _, _ = case
    backend = factory(good, SystemClock())
    backend.connect(5.0)
    init_domain(backend, SystemClock(), 5.0)
    where = f"{backend.paths().config_dir}/counter"

    def bump(old: bytes) -> bytes:
        return str(int(old.strip() or b"0") + 1).encode().ljust(512)

    first = backend.update(where, 0, 512, bump, 5.0, replace=True)
    assert first.written and first.data == b""
    second = backend.update(where, 0, 512, bump, 5.0, replace=True)
    assert second.written and second.data.strip() == b"1"
    assert backend.read(where, 0, 512, 5.0).data.strip() == b"2"
    unchanged = backend.update(where, 0, 512, lambda old: None, 5.0, replace=True)
    assert not unchanged.written and unchanged.data.strip() == b"2"
