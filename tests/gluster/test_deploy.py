"""``hectl deploy`` on the Gluster backend: the domain, its leases and the engine disk on the FUSE mount of a real
replica-3 volume; the engine runs under its lease and its health page answers; a second run changes nothing."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import uuid
from pathlib import Path

import pytest

from lab import appliance as lab_appliance
from lab import gluster
from lab import libvirtd as lab_libvirtd
from lab import sanlock as lab_sanlock
from tests.conftest import HECTL
from tests.virt.vmlab import free_port, hectl_env, missing

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_deploy_on_the_gluster_volume(gluster_volume: gluster.Volume, tmp_path: Path) -> None:
    reason = missing()
    if reason:
        pytest.skip(reason)
    gluster_volume.clear()
    base = lab_sanlock.shared_dir("hectl-gldeploy-")
    # deploy mounts the volume after libvirtd started: a shared mount carries it into libvirtd's namespace
    subprocess.run(["mount", "--bind", str(base), str(base)], check=True)
    subprocess.run(["mount", "--make-shared", str(base)], check=True)
    daemon = lab_sanlock.Daemon(base / "sanlock", lab_sanlock.build_shim(tmp_path))
    libvirtd = lab_libvirtd.Libvirtd(sanlock_run_dir=daemon.run_dir)
    config = base / "hectl.conf"
    env = hectl_env(config, daemon)
    try:
        daemon.start()
        libvirtd.start()
        appliance = lab_appliance.build()
        image = base / "appliance.raw"
        image.write_bytes(b"\0" * 16 * 1024 * 1024)
        port = free_port()
        answers = base / "answers.ini"
        answers.write_text(
            "[host]\nid = 1\nhostname = gl1.example\n"
            f"[storage]\ntype = glusterfs\nconnection = {gluster_volume.connection}\nmount_base = {base / 'mnt'}\n"
            f"timeout = 5\n[paths]\nstate_dir = {base / 'state'}\n"
            f"[vm]\nuri = {libvirtd.uri}\naccelerator = tcg\nstart_timeout = 120\n"
            f"[engine]\nfqdn = engine.example\nhealth_url = http://127.0.0.1:{port}/ovirt-engine/services/health\n"
            "[ha]\nio_timeout = 2\n"
            f"[engine_vm]\nname = hectl-gl-{uuid.uuid4().hex[:8]}\nmemory_mib = 256\nvcpus = 1\n"
            f"cmdline = {appliance.cmdline}\nnetwork = user\nhost_port = {port}\ngraphics = none\n"
            f"[appliance]\nimage = {image}\nkernel = {appliance.kernel}\ninitrd = {appliance.initrd}\n"
        )
        t0 = time.monotonic()
        res = subprocess.run(
            [HECTL, "deploy", "--answers", str(answers), "--json"], env=env, capture_output=True, text=True, timeout=600
        )
        wall = time.monotonic() - t0
        assert res.returncode == 0, res.stderr
        doc = json.loads(res.stdout)
        assert doc["result"] == "deployed"
        print(f"\ngluster deploy: {wall:.1f} s; " + ", ".join(f"{r['step']} {r['seconds']:.2f}" for r in doc["steps"]))
        mount = base / "mnt"
        assert any(p.is_mount() for p in mount.iterdir())  # the domain is on the FUSE mount ...
        assert any(line.startswith("r hectl:engine:") for line in daemon.client("status").stdout.splitlines())  # ... leased
        ok = subprocess.run([HECTL, "check-liveliness"], env=env, capture_output=True, text=True, timeout=60)
        assert ok.returncode == 0, ok.stdout + ok.stderr
        again = subprocess.run(
            [HECTL, "deploy", "--answers", str(answers), "--json"], env=env, capture_output=True, text=True, timeout=300
        )
        assert again.returncode == 0 and json.loads(again.stdout)["result"] == "unchanged", again.stderr
    finally:
        libvirtd.stop()
        daemon.stop()
        subprocess.run([HECTL, "storage", "disconnect"], env=env, capture_output=True, timeout=60)
        subprocess.run(["umount", "-l", str(base)], capture_output=True)
        shutil.rmtree(base, ignore_errors=True)
