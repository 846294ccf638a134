"""The fence-agents family (``fence_ipmilan``, ``fence_redfish``, ...) through their documented interface.

An agent reads ``key=value`` lines on stdin (``action=`` first; never the old
``option=``, which 4.12 ignores and then runs its default action, reboot),
prints what it did and exits 0 on success (``status``: 0 on, 2 off). hectl
runs only the agents it supports (``hectl.fencing.families``, checked again
right before each run with the device's parameters), from ``[fencing]
agents_dir``, owned by root and writable by nobody else, with a minimal
environment, in a session of its own that is killed whole when the action's
time is up. A signal (Ctrl-C, SIGTERM) while an action runs does not leave it
running unrecorded: the action is waited for (its time still bounds it) and its
answer carries the signal; a second signal kills its session, and the answer
says nobody knows what it did.
"""

from __future__ import annotations

import contextlib
import os
import signal
import stat
import subprocess
import time

from hectl.errors import ConfigError
from hectl.fencing import families
from hectl.fencing.device import ACTIONS, Answer, FenceDevice, FenceMethod, scrub

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping

KILL_WAIT = 5.0  # after killing an agent's session, how long to wait for it to go (one stuck in the kernel is left)
ENV = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8", "PYTHONWARNINGS": "ignore"}
OUTPUT_MAX = 64 * 1024


class FenceAgent(FenceMethod):
    def __init__(self, device: FenceDevice, secrets: Mapping[str, str], agents_dir: str) -> None:
        self.device = device
        self.secrets = dict(secrets)
        self.name = device.method
        self.program = os.path.join(agents_dir, device.method)

    def check_device(self) -> None:
        """``ConfigError`` unless the device line is one hectl allows (``hectl.fencing.families``)."""
        try:
            families.check(self.device.method, self.device.params)
        except ValueError as exc:
            raise ConfigError(f"[fencing] host{self.device.host_id}: {exc}") from None

    def check_program(self) -> None:
        """``ConfigError`` unless the agent is a root-owned executable nobody else may change."""
        try:
            st = os.stat(self.program)
        except OSError as exc:
            raise ConfigError(f"fence agent {self.program}: {exc.strerror}", hint="install Debian's fence-agents") from None
        if not stat.S_ISREG(st.st_mode) or not st.st_mode & 0o111:
            raise ConfigError(f"fence agent {self.program}: not an executable file")
        if st.st_uid != 0 or st.st_mode & 0o022:
            raise ConfigError(f"fence agent {self.program}: must be owned by root and writable by root alone")

    def stdin(self, action: str) -> bytes:
        lines = [f"action={action}", *(f"{k}={v}" for k, v in self.device.params), *(f"{k}={v}" for k, v in self.secrets.items())]
        return ("\n".join(lines) + "\n").encode()

    def run(self, action: str, timeout: float) -> Answer:
        if action not in ACTIONS:
            raise ValueError(f"unknown fence action {action}")
        self.check_device()
        self.check_program()
        began = time.monotonic()
        proc = subprocess.Popen(
            [self.program],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env=ENV,
            start_new_session=True,
            close_fds=True,
        )
        interrupted = 0
        try:
            out, _ = proc.communicate(self.stdin(action), timeout=timeout)
            code: int | None = proc.returncode
        except subprocess.TimeoutExpired:
            _kill_session(proc)
            out, code = b"", None
        except KeyboardInterrupt as exc:  # SIGINT, or SIGTERM/SIGHUP under errors.signals_interrupt
            interrupted = getattr(exc, "signum", signal.SIGINT)
            left = max(0.0, began + timeout - time.monotonic())
            self.on_wait(f"interrupted: waiting up to {left:.0f} s for {self.name}'s {action} to end, so that what it "
                         "did is known and recorded (interrupt again to kill it: then nobody knows)")  # fmt: skip
            out, code = _finish(proc, left)
        answer = Answer(code, self.last_words(out, code, timeout), time.monotonic() - began, interrupted)
        if interrupted and code is None:
            return answer._replace(message=f"{self.name}'s {action} was killed after an interruption: its effect is unknown")
        return answer

    def last_words(self, out: bytes, code: int | None, timeout: float) -> str:
        if code is None:
            return f"{self.name} did not finish within {timeout:g} s (killed)"
        lines = [line.strip() for line in out[-OUTPUT_MAX:].decode("utf-8", "replace").splitlines() if line.strip()]
        lines = [line for line in lines if "DeprecationWarning" not in line and not line.startswith("import ")]
        return scrub(" / ".join(lines[-3:]), self.secrets)[:500] or f"exit status {code}"


def _finish(proc: subprocess.Popen[bytes], timeout: float) -> tuple[bytes, int | None]:
    """Wait for an interrupted action at most ``timeout`` s; kill its session on a second interruption or the timeout."""
    try:
        out, _ = proc.communicate(timeout=timeout)
        return out, proc.returncode
    except (subprocess.TimeoutExpired, KeyboardInterrupt):
        _kill_session(proc)
        return b"", None


def _kill_session(proc: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(OSError):
        os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):  # a child stuck in the kernel: leave it
        proc.communicate(timeout=KILL_WAIT)
