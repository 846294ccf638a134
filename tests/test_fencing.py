"""hectl fence against the real stack: fence_ipmilan -> ipmitool -> ipmi_sim (lab/bmc.py) powering a namespace
host off, and sanlock freeing the fenced host's id so that the engine lease can be taken at once."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from hectl.fencing import families
from lab import bmc as lab_bmc
from lab import net
from lab import sanlock as lab_sanlock
from tests.conftest import Domain, make_domain, run_hectl
from tests.test_json_schemas import valid

pytestmark = pytest.mark.integration


class Rig:
    """Host 1 (this process, the fencer) and host 2: a network namespace with a sleeper, behind a real BMC."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.netns = f"hf{os.getpid() % 100000}"
        self.bmc = lab_bmc.BMC(base / "bmc2", self.netns, None, "127.0.0.1", 16000 + os.getpid() % 1000)
        self.dom: Domain = make_domain(base / "host")
        self.secrets = base / "secrets"

    def start(self) -> None:
        subprocess.run(["ip", "netns", "add", self.netns], check=True, timeout=30)
        subprocess.Popen(["ip", "netns", "exec", self.netns, "setsid", "sleep", "100000"], stdout=subprocess.DEVNULL)
        self.bmc.start()
        self.secrets.mkdir(mode=0o700)
        self.write_secrets(self.bmc.secrets())
        self.configure("timeout = 10\n")

    def write_secrets(self, text: str, mode: int = 0o600) -> None:
        path = self.secrets / "host2"
        path.write_text(text)
        path.chmod(mode)

    def configure(self, extra: str) -> None:
        text = self.dom.config.read_text().split("[fencing]")[0]
        self.dom.config.write_text(f"{text}[fencing]\nsecrets_dir = {self.secrets}\nhost2 = {self.bmc.device()}\n{extra}")

    def host_pids(self) -> list[str]:
        return subprocess.run(["ip", "netns", "pids", self.netns], capture_output=True, text=True, timeout=30).stdout.split()

    def hectl(self, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        return run_hectl(list(args), env=dict(self.dom.env, **(env or {})), timeout=120)

    def close(self) -> None:
        self.bmc.stop()
        for pid in self.host_pids():
            subprocess.run(["kill", "-9", pid], capture_output=True)
        subprocess.run(["ip", "netns", "del", self.netns], capture_output=True, timeout=30)


@pytest.fixture
def rig() -> Iterator[Rig]:
    reason = lab_bmc.missing()
    if reason:
        pytest.skip(reason)  # a failure under CI=true
    base = net.workdir("hectl-fence-")
    r = Rig(base)
    try:
        r.start()
        yield r
    finally:
        r.close()
        shutil.rmtree(base, ignore_errors=True)
    assert not os.path.exists(f"/run/netns/{r.netns}")


def test_check_and_off_through_the_real_agent(rig: Rig) -> None:
    res = rig.hectl("fence", "check", "--json")
    assert res.returncode == 0, res.stderr
    doc = valid(res.stdout, "fence-check")
    assert [(d["host_id"], d["works"], d["power"]) for d in doc["devices"]] == [(2, True, "on")]
    assert doc["devices"][0]["device"] == f"{rig.bmc.device()} password=***"  # every parameter, secrets masked

    res = rig.hectl("fence", "off", "--host-id", "2")
    assert res.returncode == 2 and "--yes" in res.stderr and rig.host_pids()
    res = rig.hectl("fence", "off", "--host-id", "1", "--yes")
    assert res.returncode == 2 and "cannot fence itself" in res.stderr

    res = rig.hectl("fence", "off", "--host-id", "2", "--yes", "--json")
    assert res.returncode == 0, res.stderr
    doc = valid(res.stdout, "fence-off")
    assert doc["confirmed"] and [s["action"] for s in doc["steps"]] == ["off", "status"]
    assert doc["steps"][1]["exit_code"] == 2  # fence-agents' "off"
    assert rig.host_pids() == [] and rig.bmc.power() is False
    assert "off: killed" in rig.bmc.log()
    audit = [json.loads(line) for line in (rig.dom.state_dir / "audit.log").read_text().splitlines()]
    assert {a["device"] for a in audit} == {f"{rig.bmc.device()} password=***"}
    assert [(a["action"], a["host_id"], a["result"]) for a in audit] == [
        ("fence-off", 2, "started"),
        ("fence-off", 2, "confirmed"),
    ]
    for where in (res.stdout, res.stderr, (rig.dom.state_dir / "audit.log").read_text(), rig.dom.config.read_text()):
        assert rig.bmc.password not in where

    res = rig.hectl("fence", "check")
    assert res.returncode == 0 and " off " in res.stdout


def test_a_host_that_stays_on_is_not_confirmed(rig: Rig) -> None:
    rig.bmc.stay_on(True)
    res = rig.hectl("fence", "off", "--host-id", "2", "--yes", "--json")
    assert res.returncode == 1, res.stderr
    assert "not confirmed off" in res.stderr and "Timed out waiting to power OFF" in res.stderr
    assert rig.host_pids() and rig.bmc.power() is True
    assert json.loads((rig.dom.state_dir / "audit.log").read_text().splitlines()[-1])["result"] == "failed"


def test_a_device_that_does_not_answer_fails_within_the_timeout(rig: Rig) -> None:
    rig.configure("timeout = 3\n")
    rig.bmc.down(True)
    began = time.monotonic()
    res = rig.hectl("fence", "check", "--json")
    assert res.returncode == 1
    doc = json.loads(res.stdout)
    assert not doc["works"] and doc["devices"][0]["power"] == "unknown" and doc["devices"][0]["problem"]
    res = rig.hectl("fence", "off", "--host-id", "2", "--yes")
    assert res.returncode == 7 and "did not finish within 3 s" in res.stderr
    assert time.monotonic() - began < 20  # 4 actions of at most 3 s each, killed, not the agent's own 20 s
    rig.bmc.down(False)
    assert rig.host_pids()
    assert not [p for p in subprocess.run(["pgrep", "-f", "fence_ipmilan"], capture_output=True, text=True).stdout.split()]


def test_unsafe_or_missing_secrets_are_refused(rig: Rig) -> None:
    rig.write_secrets(rig.bmc.secrets(), mode=0o644)
    res = rig.hectl("fence", "check", "--json")
    assert res.returncode == 1 and "lets others read it" in json.loads(res.stdout)["devices"][0]["problem"]
    res = rig.hectl("fence", "off", "--host-id", "2", "--yes")
    assert res.returncode == 3 and "lets others read it" in res.stderr and "chmod 600" in res.stderr
    assert rig.host_pids()
    rig.write_secrets("password=wrong\n")
    res = rig.hectl("fence", "check", "--json")
    assert res.returncode == 1 and not json.loads(res.stdout)["works"]
    assert "wrong" not in res.stdout
    res = rig.hectl("fence", "check", "--host-id", "3")
    assert res.returncode == 3 and "host 3 has no fence device" in res.stderr


@pytest.fixture
def two_daemons(rig: Rig) -> Iterator[tuple[lab_sanlock.Daemon, lab_sanlock.Daemon]]:
    reason = lab_sanlock.missing()
    if reason:
        pytest.skip(reason)  # a failure under CI=true
    shim = lab_sanlock.build_shim(rig.base)
    d1, d2 = lab_sanlock.Daemon(rig.base / "sanlock1", shim), lab_sanlock.Daemon(rig.base / "sanlock2", shim)
    try:
        d1.start()
        d2.start()
        for p in (rig.base, rig.base / "host", rig.dom.root):
            p.chmod(0o755)
        lab_sanlock.initialize_domain_leases(rig.dom.root, d1, 2)
        yield d1, d2
    finally:
        d1.stop()
        d2.stop()


HOLD = """
import sanlock, sys, time
ls, lease, host = sys.argv[1], sys.argv[2], int(sys.argv[3])
sanlock.add_lockspace(b"hectl", host, ls, iotimeout=2)
fd = sanlock.register()
t = time.monotonic()
sanlock.acquire(b"hectl", b"engine", [(lease, 0)], slkfd=fd)
print(f"acquired {time.monotonic() - t:.3f}", flush=True)
time.sleep(100000)
"""


def test_fencing_frees_the_host_id_so_the_engine_lease_is_taken_at_once(
    rig: Rig, two_daemons: tuple[lab_sanlock.Daemon, lab_sanlock.Daemon]
) -> None:
    """Host 2 holds the engine lease; powered off, its lease would be free only after host_dead_seconds (76 s at
    io_timeout 2). Fenced, its host id is freed and host 1 takes the lease at once."""
    d1, d2 = two_daemons
    paths = rig.dom.app().backend().paths()
    # host 2's holder runs inside its namespace; its sanlock daemon is outside: the BMC kills it through its pid file
    rig.bmc.pidfiles = (d2.run_dir / "sanlock.pid",)
    rig.bmc.stop()
    rig.bmc.start()
    argv = [sys.executable, "-c", HOLD, paths.lockspace, paths.engine_lease]
    env2 = dict(os.environ, **d2.env)
    holder = subprocess.Popen(["ip", "netns", "exec", rig.netns, *argv, "2"], env=env2, stdout=subprocess.PIPE, text=True)
    assert holder.stdout is not None and holder.stdout.readline().startswith("acquired")
    taker = subprocess.Popen([*argv, "1"], env=dict(os.environ, **d1.env), stdout=subprocess.PIPE, text=True)
    try:
        time.sleep(8)  # host 1 has joined and is waiting for host 2's lease: host 2 is alive
        assert taker.poll() is None
        d2_pid = d2.pid
        res = rig.hectl("fence", "off", "--host-id", "2", "--yes", "--json", env=d1.env)
        fenced = time.monotonic()
        assert res.returncode == 0, res.stderr
        doc = valid(res.stdout, "fence-off")
        assert doc["host_id_freed"] and doc["free_problem"] == "", doc["free_problem"]
        assert not lab_sanlock.alive(d2_pid) and holder.wait(10) is not None
        assert taker.stdout is not None and taker.stdout.readline().startswith("acquired")
        took = time.monotonic() - fenced
        print(f"engine lease taken {took:.2f} s after hectl fence off returned")
        assert took < 10  # not host_dead_seconds (76 s)
        owners = d1.client("status").stdout
        assert "r hectl:engine" in owners
    finally:
        for p in (taker, holder):
            p.kill()
            p.wait(10)


def metadata(agent: str) -> dict[str, set[str]]:
    """The installed agent's parameters (``-o metadata``) and, for each, the values it offers (its select options)."""
    from xml.etree import ElementTree

    out = subprocess.run([f"/usr/sbin/{agent}", "-o", "metadata"], capture_output=True, text=True, timeout=60).stdout
    params = ElementTree.fromstring(out).iter("parameter")
    return {p.get("name", ""): {o.get("value", "") for o in p.iter("option")} for p in params}


@pytest.mark.parametrize("agent", sorted(families.AGENTS))
def test_the_allowlist_agrees_with_the_installed_agents(agent: str) -> None:
    """Every parameter hectl allows exists in the agent's metadata, every choice among its options: a typo or an
    update of fence-agents is caught here."""
    assert os.path.exists(f"/usr/sbin/{agent}"), "scripts/install.sh installs Debian's fence-agents"
    known = metadata(agent)
    allowed = families.FAMILIES[families.AGENTS[agent]]
    assert allowed <= set(known), sorted(allowed - set(known))
    for key in allowed:
        kind = families.KINDS[key]
        if isinstance(kind, tuple):
            assert set(kind) <= known[key], (key, kind, known[key])


def _interrupted_off(rig: Rig, signals: list[tuple[float, int]]) -> tuple[int, str, list[dict[str, object]]]:
    """``hectl fence off`` with a device that waits 4 s after its off; ``signals``: (seconds after start, signal)."""
    text = rig.dom.config.read_text().replace("power_wait=0", "power_wait=4")
    rig.dom.config.write_text(text)
    proc = subprocess.Popen(
        [sys.executable, "-m", "hectl", "fence", "off", "--host-id", "2", "--yes"],
        env=rig.dom.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    began = time.monotonic()
    for at, signum in signals:
        time.sleep(max(0.0, began + at - time.monotonic()))
        proc.send_signal(signum)
    _, err = proc.communicate(timeout=60)
    audit = [json.loads(line) for line in (rig.dom.state_dir / "audit.log").read_text().splitlines()]
    return proc.returncode, err, audit


@pytest.mark.parametrize(("signum", "code"), [(2, 130), (15, 143)])
def test_an_interrupted_fence_off_waits_for_the_device_and_records_what_it_did(rig: Rig, signum: int, code: int) -> None:
    rc, err, audit = _interrupted_off(rig, [(1.5, signum)])
    assert rc == code, err
    assert "waiting up to" in err and "recorded as 'completed'" in err and "Traceback" not in err
    assert rig.host_pids() == [] and rig.bmc.power() is False  # the off it waited for landed ...
    assert [(a["result"], a.get("outcome")) for a in audit] == [("started", None), ("interrupted", "completed")]
    assert "exited 0" in str(audit[-1]["reason"])  # ... and is recorded as done
    assert not subprocess.run(["pgrep", "-f", "fence_ipmilan"], capture_output=True, text=True).stdout.split()


def test_a_second_interruption_kills_the_device_and_records_an_unknown_outcome(rig: Rig) -> None:
    rc, err, audit = _interrupted_off(rig, [(1.5, 2), (2.0, 2)])
    assert rc == 130 and "recorded as 'unknown'" in err and "the host may be off" in err, err
    assert [(a["result"], a.get("outcome")) for a in audit] == [("started", None), ("interrupted", "unknown")]
    assert not subprocess.run(["pgrep", "-f", "fence_ipmilan"], capture_output=True, text=True).stdout.split()
    res = rig.hectl("fence", "check", "--json")  # what the admin is told to do: the device knows
    assert json.loads(res.stdout)["devices"][0]["power"] == "off"
