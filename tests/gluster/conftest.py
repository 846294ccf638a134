"""One real glusterd with a replica-3 volume for the whole session (lab/gluster.py)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from lab import gluster
from lab.sanlock import alive


@pytest.fixture(scope="session")
def glusterd() -> Iterator[gluster.Glusterd]:
    reason = gluster.missing()
    if reason:
        pytest.skip(reason)  # a failure under CI=true (tests/conftest.py)
    host_state = sorted(os.listdir("/var/lib/glusterd"))
    with gluster.running() as daemon:
        pids = [daemon.pid]
        yield daemon
        pids += daemon.service_pids()
    # teardown leaves nothing: no process, no state, no mount, the package's /var/lib/glusterd untouched
    assert not any(alive(pid) for pid in pids) and not daemon.base.exists()
    assert sorted(os.listdir("/var/lib/glusterd")) == host_state
    assert "fuse.glusterfs" not in Path("/proc/self/mounts").read_text()


@pytest.fixture(scope="session")
def volume(glusterd: gluster.Glusterd) -> gluster.Volume:
    """The virt-group volume the backend tests use (owner 0:0 so that tests as root may write its root)."""
    vol = gluster.Volume(glusterd, "hectl")
    vol.create(virt=True, owner=(0, 0), ping_timeout=10)
    return vol
