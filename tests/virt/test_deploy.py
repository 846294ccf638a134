"""``hectl deploy`` on the real stack: a bare host (its own sanlock daemon and libvirtd, in a network namespace)
to a healthy engine under its lease; killed inside each long step and re-run; a second host joining from the
domain alone; a used host id refused; shared keys that cannot differ; a host removed."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from lab import appliance as lab_appliance
from lab import sanlock as lab_sanlock
from tests.conftest import HECTL
from tests.virt.vmlab import IO_TIMEOUT, Host, free_port, missing, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SECRET = f"pw-{uuid.uuid4().hex}"  # the engine's root password: must never leak
STEPS = ["host", "storage", "domain", "cluster-key", "cluster-config", "leases", "engine-image", "cloud-init", "engine-spec"]
STEPS += ["local-config", "lockspace", "engine", "liveliness", "maintenance", "agent-unit"]


class Lab:
    """Hosts 1-3 share one domain (``root``); host 4 deploys a domain of its own (``root4``)."""

    def __init__(self, base: Path) -> None:
        self.base = base
        shim = lab_sanlock.build_shim(base)
        self.hosts = [Host(i, base, shim) for i in (1, 2, 3, 4)]
        self.root = base / "domain"
        self.appliance = lab_appliance.build()
        self.password_file = base / "root-password"
        self.disk = base / "appliance.raw"

    def start(self) -> None:
        for h in self.hosts:
            h.start()
        with open(self.disk, "wb") as f:  # data, not a sparse file: converting it takes a moment
            f.write(os.urandom(256 * 1024 * 1024))
        fd = os.open(self.password_file, os.O_WRONLY | os.O_CREAT, 0o600)
        os.write(fd, SECRET.encode() + b"\n")
        os.close(fd)
        self.answers = {
            1: self.write_answers(self.hosts[0], self.root),
            4: self.write_answers(self.hosts[3], self.base / "domain4"),
        }

    def write_answers(self, host: Host, root: Path) -> Path:
        root.mkdir(mode=0o755)
        port = free_port()
        path = self.base / f"answers{host.id}.ini"
        path.write_text(
            f"[host]\nid = 1\nhostname = host{host.id}.example\n"
            f"[storage]\ntype = localfs\npath = {root}\ntimeout = 5\n"
            f"[paths]\nstate_dir = {self.base}/state{host.id}\n"
            f"[vm]\nuri = {host.libvirtd.uri}\naccelerator = tcg\nstart_timeout = 120\n"
            f"[engine]\nfqdn = engine.example\nhealth_url = http://127.0.0.1:{port}/ovirt-engine/services/health\n"
            "health_timeout = 2\n"
            f"[ha]\nio_timeout = {IO_TIMEOUT}\nloop = 2\nhistory = 6\n"
            "[timeouts]\nliveness_window = 8\nagent_silent_after = 8\n"
            f"[engine_vm]\nname = hectl-dep-{uuid.uuid4().hex[:8]}\nmemory_mib = 256\nvcpus = 1\n"
            f"cmdline = {self.appliance.cmdline}\nnetwork = user\nhost_port = {port}\ngraphics = none\n"
            f"[appliance]\nimage = {self.disk}\nkernel = {self.appliance.kernel}\ninitrd = {self.appliance.initrd}\n"
            "[cloud_init]\nenabled = yes\nssh_key = ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHectlTestKeyOnly hectl-test\n"
        )
        return path

    def deploy_argv(self, host: Host, *extra: str) -> list[str]:
        answers = ["--answers", str(self.answers[host.id]), "--cloud-init-root-password-file", str(self.password_file)]
        return [HECTL, "deploy", *answers, *extra]

    def close(self) -> None:
        for h in self.hosts:
            h.close()


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    reason = missing()
    if reason:
        pytest.skip(reason)
    base = lab_sanlock.shared_dir("hectl-deploy-")
    lab = Lab(base)
    try:
        lab.start()
        yield lab
    finally:
        lab.close()
        shutil.rmtree(base, ignore_errors=True)


def in_ns(host: Host, argv: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", "netns", "exec", host.netns, *argv], env=host.env, capture_output=True, text=True, **kwargs)


def plan(lab: Lab, host: Host) -> dict[str, str]:
    res = in_ns(host, lab.deploy_argv(host, "--dry-run", "--json"), timeout=120)
    assert res.returncode == 0, res.stderr
    return {row["step"]: row["state"] for row in json.loads(res.stdout)["steps"]}


def kill_inside(lab: Lab, host: Host, step: str, marker: str = "") -> None:
    """Start deploy, SIGKILL it (and its children) 0.2 s into ``step``, or when it says ``marker``."""
    proc = subprocess.Popen(
        ["ip", "netns", "exec", host.netns, *lab.deploy_argv(host)], env=host.env, stderr=subprocess.PIPE, text=True,
        stdout=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    assert proc.stderr is not None
    seen = []
    for line in proc.stderr:
        seen.append(line)
        if (marker and marker in line) or (not marker and f"deploy: {step}: running" in line):
            time.sleep(0 if marker else 0.2)
            os.killpg(proc.pid, signal.SIGKILL)
            break
    proc.wait(30)
    assert any(f"{step}: running" in line for line in seen), "".join(seen)


class LeakWatcher(threading.Thread):
    """Reads every process's argv and environment while deploy runs: the secret must be in none."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.stop = threading.Event()
        self.leaks: list[str] = []
        self.scans = 0

    def run(self) -> None:
        while not self.stop.is_set():
            for pid in os.listdir("/proc"):
                if not pid.isdigit():
                    continue
                for what in ("cmdline", "environ"):
                    try:
                        data = Path(f"/proc/{pid}/{what}").read_bytes()
                    except OSError:
                        continue
                    if SECRET.encode() in data:
                        self.leaks.append(f"{pid} {what}: {data[:200]!r}")
            self.scans += 1
            time.sleep(0.01)


