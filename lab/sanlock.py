"""Real sanlock daemons for tests: one per simulated host, each with its own SANLOCK_RUN_DIR.

The daemons run without a watchdog (-w 0) and without mlockall (-l 0) and,
because root on this machine kind cannot raise hard rlimits, with an
LD_PRELOAD shim (rlimit_shim.c, compiled here with gcc).
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).parent


def missing() -> str:
    """Why real sanlock daemons cannot run here ('' when they can)."""
    for tool in ("sanlock", "gcc"):
        if shutil.which(tool) is None and not os.path.exists(f"/usr/sbin/{tool}"):
            return f"{tool} is not installed"
    try:
        pwd.getpwnam("sanlock")
        import sanlock  # noqa: F401
    except (KeyError, ImportError) as exc:
        return f"sanlock not usable: {exc}"
    return ""


def build_shim(where: Path) -> Path:
    shim = where / "rlimit_shim.so"
    subprocess.run(["gcc", "-shared", "-fPIC", "-O2", "-o", str(shim), str(HERE / "rlimit_shim.c"), "-ldl"], check=True)
    return shim


class Daemon:
    """One sanlock daemon (a host's)."""

    def __init__(self, run_dir: Path, shim: Path) -> None:
        self.run_dir = run_dir
        self.shim = shim
        self.pid = 0

    @property
    def env(self) -> dict[str, str]:
        return {"SANLOCK_RUN_DIR": str(self.run_dir)}

    def start(self) -> None:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        user = pwd.getpwnam("sanlock")
        os.chown(self.run_dir, user.pw_uid, user.pw_gid)
        env = dict(os.environ, LD_PRELOAD=str(self.shim), **self.env)
        subprocess.run(["sanlock", "daemon", "-w", "0", "-l", "0"], env=env, check=True, timeout=30)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.client("status").returncode == 0 and (self.run_dir / "sanlock.pid").exists():
                self.pid = int((self.run_dir / "sanlock.pid").read_text().split()[0])
                return
            time.sleep(0.05)
        raise RuntimeError(f"sanlock daemon in {self.run_dir} did not come up")

    def client(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["sanlock", "client", *args], env=dict(os.environ, **self.env), capture_output=True, text=True, timeout=30
        )

    def kill(self) -> None:
        """Power loss: SIGKILL, no cleanup."""
        if self.pid:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGKILL)
            wait_gone(self.pid)

    def stop(self) -> None:
        if self.pid and alive(self.pid):
            self.client("shutdown", "-f", "1")
            if not wait_gone(self.pid, 10):
                self.kill()


def alive(pid: int) -> bool:
    """True while ``pid`` runs (a zombie does not count: PID 1 reaps lazily here)."""
    try:
        with open(f"/proc/{pid}/status") as f:
            return not any(line.startswith("State:") and "Z" in line.split()[1] for line in f)
    except OSError:
        return False


def wait_gone(pid: int, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def shared_dir(prefix: str) -> Path:
    """A directory the sanlock user can reach (pytest's tmp dirs are 0700)."""
    path = Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))
    path.chmod(0o755)
    return path


def initialize_domain_leases(root: Path, daemon: Daemon, io_timeout: int) -> None:
    """Create and initialise the lockspace and engine lease files of the domain at ``root``.

    In a process of its own: libsanlock talks to one daemon (SANLOCK_RUN_DIR) per process.
    """
    import sys

    from hectl import lease
    from hectl.storage.backend import DomainPaths

    lease.prepare_files(DomainPaths.under(str(root)), 30.0)
    code = (
        "from hectl import lease; from hectl.storage.backend import DomainPaths; "
        f"lease.SanlockLeases(DomainPaths.under({str(root)!r}), 1, {io_timeout}).initialize()"
    )
    subprocess.run([sys.executable, "-c", code], env=dict(os.environ, **daemon.env), check=True, timeout=60)
