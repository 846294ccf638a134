"""A real ``hectl ha run`` as systemd runs it: sd_notify messages on a real datagram socket, journald priorities.

The test plays the service manager: it binds the AF_UNIX datagram socket named
in ``$NOTIFY_SOCKET``, asks for a watchdog with ``$WATCHDOG_USEC``, names
the agent's stderr file in ``$JOURNAL_STREAM``, and sets the unit's umask. No sanlock daemon answers
(``SANLOCK_RUN_DIR`` is empty): the agent runs its loop all the same. A loop
stuck on its state directory (a stalled FUSE mount) stops pinging the watchdog.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import stat
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import HECTL, Domain, make_domain, write_config

from hectl.ha import sdnotify
from lab import stallfs

pytestmark = pytest.mark.integration

WATCHDOG_S = 1.0  # pings every 0.5 s while sleeping
WAIT = 60.0  # seconds for any expected message (a loaded machine)


class Manager:
    """The service manager's end of the notification socket."""

    def __init__(self, path: Path) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.path = path

    def receive(self, timeout: float) -> dict[str, str] | None:
        """The next message, or None when none came within ``timeout`` seconds."""
        self.sock.settimeout(timeout)
        try:
            data = self.sock.recv(4096)
        except TimeoutError:
            return None
        return dict(line.split("=", 1) for line in data.decode().splitlines())

    def wait_for(self, key: str, alone: bool = False) -> dict[str, str]:
        """The next message with ``key`` (``alone``: and nothing else)."""
        deadline = time.monotonic() + WAIT
        while (left := deadline - time.monotonic()) > 0:
            msg = self.receive(left)
            if msg is not None and key in msg and (len(msg) == 1 or not alone):
                return msg
        pytest.fail(f"no {key}= message within {WAIT} s")

    def drain(self) -> list[dict[str, str]]:
        msgs = []
        while (msg := self.receive(0.01)) is not None:
            msgs.append(msg)
        return msgs


def start_agent(dom: Domain, tmp_path: Path, manager: Manager, journal: bool) -> tuple[subprocess.Popen[str], Path]:
    log = tmp_path / "agent.log"
    err = open(log, "w")  # noqa: SIM115 - the child holds it
    st = os.fstat(err.fileno())
    env = dict(
        dom.env,
        NOTIFY_SOCKET=str(manager.path),
        WATCHDOG_USEC=str(int(WATCHDOG_S * 1e6)),
        SANLOCK_RUN_DIR=str(tmp_path / "no-sanlock"),
        HECTL_LIBVIRT_URI="test:///default",
    )
    if journal:
        env["JOURNAL_STREAM"] = f"{st.st_dev}:{st.st_ino}"
    proc = subprocess.Popen([HECTL, "ha", "run"], env=env, stdout=err, stderr=err, text=True, umask=0o077)  # the unit's UMask
    err.close()
    return proc, log


@pytest.fixture
def manager(tmp_path: Path) -> Iterator[Manager]:
    m = Manager(tmp_path / "notify")
    yield m
    m.sock.close()


def stop_agent(proc: subprocess.Popen[str], manager: Manager) -> None:
    proc.send_signal(signal.SIGTERM)
    assert manager.wait_for("STOPPING") == {"STOPPING": "1", "STATUS": "stopping"}
    assert proc.wait(WAIT) == 0


def test_a_second_agent_for_the_same_host_is_refused_until_the_first_ends(tmp_path: Path, manager: Manager) -> None:
    from hectl import localstate

    dom = make_domain(tmp_path / "host")
    proc, _ = start_agent(dom, tmp_path, manager, journal=False)
    try:
        manager.wait_for("READY")
        assert localstate.agent_running(str(dom.state_dir))
        env = dict(dom.env, SANLOCK_RUN_DIR=str(tmp_path / "no-sanlock"), HECTL_LIBVIRT_URI="test:///default")
        second = subprocess.run([HECTL, "ha", "run"], env=env, capture_output=True, text=True, timeout=60)
        assert second.returncode == 5 and "an HA agent already runs" in second.stderr, second.stderr
        stop_agent(proc, manager)
        assert not localstate.agent_running(str(dom.state_dir))  # released when the agent ends
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


