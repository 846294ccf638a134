"""The glusterfs backend's tests: a deployed domain on the session's real volume (tests/conftest.py)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from hectl.backends.glusterfs.backend import client_pids
from hectl.storage.domain import init_domain
from lab import gluster
from tests.conftest import Domain


def gluster_config(path: Path, state_dir: Path, storage: str, host_id: int = 1) -> Path:
    path.write_text(
        f"[host]\nid = {host_id}\nhostname = host{host_id}.example\n\n"
        f"[storage]\ntype = glusterfs\n{storage}timeout = 5\n\n"
        f"[paths]\nstate_dir = {state_dir}\n"
    )
    return path


@pytest.fixture
def gdomain(tmp_path: Path, gluster_volume: gluster.Volume) -> Iterator[Domain]:
    """A deployed domain on the emptied volume, mounted under ``tmp_path/mnt``; unmounted afterwards."""
    gluster_volume.clear()
    storage = f"connection = {gluster_volume.connection}\nmount_base = {tmp_path / 'mnt'}\n"
    dom = Domain(tmp_path / "mnt", gluster_config(tmp_path / "hectl.conf", tmp_path / "state", storage), tmp_path / "state", 1)
    app = dom.app()
    init_domain(app.backend(), app.clock, 5.0)
    yield dom
    backend = dom.app().backend(connect=False)
    backend.disconnect(10.0)
    deadline = time.monotonic() + 30.0  # the FUSE client exits after the unmount (seconds on a loaded machine)
    while client_pids(backend.root()) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not client_pids(backend.root()), [Path(f"/proc/{p}/cmdline").read_bytes() for p in client_pids(backend.root())]
