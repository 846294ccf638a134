"""The glusterfs backend against the session's real replica-3 volume, through the CLI as a real process."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lab import gluster
from tests.conftest import Domain, run_hectl
from tests.gluster.conftest import gluster_config


def test_vm_status_and_set_maintenance_on_the_volume(gdomain: Domain, gluster_volume: gluster.Volume) -> None:
    gdomain.publish(1, vm="up", health="good")
    gdomain.publish(2)
    done = run_hectl(["set-maintenance", "--mode", "global", "--reason", "gluster test"], env=gdomain.env)
    assert done.returncode == 0, done.stderr
    done = run_hectl(["vm-status", "--json"], env=gdomain.env)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert sorted(h["host_id"] for h in report["hosts"]) == [1, 2]
    assert report["global_maintenance"]["active"] is True
    # the records are on the volume: the lab's own mount sees the metadata file
    assert (gluster_volume.mount() / "ha" / "metadata").stat().st_size > 0


@pytest.mark.parametrize(
    ("storage", "key"),
    [
        ("connection = 127.0.0.2:/hectl,log-file=/tmp/x\n", "connection"),
        ("connection = --volfile-id=x:/hectl\n", "connection"),
        ("connection = 127.0.0.2:/hectl\nbackup_servers = 127.0.0.3 /etc\n", "backup_servers"),
        ("connection = 127.0.0.2:/hectl\nmount_options = log-level=INFO,direct-io-mode=disable\n", "mount_options"),
        ("connection = 127.0.0.2:/hectl\nmount_base = ../x\n", "mount_base"),
        ("connection = 127.0.0.2:/hectl\nmount_opts = x\n", "mount_opts"),
    ],
)
def test_bad_storage_options_exit_3_naming_the_key_and_mount_nothing(tmp_path: Path, storage: str, key: str) -> None:
    if "mount_base" not in storage:
        storage += f"mount_base = {tmp_path / 'mnt'}\n"
    config = gluster_config(tmp_path / "hectl.conf", tmp_path / "state", storage)
    env = Domain(tmp_path, config, tmp_path / "state", 1).env
    for args in (["vm-status", "--json"], ["set-maintenance", "--mode", "global"]):
        done = run_hectl(args, env=env)
        assert done.returncode == 3, (args, done.stdout, done.stderr)
        assert key in done.stderr or key in done.stdout
    assert not (tmp_path / "mnt").exists()
    assert f"{tmp_path}" not in Path("/proc/self/mounts").read_text()


def _mounted(dom: Domain) -> bool:
    return dom.app().backend(connect=False).is_connected()


def test_gfapi_reads_the_same_bytes_as_the_fuse_mount(gdomain: Domain) -> None:
    gdomain.publish(1, vm="up", health="good")
    gdomain.publish(3)
    backend = gdomain.app().backend()
    metadata = backend.paths().metadata
    through_fuse = backend.read(metadata, 0, 8 * 4096, 5.0)
    backend.disconnect(5.0)
    through_gfapi = backend.read(metadata, 0, 8 * 4096, 5.0)
    assert not backend.is_connected()  # read without mounting
    assert through_gfapi.size == through_fuse.size and through_gfapi.data == through_fuse.data
    assert through_gfapi.data[4096:4100] != bytes(4)  # slot 1 holds a record (not an all-zero comparison)


@pytest.mark.parametrize("plant", ["file-link", "dir-link", "fifo"])
def test_gfapi_refuses_links_and_special_files_by_name(gdomain: Domain, tmp_path: Path, plant: str) -> None:
    import os

    backend = gdomain.app().backend()
    ha = Path(backend.paths().metadata).parent
    victim = tmp_path / "victim"
    victim.write_bytes(b"secret" * 1000)
    if plant == "file-link":
        (ha / "metadata").unlink()
        (ha / "metadata").symlink_to(victim)
    elif plant == "dir-link":
        ha.rename(ha.with_name("ha.real"))
        ha.symlink_to(tmp_path)
        (tmp_path / "metadata").write_bytes(bytes(8192))
    else:
        (ha / "metadata").unlink()
        os.mkfifo(ha / "metadata")
    backend.disconnect(5.0)
    out = run_hectl(["vm-status", "--json"], env=gdomain.env)
    assert out.returncode == 4, out.stderr
    assert not _mounted(gdomain)  # refused through gfapi, not by a mount
    assert "symbolic link" in out.stderr if plant != "fifo" else "not a regular file" in out.stderr


def test_vm_status_and_metrics_read_through_gfapi_without_mounting(gdomain: Domain) -> None:
    gdomain.publish(1, vm="up", health="good")
    gdomain.publish(2)
    with_mount = run_hectl(["vm-status", "--json"], env=gdomain.env)
    gdomain.app().backend(connect=False).disconnect(5.0)
    without = run_hectl(["vm-status", "--json"], env=gdomain.env)
    assert without.returncode == with_mount.returncode == 0, without.stderr
    assert not _mounted(gdomain)
    hosts = [json.loads(out.stdout)["hosts"] for out in (with_mount, without)]
    assert [json.loads(out.stdout)["storage"]["access"] for out in (with_mount, without)] == ["fuse", "gfapi"]
    for report in hosts:
        for host in report:
            del host["age_s"], host["live"]  # time passes between the two calls
    assert hosts[0] == hosts[1] and len(hosts[0]) == 2
    metrics = run_hectl(["metrics"], env=gdomain.env)
    assert metrics.returncode == 0, metrics.stderr
    assert not _mounted(gdomain)


def test_a_mount_whose_client_died_is_mounted_again(gdomain: Domain) -> None:
    import os
    import signal

    from hectl.backends.glusterfs.backend import client_pids

    backend = gdomain.app().backend()
    (pid,) = client_pids(backend.root())
    os.kill(pid, signal.SIGKILL)
    gluster.wait_gone(pid)
    with pytest.raises(OSError):  # stale: Transport endpoint is not connected
        os.listdir(backend.root())
    done = run_hectl(["set-maintenance", "--mode", "global"], env=gdomain.env)
    assert done.returncode == 0, done.stderr
    assert backend.is_connected() and client_pids(backend.root()) != [pid]
