"""A tiny pass-through FUSE filesystem that can be made to hang: the hung-storage tests' domain, and the lab's
(a shared domain whose I/O can be frozen for a while, the storage stall fault).

``StallFS`` exposes a real backing directory at a mount point. While the control
file ``<control>/stall`` exists, every filesystem operation (lookup/getattr,
open, read, write, fsync, ...) blocks inside the daemon until the file is
removed: a process that touches the mount then waits in the kernel exactly as it
would on a hung NFS or Gluster mount. Once the daemon has received a request,
even SIGKILL does not free the caller until the request is answered.

The daemon runs as a separate process (``python lab/stallfs.py BACKING MOUNT
CONTROL``) so that a stall can never block the test process's own interpreter.
``FuseMount`` starts it and always tears it down (release the stall, unmount,
stop the daemon, lazy-unmount as a last resort); the daemon also unmounts by
itself when the process that started it goes away, so a killed test run never
leaves a hung mount behind.

Needs Debian's ``fuse`` (fusermount) and ``libfuse2``, and PyPI's ``fusepy``.
"""

from __future__ import annotations

import errno
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

STALL_FILE = "stall"  # present: stall; its content, when not empty, names the operations that stall
NODIRECT_FILE = "nodirect"  # "open": O_DIRECT opens fail with EINVAL; "io": they succeed, their I/O fails so
NOSPACE_FILE = "nospace"  # present: every write fails with ENOSPC (a full filesystem)
BLOCKED_FILE = "blocked"  # how many operations have entered a stall so far (written by the daemon)
FSNAME = "hectl-stallfs"


def missing_requirements() -> str | None:
    """Why a FUSE mount cannot be made here, or None when everything is present."""
    if not os.path.exists("/dev/fuse"):
        return "/dev/fuse is missing"
    if shutil.which("fusermount") is None:
        return "fusermount is missing (Debian package: fuse)"
    try:
        import fuse  # noqa: F401  (fusepy; raises OSError when libfuse2 is missing)
    except ImportError:
        return "the Python package fusepy is not installed (pip install fusepy)"
    except OSError as exc:
        return f"fusepy cannot load libfuse (Debian package: libfuse2): {exc}"
    return None


def mounted(mountpoint: str | Path) -> bool:
    """Whether a FUSE filesystem is mounted at ``mountpoint`` (reads /proc only: never touches the mount)."""
    target = os.path.realpath(os.path.dirname(os.fspath(mountpoint))) + "/" + os.path.basename(os.fspath(mountpoint))
    with open("/proc/self/mountinfo", encoding="utf-8") as f:
        for line in f:
            fields = line.split()
            sep = fields.index("-")
            mnt = fields[4].replace("\\040", " ")
            if mnt == target and fields[sep + 1].startswith("fuse"):
                return True
    return False


# --- the daemon --------------------------------------------------------------------------------


