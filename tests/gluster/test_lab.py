"""The lab's glusterd and volume are real, and teardown leaves nothing behind."""

from __future__ import annotations

import pytest

from lab import gluster


def test_volume_is_a_started_replica_3_with_virt_options(glusterd: gluster.Glusterd, gluster_volume: gluster.Volume) -> None:
    info = glusterd.xml("volume", "info", gluster_volume.name).find("volInfo/volumes/volume")
    assert info is not None
    assert info.findtext("statusStr") == "Started" and info.findtext("replicaCount") == "3"
    options = {o.findtext("name"): o.findtext("value") for o in info.iter("option")}
    assert options["performance.strict-o-direct"] == "on" and options["network.remote-dio"] == "disable"
    assert options["network.ping-timeout"] == "10"
    assert all(pid > 0 for pid in gluster_volume.brick_pids())


def test_cli_errors_are_read_from_opret(glusterd: gluster.Glusterd) -> None:
    with pytest.raises(gluster.GlusterError, match="does not exist"):
        glusterd.xml("volume", "status", "nosuchvolume")
