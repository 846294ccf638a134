"""vm-start, vm-shutdown, vm-poweroff, add-console-password, console, vm-config against a fake hypervisor.

The fakes stand at the edge (libvirt, sanlock); storage, records, config and
the CLI are real. Every error path and exit code of these commands is here;
tests/virt/ runs the same commands against real libvirtd + QEMU + sanlock.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from hectl.cli import root as cli
from hectl.clock import VirtualClock
from hectl.errors import ExitCode, HypervisorError, LockHeld, WaitTimeout
from hectl.lease import LEASE_FREE
from hectl.vm import spec as vmspec
from hectl.vm.hypervisor import VMInfo
from tests.conftest import Domain
from tests.fakevirt import FakeHypervisor

SPEC = {"uuid": "8c8c2f0e-1d7e-4a39-9a3b-2a4f5e6d7c8b", "name": "engine", "memory_mib": "256", "vcpus": "1",
        "kernel": "vmlinuz", "initrd": "initrd.img", "host_port": "28080"}  # fmt: skip


class FakeLeases:
    def __init__(self, state: str = "held", holder: int = LEASE_FREE, hosts: dict[int, str] | None = None) -> None:
        self._state, self.holder, self._hosts = state, holder, hosts or {}

    def state(self) -> str:
        return self._state

    def engine_holder(self) -> int:
        return self.holder

    def hosts(self) -> dict[int, str]:
        return self._hosts


@pytest.fixture
def engine(domain: Domain) -> Domain:
    vmspec.update(domain.app().backend(), SPEC, 5)
    return domain


def run(domain: Domain, args: list[str], capsys: pytest.CaptureFixture[str], hyper: FakeHypervisor,
        leases: FakeLeases | None = None) -> tuple[int, str, str]:  # fmt: skip
    app = domain.app(clock=VirtualClock(wall=time.time()))
    app._hypervisor = hyper  # type: ignore[assignment]
    app._leases = leases or FakeLeases()  # type: ignore[assignment]
    code = cli.main(args, app)
    out = capsys.readouterr()
    return code, out.out, out.err


def test_vm_start_starts_and_reports(engine: Domain, capsys: pytest.CaptureFixture[str]) -> None:
    hyper = FakeHypervisor()
    code, out, err = run(engine, ["vm-start", "--json"], capsys, hyper)
    assert code == 0, err
    data = json.loads(out)
    assert data["result"] == "started" and data["state"] == "up" and data["vm"] == "engine"
    assert data["accel"] in ("kvm", "tcg") and data["accel_reason"]
    assert hyper.calls == [("start", (False, 120.0))]


@pytest.mark.parametrize("planted", ["images/vmlinuz", "ha/engine.lease"])
def test_vm_start_refuses_a_link_planted_for_libvirt_or_sanlock(
    engine: Domain, capsys: pytest.CaptureFixture[str], tmp_path: Path, planted: str
) -> None:
    """libvirt, QEMU and sanlock get domain files by path: a link there would hand them any file of the host."""
    victim = tmp_path / "victim"
    victim.write_bytes(b"secret")
    (engine.root / planted).symlink_to(victim)
    hyper = FakeHypervisor()
    code, _, err = run(engine, ["vm-start"], capsys, hyper)
    assert code == ExitCode.STORAGE and f"{engine.root / planted} is a symbolic link" in err, err
    assert hyper.calls == []


def test_vm_start_is_idempotent(engine: Domain, capsys: pytest.CaptureFixture[str]) -> None:
    hyper = FakeHypervisor("up")
    code, out, _ = run(engine, ["vm-start"], capsys, hyper)
    assert code == 0 and "was already running" in out and hyper.calls == []


def test_vm_start_resumes_a_vm_paused_here(engine: Domain, capsys: pytest.CaptureFixture[str]) -> None:
    hyper = FakeHypervisor("paused")
    code, out, _ = run(engine, ["vm-start", "--json"], capsys, hyper)
    assert code == 0 and hyper.calls == [("resume", "engine")]
    assert json.loads(out)["result"] == "resumed" and json.loads(out)["state"] == "up"
    code, out, _ = run(engine, ["vm-start", "--paused", "--json"], capsys, FakeHypervisor("paused"))
    assert code == 0 and json.loads(out)["result"] == "already-running"


def test_vm_start_paused_and_timeout_flag(engine: Domain, capsys: pytest.CaptureFixture[str]) -> None:
    hyper = FakeHypervisor()
    code, out, _ = run(engine, ["vm-start", "--paused", "--timeout", "30", "--json"], capsys, hyper)
    assert code == 0 and json.loads(out)["state"] == "paused"
    assert hyper.calls == [("start", (True, 30.0))]


def test_vm_start_refuses_when_a_live_record_says_it_runs_elsewhere(engine: Domain, capsys: pytest.CaptureFixture[str]) -> None:
    engine.publish(2, vm="up", hostname="h2.example")
    hyper = FakeHypervisor()
    code, _, err = run(engine, ["vm-start"], capsys, hyper)
    assert code == 5 and "host 2 (h2.example)" in err and hyper.calls == []


def test_the_refusal_shows_the_hostname_from_the_record_escaped(engine: Domain, capsys: pytest.CaptureFixture[str]) -> None:
    engine.publish(2, vm="up", hostname="h2\x1b]0;pwned\x07\n\u202e")
    code, _, err = run(engine, ["vm-start"], capsys, FakeHypervisor())
    assert code == 5 and "runs on host 2 (h2\\x1b]0;pwned\\x07\\n\\u202e) per its record" in err
    assert all(c.isprintable() for c in err.replace("\n", ""))


def test_a_stale_record_of_a_running_engine_does_not_block(engine: Domain, capsys: pytest.CaptureFixture[str]) -> None:
    engine.publish(2, vm="up", age=3600)
    code, _, err = run(engine, ["vm-start"], capsys, FakeHypervisor())
    assert code == 0, err


def test_a_record_stamped_in_the_future_does_not_block(engine: Domain, capsys: pytest.CaptureFixture[str]) -> None:
    engine.publish(2, vm="up", wall_time=time.time() + 365 * 86400)  # a dead host with a skewed clock: not live
    code, _, err = run(engine, ["vm-start"], capsys, FakeHypervisor())
    assert code == 0, err


def test_vm_start_refuses_when_a_live_host_holds_the_lease(engine: Domain, capsys: pytest.CaptureFixture[str]) -> None:
    engine.publish(3, vm="down", hostname="h3.example", age=3600)
    hyper = FakeHypervisor()
    code, _, err = run(engine, ["vm-start"], capsys, hyper, FakeLeases(holder=3, hosts={3: "live"}))
    assert code == 5 and "host 3 (h3.example)" in err and "holds the engine lease" in err and hyper.calls == []


def test_vm_start_says_what_it_waits_for_when_the_holder_is_failing(engine: Domain, capsys: pytest.CaptureFixture[str]) -> None:
    hyper = FakeHypervisor()
    code, _, err = run(engine, ["vm-start"], capsys, hyper, FakeLeases(holder=3, hosts={3: "fail"}))
    assert code == 0
    assert "host 3 (no record) still holds the engine lease (sanlock sees it fail)" in err
    assert "about 140 s" in err  # 8 x io_timeout 10 + 60


def test_vm_start_lease_busy_at_acquire_is_exit_5(engine: Domain, capsys: pytest.CaptureFixture[str]) -> None:
    hyper = FakeHypervisor()
    hyper.start_error = LockHeld("cannot start VM engine: resource busy: Failed to acquire lock")
    code, _, err = run(engine, ["vm-start"], capsys, hyper)
    assert code == 5 and "Failed to acquire lock" in err


def test_vm_start_timeout_is_exit_7(engine: Domain, capsys: pytest.CaptureFixture[str]) -> None:
    hyper = FakeHypervisor()
    hyper.start_error = WaitTimeout("the engine VM did not start within 5 s")
    code, _, err = run(engine, ["vm-start", "--timeout", "5"], capsys, hyper)
    assert code == 7 and "did not start within 5 s" in err


def test_vm_start_needs_the_lockspace_joined(engine: Domain, capsys: pytest.CaptureFixture[str]) -> None:
    hyper = FakeHypervisor()
    code, _, err = run(engine, ["vm-start"], capsys, hyper, FakeLeases(state="none"))
    assert code == 1 and "has not joined the sanlock lockspace" in err and "hectl ha run" in err and hyper.calls == []


def test_vm_start_without_a_spec_is_exit_3(domain: Domain, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(domain, ["vm-start"], capsys, FakeHypervisor())
    assert code == 3 and "not defined" in err and "vm-config set" in err


def test_libvirt_unreachable_is_exit_1_with_a_hint(engine: Domain, capsys: pytest.CaptureFixture[str]) -> None:
    class Down(FakeHypervisor):
        def info(self, name: str) -> VMInfo:
            raise HypervisorError("cannot connect to libvirt at test:///fake: refused", hint="is libvirtd running?")

    code, _, err = run(engine, ["vm-start"], capsys, Down())
    assert code == 1 and err.startswith("hectl: error: cannot connect to libvirt") and "Traceback" not in err


def test_vm_start_wait_healthy_needs_wait(engine: Domain, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(engine, ["vm-start", "--healthy"], capsys, FakeHypervisor())
    assert code == 2 and "--healthy needs --wait" in err


def test_vm_shutdown_graceful_and_waits(engine: Domain, capsys: pytest.CaptureFixture[str]) -> None:
    hyper = FakeHypervisor("up")
    code, out, err = run(engine, ["vm-shutdown", "--wait", "--json"], capsys, hyper)
    assert code == 0 and json.loads(out)["result"] == "shut-down"
    assert hyper.calls == [("shutdown", "engine")]
    assert "global maintenance is not set" in err


def test_vm_shutdown_wait_timeout_is_exit_7(engine: Domain, capsys: pytest.CaptureFixture[str]) -> None:
    hyper = FakeHypervisor("up")
    hyper.guest_obeys_shutdown = False
    code, _, err = run(engine, ["vm-shutdown", "--wait", "--timeout", "3"], capsys, hyper)
    assert code == 7 and "still running 3 s after" in err and "--force-after" in err
    assert hyper.state == "up"


def test_vm_shutdown_force_after_escalates(engine: Domain, capsys: pytest.CaptureFixture[str]) -> None:
    hyper = FakeHypervisor("up")
    hyper.guest_obeys_shutdown = False
    code, out, _ = run(engine, ["vm-shutdown", "--force-after", "2", "--json"], capsys, hyper)
    assert code == 0 and json.loads(out)["result"] == "forced"
    assert [c[0] for c in hyper.calls] == ["shutdown", "poweroff"]


@pytest.mark.parametrize("command", [["vm-shutdown"], ["vm-poweroff"], ["add-console-password", "--password-stdin"], ["console"]])
def test_commands_refuse_politely_when_the_vm_is_not_here(
    command: list[str], engine: Domain, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import io

    monkeypatch.setattr("sys.stdin", io.StringIO("secret\n"))
    engine.publish(2, vm="up", hostname="h2.example")
    hyper = FakeHypervisor("down")
    code, out, err = run(engine, command, capsys, hyper)
    assert code == 6 and out == ""
    assert "not running on this host" in err and "runs on host 2 (h2.example)" in err
    assert hyper.calls == []


def test_vm_poweroff(engine: Domain, capsys: pytest.CaptureFixture[str]) -> None:
    hyper = FakeHypervisor("up")
    code, out, _ = run(engine, ["vm-poweroff"], capsys, hyper)
    assert code == 0 and "powered off" in out and hyper.calls == [("poweroff", "engine")]


def test_quiet_mode_prints_nothing_and_no_warning(engine: Domain, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(engine, ["-q", "vm-poweroff"], capsys, FakeHypervisor("up"))
    assert (code, out, err) == (0, "", "")


def test_console_password_from_stdin(engine: Domain, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    import io

    monkeypatch.setattr("sys.stdin", io.StringIO("s3cret-1\nignored\n"))
    hyper = FakeHypervisor("up")
    code, out, err = run(engine, ["add-console-password", "--password-stdin", "--expire", "90s", "--json"], capsys, hyper)
    assert code == 0, err
    data = json.loads(out)
    assert hyper.password == "s3cret-1"
    assert data["address"] == "vnc://127.0.0.1:5900" and data["expire_s"] == 90 and data["truncated"] is False
    assert "s3cret-1" not in out + err


def test_console_password_from_file_warns_on_loose_mode_and_truncation(
    engine: Domain, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    secret = tmp_path / "pw"
    secret.write_text("a-much-longer-password\n")
    os.chmod(secret, 0o644)
    hyper = FakeHypervisor("up")
    code, out, err = run(engine, ["add-console-password", "--password-file", str(secret)], capsys, hyper)
    assert code == 0 and hyper.password == "a-much-l"  # VNC: the 8 characters a client sends
    assert "can be read by other users" in err and "only the first 8 characters" in err
    assert "a-much-longer-password" not in out + err


def test_console_password_from_environment(engine: Domain, capsys: pytest.CaptureFixture[str]) -> None:
    hyper = FakeHypervisor("up")
    app = engine.app(clock=VirtualClock(wall=time.time()))
    app.environ = dict(app.environ, HECTL_CONSOLE_PASSWORD="envpass")
    app._hypervisor = hyper  # type: ignore[assignment]
    assert cli.main(["add-console-password"], app) == 0
    assert hyper.password == "envpass"


def test_console_password_never_from_argv_and_not_without_a_source(
    engine: Domain, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import io

    monkeypatch.setattr("sys.stdin", io.StringIO(""))
    hyper = FakeHypervisor("up")
    code, _, err = run(engine, ["add-console-password", "--password", "x"], capsys, hyper)
    assert code == 2
    code, _, err = run(engine, ["add-console-password"], capsys, hyper)
    assert code == 2 and "stdin is not a terminal" in err
    code, _, err = run(engine, ["add-console-password", "--password-stdin", "--password-file", "/x"], capsys, hyper)
    assert code == 2 and "one way" in err
    code, _, err = run(engine, ["add-console-password", "--password-file", "/nonexistent/pw"], capsys, hyper)
    assert code == 1 and "cannot read the password file" in err
    assert hyper.calls == []


def test_vm_config_set_and_show(domain: Domain, capsys: pytest.CaptureFixture[str]) -> None:
    pairs = [f"{k}={v}" for k, v in SPEC.items()]
    code, _, err = run(domain, ["vm-config", "set", *pairs], capsys, FakeHypervisor())
    assert code == 0, err
    code, out, _ = run(domain, ["vm-config", "show", "--json"], capsys, FakeHypervisor())
    data = json.loads(out)
    assert data["spec"]["memory_mib"] == 256 and data["spec"]["version"] == 1 and data["problems"] == []
    code, _, err = run(domain, ["vm-config", "set", "memory_mib=12"], capsys, FakeHypervisor())
    assert code == 2 and "memory_mib" in err
    code, _, err = run(domain, ["vm-config", "set", "network=bridge"], capsys, FakeHypervisor())
    assert code == 3 and "needs a bridge" in err


def test_unreachable_libvirtd_through_the_real_binding(engine: Domain, tmp_path: Path) -> None:
    pytest.importorskip("libvirt")
    from tests.conftest import run_hectl

    engine.config.write_text(engine.config.read_text() + f"[vm]\nuri = qemu+unix:///system?socket={tmp_path}/none.sock\n")
    res = run_hectl(["vm-start"], env=engine.env)
    assert res.returncode == 1
    assert res.stderr.startswith(f"hectl: error: cannot connect to libvirt at qemu+unix:///system?socket={tmp_path}/none.sock")
    assert "hint: is libvirtd running?" in res.stderr
    assert "libvirt:" not in res.stderr and "Traceback" not in res.stderr  # libvirt's own error printer is silenced


def test_qemu_pid_is_found_by_uuid_and_rechecked_before_a_scan() -> None:
    import subprocess
    import sys

    from hectl.vm.libvirt import qemu_pid

    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", "-uuid", "1234-test-uuid"])
    try:
        deadline = time.monotonic() + 10  # until the child has exec'd (before that, /proc shows the parent's cmdline)
        while b"1234-test-uuid" not in Path(f"/proc/{proc.pid}/cmdline").read_bytes() and time.monotonic() < deadline:
            time.sleep(0.01)
        found = qemu_pid("1234-test-uuid")
        assert found == proc.pid
        assert qemu_pid("1234-test-uuid", known=found) == proc.pid
        assert qemu_pid("1234-test-uuid", known=os.getpid()) == proc.pid  # a stale guess: scanned again
        assert qemu_pid("other-uuid", known=proc.pid) == 0
    finally:
        proc.kill()
        proc.wait()
    assert qemu_pid("1234-test-uuid", known=proc.pid) == 0


# --- progress of long waits ----------------------------------------------------------------------


class SlowStart(FakeHypervisor):
    """A VM that stays 'starting' after its start."""

    def start(self, xml: str, *, paused: bool, timeout: float) -> None:
        super().start(xml, paused=paused, timeout=timeout)
        self.state = "starting"


def test_waits_print_a_line_every_5_s_off_a_terminal(engine: Domain, capsys: pytest.CaptureFixture[str]) -> None:
    hyper = FakeHypervisor("up")
    hyper.guest_obeys_shutdown = False
    code, out, err = run(engine, ["vm-shutdown", "--wait", "--timeout", "12"], capsys, hyper)  # virtual time: 0.5 s polls
    lines = [line for line in err.splitlines() if "waiting for" in line]
    assert code == 7 and out == ""
    assert lines == [f"hectl: waiting for the guest to power off: {s} s of 12 s" for s in (0, 5, 10)]
    code, _, err = run(engine, ["vm-start", "--wait", "11"], capsys, SlowStart())
    lines = [line for line in err.splitlines() if "waiting for" in line]
    assert code == 7 and lines == [f"hectl: waiting for the engine VM to run (now starting): {s} s of 11 s" for s in (0, 5, 10)]


def test_quiet_waits_print_no_progress(engine: Domain, capsys: pytest.CaptureFixture[str]) -> None:
    hyper = FakeHypervisor("up")
    hyper.guest_obeys_shutdown = False
    code, _, err = run(engine, ["-q", "vm-shutdown", "--force-after", "12"], capsys, hyper)
    assert code == 0 and "waiting" not in err


def test_waits_update_one_line_on_a_terminal(
    engine: Domain, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import pty

    master, slave = pty.openpty()
    with os.fdopen(slave, "w", encoding="utf-8") as tty:
        monkeypatch.setattr("sys.stderr", tty)
        hyper = FakeHypervisor("up")
        hyper.guest_obeys_shutdown = False
        code, out, _ = run(engine, ["vm-shutdown", "--force-after", "3", "--json"], capsys, hyper)
    chunks = []  # the slave is closed: read until the pty says so (EIO), however long the tty layer takes to pass it on
    while True:
        try:
            data = os.read(master, 65536)
        except OSError:
            break
        if not data:
            break
        chunks.append(data)
    screen = b"".join(chunks).decode()
    os.close(master)
    assert code == 0 and json.loads(out)["result"] == "forced"  # stdout stays the result
    updates = screen.split("\r\x1b[K")
    assert [u for u in updates if u.startswith("hectl: waiting")] == [
        f"hectl: waiting for the guest to power off (then power-off): {s:.0f} s of 3 s" for s in (0, 0.5, 1, 1.5, 2, 2.5)
    ]
    assert updates[-1] == "" and screen.endswith("\r\x1b[K")  # the status line is wiped at the end


def test_wait_healthy_says_what_the_last_probe_saw(engine: Domain, capsys: pytest.CaptureFixture[str]) -> None:
    engine.config.write_text(engine.config.read_text() + "[engine]\nhealth_url = http://127.0.0.1:1/health\n")
    code, _, err = run(engine, ["vm-start", "--wait", "6", "--healthy"], capsys, FakeHypervisor())
    lines = [line for line in err.splitlines() if "waiting for" in line]
    assert code == 7 and lines == [
        f"hectl: waiting for the engine to be healthy (now connection refused): {s} s of 6 s" for s in (0, 5)
    ]


def test_a_qemu_image_lock_is_a_held_lock_not_a_failure() -> None:
    """QEMU refusing the engine's disk because another QEMU has it open means another host runs or starts the
    engine (or the VM here is still being torn down): exit 5 and, for the agent, a lost start race, not a
    failure of this host that would count towards its retry wait."""
    import libvirt

    from hectl.vm.libvirt import _error

    def error(message: str) -> libvirt.libvirtError:
        """libvirt's error as its bindings raise it (its details set, not taken from libvirt's last error)."""
        exc = libvirt.libvirtError(message)
        exc.err = (libvirt.VIR_ERR_INTERNAL_ERROR, libvirt.VIR_FROM_QEMU, message, libvirt.VIR_ERR_ERROR, "", "", "", 0, 0)
        return exc

    message = ('internal error: qemu unexpectedly closed the monitor: -blockdev {"driver":"qcow2"}: '
               'Failed to get "write" lock\\nIs another process using the image [/d/images/engine.qcow2]?')  # fmt: skip
    err = _error(error(message), "cannot start VM engine")
    assert isinstance(err, LockHeld) and err.exit_code == ExitCode.LOCKED
    assert "in use by another process" in err.message
    other = _error(error("internal error: qemu unexpectedly closed the monitor: no such file"), "start")
    assert isinstance(other, HypervisorError) and not isinstance(other, LockHeld)