def _make_ops(backing: str, control: str):  # type: ignore[no-untyped-def]
    from fuse import FuseOSError, Operations

    stall_flag = os.path.join(control, STALL_FILE)
    nodirect_flag = os.path.join(control, NODIRECT_FILE)
    direct_fhs: set[int] = set()  # opened with O_DIRECT while refusing its I/O

    def refuse_direct() -> str:
        try:
            with open(nodirect_flag, encoding="utf-8") as f:
                return f.read().strip()
        except FileNotFoundError:
            return ""

    def check_direct_io(fh: int) -> None:
        if fh in direct_fhs:
            raise FuseOSError(errno.EINVAL)

    shutting_down = threading.Event()
    counter_lock = threading.Lock()
    blocked = [0]

    def note_blocked() -> None:
        with counter_lock:
            blocked[0] += 1
            tmp = os.path.join(control, BLOCKED_FILE + ".tmp")
            with open(tmp, "w") as f:
                f.write(f"{blocked[0]}\n")
            os.replace(tmp, os.path.join(control, BLOCKED_FILE))

    def stalled_ops() -> frozenset[str] | None:
        """None: no stall; empty: every operation stalls; else the names of those that do."""
        try:
            with open(stall_flag, encoding="utf-8") as f:
                return frozenset(f.read().split())
        except FileNotFoundError:
            return None

    def gate(op: str) -> None:
        ops = stalled_ops()
        if ops is None or (ops and op not in ops) or shutting_down.is_set():
            return
        note_blocked()
        while stalled_ops() is not None and not shutting_down.is_set():
            time.sleep(0.02)

    class StallFS(Operations):
        use_ns = True

        def __init__(self) -> None:
            self.root = os.path.realpath(backing)
            self.shutting_down = shutting_down

        def __call__(self, op, *args):  # type: ignore[no-untyped-def]
            gate(op)
            try:
                return super().__call__(op, *args)
            except OSError as exc:
                raise FuseOSError(exc.errno or errno.EIO) from None

        def _full(self, path: str) -> str:
            return os.path.join(self.root, path.lstrip("/"))

        def access(self, path, amode):  # type: ignore[no-untyped-def]
            if not os.access(self._full(path), amode):
                raise FuseOSError(errno.EACCES)

        def chmod(self, path, mode):  # type: ignore[no-untyped-def]
            os.chmod(self._full(path), mode)

        def chown(self, path, uid, gid):  # type: ignore[no-untyped-def]
            os.chown(self._full(path), uid, gid)

        def create(self, path, mode, fi=None):  # type: ignore[no-untyped-def]
            return os.open(self._full(path), os.O_RDWR | os.O_CREAT, mode)

        def flush(self, path, fh):  # type: ignore[no-untyped-def]
            return 0

        def fsync(self, path, datasync, fh):  # type: ignore[no-untyped-def]
            if datasync:
                os.fdatasync(fh)
            else:
                os.fsync(fh)
            return 0

        def getattr(self, path, fh=None):  # type: ignore[no-untyped-def]
            st = os.fstat(fh) if fh is not None else os.lstat(self._full(path))
            keys = ("st_atime", "st_ctime", "st_gid", "st_mode", "st_mtime", "st_nlink", "st_size", "st_uid", "st_blocks")
            out = {k: getattr(st, k) for k in keys}
            for k in ("st_atime", "st_ctime", "st_mtime"):
                out[k] = getattr(st, k + "_ns")  # use_ns
            return out

        def link(self, target, source):  # type: ignore[no-untyped-def]
            os.link(self._full(source), self._full(target))

        def mkdir(self, path, mode):  # type: ignore[no-untyped-def]
            os.mkdir(self._full(path), mode)

        def mknod(self, path, mode, dev):  # type: ignore[no-untyped-def]
            os.mknod(self._full(path), mode, dev)

        def open(self, path, flags):  # type: ignore[no-untyped-def]
            refuse = refuse_direct() if flags & os.O_DIRECT else ""
            if refuse == "open":
                raise FuseOSError(errno.EINVAL)  # like filesystems without O_DIRECT support
            # O_DIRECT is the caller's business with the kernel; our own buffers are not aligned.
            fh = os.open(self._full(path), flags & ~(os.O_DIRECT | os.O_CREAT | os.O_EXCL | os.O_TRUNC))
            if refuse == "io":
                direct_fhs.add(fh)
            return fh

        def read(self, path, size, offset, fh):  # type: ignore[no-untyped-def]
            check_direct_io(fh)
            return os.pread(fh, size, offset)

        def readdir(self, path, fh):  # type: ignore[no-untyped-def]
            return [".", "..", *os.listdir(self._full(path))]

        def readlink(self, path):  # type: ignore[no-untyped-def]
            return os.readlink(self._full(path))

        def release(self, path, fh):  # type: ignore[no-untyped-def]
            direct_fhs.discard(fh)
            os.close(fh)
            return 0

        def rename(self, old, new):  # type: ignore[no-untyped-def]
            os.rename(self._full(old), self._full(new))

        def rmdir(self, path):  # type: ignore[no-untyped-def]
            os.rmdir(self._full(path))

        def statfs(self, path):  # type: ignore[no-untyped-def]
            sv = os.statvfs(self._full(path))
            keys = (
                "f_bavail",
                "f_bfree",
                "f_blocks",
                "f_bsize",
                "f_favail",
                "f_ffree",
                "f_files",
                "f_flag",
                "f_frsize",
                "f_namemax",
            )
            return {k: getattr(sv, k) for k in keys}

        def symlink(self, target, source):  # type: ignore[no-untyped-def]
            os.symlink(source, self._full(target))

        def truncate(self, path, length, fh=None):  # type: ignore[no-untyped-def]
            if fh is not None:
                os.ftruncate(fh, length)
            else:
                os.truncate(self._full(path), length)

        def unlink(self, path):  # type: ignore[no-untyped-def]
            os.unlink(self._full(path))

        def utimens(self, path, times=None):  # type: ignore[no-untyped-def]
            os.utime(self._full(path), ns=times)

        def write(self, path, data, offset, fh):  # type: ignore[no-untyped-def]
            check_direct_io(fh)
            if os.path.exists(os.path.join(control, NOSPACE_FILE)):
                raise FuseOSError(errno.ENOSPC)
            return os.pwrite(fh, data, offset)

    return StallFS()