def test_deploy_bare_host_to_healthy_engine_then_nothing_changes(lab: Lab) -> None:
    h1 = lab.hosts[0]
    before = plan(lab, h1)
    assert list(before) == STEPS
    assert before["host"] == "done" and before["agent-unit"] == "skipped"  # no systemd here
    assert {s for s, state in before.items() if state == "to do"} == set(STEPS) - {"host", "storage", "agent-unit"}

    watcher = LeakWatcher()
    watcher.start()
    out = lab.base / "answers-out.ini"
    t0 = time.monotonic()
    res = in_ns(h1, lab.deploy_argv(h1, "--json", "--answers-out", str(out)), timeout=600)
    wall = time.monotonic() - t0
    watcher.stop.set()
    watcher.join()
    assert res.returncode == 0, res.stderr
    doc = json.loads(res.stdout)
    assert doc["result"] == "deployed" and [r["step"] for r in doc["steps"]] == STEPS
    print(
        f"\nbare host -> healthy engine: {wall:.1f} s wall; " + ", ".join(f"{r['step']} {r['seconds']:.2f}" for r in doc["steps"])
    )

    # the engine runs here under its lease, and is healthy
    assert any(line.startswith("r hectl:engine:") for line in h1.daemon.client("status").stdout.splitlines())
    assert in_ns(h1, [HECTL, "check-liveliness"], timeout=60).returncode == 0

    # nothing changes on a second run
    again = in_ns(h1, lab.deploy_argv(h1, "--json"), timeout=300)
    assert again.returncode == 0, again.stderr
    second = json.loads(again.stdout)
    assert second["result"] == "unchanged" and {r["state"] for r in second["steps"]} <= {"done", "skipped"}

    # the secret is in no child's argv or environment, no output, no file (the seed holds only a hash)
    assert watcher.scans > 10 and watcher.leaks == []
    assert SECRET not in res.stdout + res.stderr + again.stdout + again.stderr
    assert "[cloud_init]" in out.read_text() and "root_password" not in out.read_text()
    for path in lab.base.rglob("*"):
        if path.is_file() and path != lab.password_file and not path.is_symlink():
            with open(path, "rb") as f:
                assert SECRET.encode() not in f.read(), path
    seed = lab.root / "images" / "seed.iso"
    assert seed.stat().st_mode & 0o077 == 0 and b"$6$" in seed.read_bytes()


def test_deploy_killed_inside_each_long_step_then_rerun(lab: Lab) -> None:
    h4 = lab.hosts[3]
    kill_inside(lab, h4, "engine-image", "importing the engine disk: 10 %")
    assert (lab.base / "domain4" / "images" / ".engine.qcow2.partial").exists()  # killed in the middle of the import
    half = plan(lab, h4)  # exactly the remaining steps are left
    assert all(half[s] == "done" for s in STEPS[: STEPS.index("engine-image")]), half
    remaining = ["engine-image", "cloud-init", "engine-spec", "local-config", "lockspace", "engine", "liveliness"]
    assert [s for s in STEPS if half[s] == "to do"] == remaining, half
    for step in ("lockspace", "engine", "liveliness"):
        kill_inside(lab, h4, step)
        now = plan(lab, h4)
        assert all(now[s] in ("done", "skipped") for s in STEPS[: STEPS.index(step)]), (step, now)
    res = in_ns(h4, lab.deploy_argv(h4, "--json"), timeout=600)
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["result"] in ("deployed", "unchanged")  # the last kill may have left nothing to do
    assert {state for state in plan(lab, h4).values()} <= {"done", "skipped"}
    assert in_ns(h4, [HECTL, "check-liveliness"], timeout=60).returncode == 0
    assert not (lab.base / "domain4" / "images" / ".engine.qcow2.partial").exists()