@pytest.mark.parametrize("journal", [True, False])
def test_ready_status_watchdog_stopping_and_log_priorities(tmp_path: Path, manager: Manager, journal: bool) -> None:
    dom = make_domain(tmp_path / "host")
    with open(dom.config, "a") as f:
        f.write("[ha]\nloop = 5\n")
    proc, log = start_agent(dom, tmp_path, manager, journal)
    try:
        ready = manager.wait_for("READY")
        assert ready["READY"] == "1" and ready["WATCHDOG"] == "1"
        assert re.fullmatch(r"\w+, score \d+, sanlock host id none", ready["STATUS"]), ready
        view = dom.state_dir / "agent-view.json"  # ready: vm-status sees the agent, also as another user
        assert (stat.S_IMODE(dom.state_dir.stat().st_mode), stat.S_IMODE(view.stat().st_mode)) == (0o755, 0o644)
        assert manager.wait_for("WATCHDOG", alone=True) == {"WATCHDOG": "1"}  # pings while sleeping, not only per cycle
        stop_agent(proc, manager)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    lines = log.read_text().splitlines()
    started = next(line for line in lines if "started; joining sanlock lockspace" in line)
    warning = next(line for line in lines if "sanlock:" in line)  # no sanlock daemon: a warning each minute
    if journal:
        assert started.startswith("<6>hectl.ha: agent of host 1") and warning.startswith("<4>hectl.ha: ")
        assert all(re.match(r"<[0-7]>", line) for line in lines), lines
    else:
        assert started.startswith("INFO hectl.ha: agent of host 1") and warning.startswith("WARNING hectl.ha: ")


def test_a_loop_stuck_on_its_state_directory_stops_pinging_the_watchdog(tmp_path: Path, manager: Manager) -> None:
    reason = stallfs.missing_requirements()
    if reason:
        pytest.skip(f"FUSE not usable here: {reason}")
    with stallfs.FuseMount(tmp_path / "backing", tmp_path / "mnt", tmp_path / "control") as mount:
        base = tmp_path / "host"
        dom = make_domain(base)
        write_config(dom.config, dom.root, mount.mountpoint / "state", extra="[ha]\nloop = 1\n")
        proc, _ = start_agent(dom, tmp_path, manager, journal=False)
        try:
            manager.wait_for("READY")
            mount.stall()
            deadline = time.monotonic() + WAIT
            while mount.blocked_count() == 0:  # the loop reads and writes its state directory every cycle
                assert time.monotonic() < deadline, "the agent never touched its stalled state directory"
                time.sleep(0.1)
            manager.drain()  # pings sent before the loop got stuck
            assert manager.receive(4 * WATCHDOG_S) is None  # stuck: silent (systemd would restart it now)
            mount.release()
            assert manager.wait_for("WATCHDOG")["WATCHDOG"] == "1"  # unstuck: pinging again
            stop_agent(proc, manager)
        finally:
            mount.release()
            if proc.poll() is None:
                proc.kill()
                proc.wait()


def test_notifier_addresses_and_watchdog_owner(tmp_path: Path) -> None:
    name = f"hectl-test-{os.getpid()}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind("\0" + name)
        notifier = sdnotify.Notifier({"NOTIFY_SOCKET": "@" + name, "WATCHDOG_USEC": "30000000"})
        notifier.send(STATUS="two\nlines \x1b]0;title\x07", WATCHDOG="1")
        assert sock.recv(100) == b"STATUS=two\\nlines \\x1b]0;title\\x07\nWATCHDOG=1\n"  # one line per field, escaped
        assert notifier.watchdog == 30.0
        notifier.close()
    assert sdnotify.Notifier({"NOTIFY_SOCKET": "@x", "WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "1"}, pid=2).watchdog is None
    assert sdnotify.Notifier({"NOTIFY_SOCKET": "@x", "WATCHDOG_USEC": "5", "WATCHDOG_PID": "2"}, pid=2).watchdog == 5e-6
    assert sdnotify.Notifier({"WATCHDOG_USEC": "30000000"}).watchdog is None  # no manager, no watchdog
    gone = sdnotify.Notifier({"NOTIFY_SOCKET": str(tmp_path / "gone")})
    gone.send(READY="1")  # the manager went away: never raises
    assert sdnotify.Notifier({}).sock is None and sdnotify.Notifier({"NOTIFY_SOCKET": "relative"}).sock is None


def test_the_error_that_stops_the_agent_carries_its_priority_in_the_journal(tmp_path: Path) -> None:
    err = tmp_path / "stderr"
    with open(err, "w") as f:
        st = os.fstat(f.fileno())
        env = dict(os.environ, HECTL_CONFIG=str(tmp_path / "missing.conf"), JOURNAL_STREAM=f"{st.st_dev}:{st.st_ino}")
        code = subprocess.run([HECTL, "ha", "run"], env=env, stdout=f, stderr=f, timeout=WAIT).returncode
    assert code == 3  # CONFIG: the unit's RestartPreventExitStatus
    assert err.read_text() == (
        f"<3>hectl: error: configuration file {tmp_path / 'missing.conf'} not found\n"
        "<3>hectl: hint: hectl is not deployed on this host; pass --config or set HECTL_CONFIG\n"
    )