def _watch_parent(parent: int, mountpoint: str, ops) -> None:  # type: ignore[no-untyped-def]
    """Unmount (which ends the daemon) once the process that started us is gone."""
    while True:
        time.sleep(0.5)
        try:
            os.kill(parent, 0)
        except ProcessLookupError:
            break
    ops.shutting_down.set()  # answer every stalled request
    subprocess.run(["fusermount", "-u", "-z", mountpoint], check=False, capture_output=True)


def serve(backing: str, mountpoint: str, control: str, parent: int) -> None:
    from fuse import FUSE

    ops = _make_ops(backing, control)
    threading.Thread(target=_watch_parent, args=(parent, mountpoint, ops), daemon=True).start()
    # attr/entry caching off: every stat reaches the daemon, so a stall is felt at once.
    FUSE(
        ops,
        mountpoint,
        foreground=True,
        nothreads=False,
        fsname=FSNAME,
        subtype="stallfs",
        attr_timeout=0,
        entry_timeout=0,
        negative_timeout=0,
        allow_other=True,  # the lab's sanlock daemons and QEMU run as their own users
    )


# --- the test side ---------------------------------------------------------------------------


class FuseMount:
    """A StallFS mounted at ``mountpoint`` over ``backing``; a context manager that always cleans up."""

    def __init__(self, backing: Path, mountpoint: Path, control: Path) -> None:
        self.backing = backing
        self.mountpoint = mountpoint
        self.control = control
        self.log = control / "fusefs.log"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def stall_flag(self) -> Path:
        return self.control / STALL_FILE

    def start(self, timeout: float = 20.0) -> FuseMount:
        for d in (self.backing, self.mountpoint, self.control):
            d.mkdir(parents=True, exist_ok=True)
        self.release()
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen(
                [sys.executable, __file__, str(self.backing), str(self.mountpoint), str(self.control), str(os.getpid())],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while not mounted(self.mountpoint):
            if self.proc.poll() is not None:
                raise RuntimeError(f"FUSE daemon exited with {self.proc.returncode}: {self.log.read_text()}")
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"FUSE filesystem not mounted within {timeout} s: {self.log.read_text()}")
            time.sleep(0.05)
        return self

    def stall(self, ops: tuple[str, ...] = ()) -> None:
        """From now on every operation on the mount (or only ``ops``, fusepy names) blocks until ``release``."""
        tmp = self.control / (STALL_FILE + ".tmp")
        tmp.write_text(" ".join(ops))
        os.replace(tmp, self.stall_flag)

    def release(self) -> None:
        self.stall_flag.unlink(missing_ok=True)

    def refuse_direct(self, at: str | None) -> None:
        """Make O_DIRECT fail with EINVAL: at ``"open"``, at ``"io"`` (read/write), or not at all (None)."""
        path = self.control / NODIRECT_FILE
        if at is None:
            path.unlink(missing_ok=True)
        else:
            assert at in ("open", "io"), at
            tmp = self.control / (NODIRECT_FILE + ".tmp")
            tmp.write_text(at)
            os.replace(tmp, path)

    def no_space(self, full: bool) -> None:
        """Make every write fail with ENOSPC (``full``), or stop doing so."""
        path = self.control / NOSPACE_FILE
        if full:
            path.touch()
        else:
            path.unlink(missing_ok=True)

    @property
    def stalled(self) -> bool:
        return self.stall_flag.exists()

    def blocked_count(self) -> int:
        """How many operations have been held by a stall so far."""
        try:
            return int((self.control / BLOCKED_FILE).read_text())
        except (FileNotFoundError, ValueError):
            return 0

    def stop(self) -> None:
        """Release, unmount, stop the daemon; whatever happens, leave no mount behind."""
        self.release()
        deadline = time.monotonic() + 10.0
        while mounted(self.mountpoint) and time.monotonic() < deadline:
            done = subprocess.run(["fusermount", "-u", str(self.mountpoint)], capture_output=True, check=False)
            if done.returncode == 0:
                break
            time.sleep(0.2)  # busy: a process released from the stall is still finishing
        if self.proc is not None:
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                # Killing the daemon aborts the FUSE connection: every waiter gets ENOTCONN.
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
        if mounted(self.mountpoint):
            subprocess.run(["fusermount", "-u", "-z", str(self.mountpoint)], capture_output=True, check=False)
        if mounted(self.mountpoint):
            subprocess.run(["umount", "-l", str(self.mountpoint)], capture_output=True, check=False)
        if mounted(self.mountpoint):
            raise RuntimeError(f"could not unmount the test FUSE filesystem at {self.mountpoint}")

    def __enter__(self) -> FuseMount:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


if __name__ == "__main__":
    serve(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]))
