"""The VM commands against real libvirtd + QEMU (TCG) + sanlock, with the test appliance as the engine."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.test_json_schemas import valid
from tests.virt.vmlab import VMLab, running, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.slow]
TIMINGS: dict[str, float] = {}


@pytest.fixture(scope="module")
def lab() -> Iterator[VMLab]:
    with running() as lab:
        TIMINGS.update(lab.timings)
        yield lab
    print(f"\nVM lifecycle timings: {json.dumps({k: round(v, 2) for k, v in TIMINGS.items()})}")


def all_cmdlines() -> str:
    text = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            text.append(Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace"))
        except OSError:
            continue
    return "\n".join(text)


def test_start_under_lease_liveliness_console_password_graceful_shutdown(lab: VMLab) -> None:
    from tests.vnc import vnc_auth

    t0 = time.monotonic()
    res = lab.hectl("vm-start", "--wait", "120", "--healthy", "--json")
    assert res.returncode == 0, res.stderr
    TIMINGS["vm_start_to_healthy_s"] = time.monotonic() - t0
    started = valid(res.stdout, "vm-action")  # also against docs/schemas/vm-action.schema.json
    assert (started["result"], started["state"], started["healthy"], started["accel"]) == ("started", "up", True, "tcg")

    # The engine lease is held by QEMU, as sanlock itself reports it.
    line = lab.lease_line()
    assert line.startswith(f"r hectl:engine:{lab.paths.engine_lease}:0:") and " p " in line
    qemu = int(line.rsplit(" p ", 1)[1])
    assert "-uuid" in Path(f"/proc/{qemu}/cmdline").read_bytes().decode(errors="replace").replace("\0", " ")

    # Host 2 cannot take it while the VM runs: sanlock says the owner is alive.
    other = lab.daemons[1].client("command", "-r", f"hectl:engine:{lab.paths.engine_lease}:0", "-c", "/bin/true")
    assert "-243" in other.stdout + other.stderr

    res = lab.hectl("check-liveliness")
    assert res.returncode == 0, res.stdout + res.stderr
    res = lab.hectl("vm-start", "--json")  # idempotent
    assert res.returncode == 0 and json.loads(res.stdout)["result"] == "already-running"

    # A console password with a short expiry: a real VNC handshake accepts it, then refuses it.
    password = "Pw-7f3k9"
    res = lab.hectl("add-console-password", "--password-stdin", "--expire", "6s", "--json", input=password + "\n")
    assert res.returncode == 0, res.stderr
    info = valid(res.stdout, "console-password")
    host, port = info["address"].removeprefix("vnc://").rsplit(":", 1)
    assert vnc_auth(host, int(port), password) == (True, "OK")
    assert vnc_auth(host, int(port), "wrong-pw")[0] is False
    assert password not in res.stdout + res.stderr
    assert password not in all_cmdlines()
    assert password not in lab.libvirtd.log_file.read_text(errors="replace")
    wait_until(lambda: not vnc_auth(host, int(port), password)[0], 20, "password expired")

    # Graceful shutdown: the guest powers itself off (ACPI), it is not destroyed.
    t0 = time.monotonic()
    res = lab.hectl("vm-shutdown", "--wait", "--timeout", "60", "--json")
    assert res.returncode == 0, res.stderr
    TIMINGS["vm_shutdown_wait_s"] = time.monotonic() - t0
    assert valid(res.stdout, "vm-action")["result"] == "shut-down"
    assert "ACPI power button pressed" in lab.console_log() and "reboot: Power down" in lab.console_log()
    assert lab.libvirtd.domains() == [] and lab.lease_line() == ""


def test_poweroff_destroys_and_releases_the_lease(lab: VMLab) -> None:
    res = lab.hectl("vm-start", "--paused", "--json")
    assert res.returncode == 0 and json.loads(res.stdout)["state"] == "paused", res.stderr
    assert lab.lease_line() == ""  # libvirt takes the lease when the CPUs first run, not before
    res = lab.hectl("vm-start", "--wait", "60", "--json")
    assert res.returncode == 0 and json.loads(res.stdout)["result"] == "resumed", res.stderr
    assert json.loads(res.stdout)["state"] == "up" and lab.lease_line()
    assert lab.lease_line()
    t0 = time.monotonic()
    res = lab.hectl("vm-poweroff", "--json")
    assert res.returncode == 0, res.stderr
    TIMINGS["vm_poweroff_s"] = time.monotonic() - t0
    assert valid(res.stdout, "vm-action")["result"] == "powered-off"
    assert lab.libvirtd.domains() == [] and lab.lease_line() == ""
    res = lab.hectl("vm-poweroff")
    assert res.returncode == 6 and "not running on this host" in res.stderr


def test_serial_console_is_interactive(lab: VMLab) -> None:
    import pty

    res = lab.hectl("vm-start", "--wait", "60", "--healthy")
    assert res.returncode == 0, res.stderr
    pid, fd = pty.fork()
    if pid == 0:  # child: hectl console on a terminal
        os.execve(str(Path(__import__("sys").executable).with_name("hectl")), ["hectl", "console"], lab.env)
    seen = b""
    try:
        deadline = time.monotonic() + 60
        while b"hi-42" not in seen and time.monotonic() < deadline:
            os.write(fd, b"\recho hi-$((6*7))\r")
            end = time.monotonic() + 2
            while time.monotonic() < end:
                import select

                if select.select([fd], [], [], 0.2)[0]:
                    try:
                        seen += os.read(fd, 4096)
                    except OSError:
                        break
        assert b"hi-42" in seen, seen[-500:]
    finally:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        os.close(fd)
        lab.hectl("vm-poweroff")


def test_start_refused_while_another_host_holds_the_lease_then_waits_for_a_failed_holder(lab: VMLab) -> None:
    resource = f"hectl:engine:{lab.paths.engine_lease}:0"
    holder = subprocess.Popen(
        ["sanlock", "client", "command", "-r", resource, "-c", "/bin/sleep", "600"],
        env=dict(os.environ, **lab.daemons[1].env),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    lab.procs.append(holder)
    wait_until(lambda: f"r {resource}" in lab.daemons[1].client("status").stdout, 30, "host 2 holds the lease")
    res = lab.hectl("vm-start")
    assert res.returncode == 5, res.stderr
    assert "host 2" in res.stderr and "holds the engine lease" in res.stderr
    assert lab.libvirtd.domains() == []

    # Host 2 loses power while holding it: sanlock frees the lease only at host_dead_seconds (76 s here).
    holder.kill()
    lab.daemons[1].kill()
    # Until sanlock on host 1 sees host 2 fail (about 3 x io_timeout), host 2 counts as live: exit 5 still.
    _, res = wait_until(lambda: (r := lab.hectl("vm-start", "--timeout", "8")).returncode != 5 and r, 60, "holder failing")
    assert res.returncode == 7, res.stdout + res.stderr
    assert "still holds the engine lease" in res.stderr and "waiting for the lease to expire" in res.stderr
    assert "nothing is left running" in res.stderr
    assert lab.libvirtd.domains() == []  # no half-started domain left behind