def rows(host: Host) -> dict[int, dict[str, Any]]:
    res = in_ns(host, [HECTL, "vm-status", "--json"], timeout=60)
    assert res.returncode == 0, res.stderr
    return {r["host_id"]: r for r in json.loads(res.stdout)["hosts"]}


def test_join_used_id_shared_keys_and_remove(lab: Lab) -> None:
    h1, h2, h3, _ = lab.hosts
    if in_ns(h1, lab.deploy_argv(h1), timeout=600).returncode != 0:  # idempotent: deployed by the test before
        pytest.fail("the first host could not be deployed")
    join = [HECTL, "deploy", "--join", "--json", "--storage-type", "localfs", "--storage-option", f"path={lab.root}"]
    join += ["--paths-state-dir", str(lab.base / "state2"), "--vm-uri", h2.libvirtd.uri, "--vm-accelerator", "tcg"]
    join += ["--paths-cluster-key", str(lab.base / "keys2" / "cluster.key")]
    no_key = in_ns(h2, [*join, "--host-id", "2", "--host-hostname", "host2.example"], timeout=120)
    assert no_key.returncode == 1 and "give the first host's with --cluster-key-file" in no_key.stderr, no_key.stderr
    assert not h2.config.exists()
    join += ["--cluster-key-file", str(h1.config.parent / "cluster.key")]  # a root-only copy of the first host's
    dry = in_ns(h2, [*join, "--host-id", "2", "--host-hostname", "host2.example", "--dry-run"], timeout=120)
    assert dry.returncode == 0, dry.stderr
    planned = {r["step"]: r["state"] for r in json.loads(dry.stdout)["steps"]}
    assert planned["local-config"] == "to do" and planned["cluster-key-present"] == "to do"
    t0 = time.monotonic()
    res = in_ns(h2, [*join, "--host-id", "2", "--host-hostname", "host2.example"], timeout=300)
    assert res.returncode == 0, res.stderr
    print(f"\njoin: {time.monotonic() - t0:.1f} s")
    assert json.loads(res.stdout)["result"] == "joined"
    assert (lab.base / "keys2" / "cluster.key").read_bytes() == (h1.config.parent / "cluster.key").read_bytes()
    assert oct((lab.base / "keys2" / "cluster.key").stat().st_mode & 0o777) == "0o600"
    text = h2.config.read_text()
    assert "[score]" not in text and "io_timeout" not in text  # shared keys come from the domain
    for h in (h1, h2):
        h.start_agent()
    wait_until(lambda: all(r["live"] for r in rows(h2).values() if r["host_id"] in (1, 2)) and len(rows(h2)) >= 2,
               60, "both hosts live in vm-status")  # fmt: skip
    assert rows(h2)[1]["engine"]["vm"] == "up"  # the agent took over the engine deploy started: no restart

    # a used host id: exit 5, nothing written
    used = in_ns(h3, [*join, "--host-id", "1", "--host-hostname", "host3.example"], timeout=120)
    assert used.returncode == 5, used.stderr
    assert not h3.config.exists()

    # shared keys: one change on one host is seen by both agents; a local copy of one is refused
    assert in_ns(h2, [HECTL, "cluster-config", "set", "score.base=3000"], timeout=60).returncode == 0
    wait_until(lambda: all(r["score"] is not None and r["score"] <= 3000 for h, r in rows(h1).items() if h in (1, 2)),
               30, "both agents score with the new base")  # fmt: skip
    original = h2.config.read_text()
    h2.config.write_text(original + "[score]\nbase = 3400\n")
    local = in_ns(h2, [HECTL, "vm-status"], timeout=60)
    assert local.returncode == 3 and "score.base" in local.stderr
    h2.config.write_text(original)

    # remove: refused where the engine runs, done where it does not (after its agent stopped)
    assert in_ns(h1, [HECTL, "deploy", "--remove"], timeout=60).returncode == 6
    assert h2.agent is not None
    h2.agent.send_signal(signal.SIGTERM)
    h2.agent.wait(30)
    gone = in_ns(h2, [HECTL, "deploy", "--remove", "--json"], timeout=120)
    assert gone.returncode == 0, gone.stderr
    assert json.loads(gone.stdout)["result"] == "removed" and not h2.config.exists()
    assert 2 not in rows(h1) or rows(h1)[2]["slot"] == "empty"
