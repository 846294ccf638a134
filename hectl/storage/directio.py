"""Aligned, direct, time-bounded file I/O for shared storage.

Every operation runs in a forked child that shares a page-aligned anonymous
buffer with the caller. The caller waits at most ``timeout`` seconds: a child
stuck on hung storage (even in uninterruptible sleep) is killed and abandoned,
never waited for, so no hectl command can hang on sick storage.

Files are opened with O_DIRECT so that reads see what other hosts wrote, not
this host's page cache. Where the filesystem refuses O_DIRECT (some FUSE
filesystems, tmpfs before Linux 6.6) the I/O falls back to buffered + O_DSYNC
and says so in the result.
"""

from __future__ import annotations

import errno as errno_mod
import mmap
import os
import select
import struct
import time

from hectl.errors import StorageError, StorageTimeout

TYPE_CHECKING = False  # typing.TYPE_CHECKING would import typing (see hectl.frozen)
if TYPE_CHECKING:
    from collections.abc import Callable

ALIGN = 4096
_RESULT = struct.Struct("!iqBI")  # errno (0 = ok), bytes transferred, flag (O_DIRECT used), ranges
_RANGE = struct.Struct("!qq")
_abandoned: list[int] = []
_SIGKILL = 9  # signal.SIGKILL on Linux; importing signal builds three enums (~1 ms on the fast path)


class IOResult:
    """Outcome of one bounded operation.

    A read returns ``extents``: (offset from the start of the read, bytes) for
    the parts of the range holding data; holes are zeros and are not copied
    (an 8 MB metadata file is mostly holes). ``size`` is how much of the range
    exists in the file.
    """

    __slots__ = ("direct", "extents", "size")

    def __init__(self, size: int, extents: list[tuple[int, bytes]], direct: bool) -> None:
        self.size = size
        self.extents = extents
        self.direct = direct

    @property
    def data(self) -> bytes:
        """The whole range as one bytes object (for small reads)."""
        out = bytearray(self.size)
        for offset, chunk in self.extents:
            out[offset : offset + len(chunk)] = chunk[: max(0, self.size - offset)]
        return bytes(out)


def _open(path: str, flags: int, direct: bool) -> tuple[int, bool]:
    if direct:
        try:
            return os.open(path, flags | os.O_DIRECT), True
        except OSError as exc:
            if exc.errno != errno_mod.EINVAL:
                raise
    return os.open(path, flags), False


def _transfer(fd: int, buf: mmap.mmap, buf_offset: int, file_offset: int, length: int, write: bool) -> int:
    """Move ``length`` bytes between ``buf[buf_offset:]`` and the file at ``file_offset``; stop at EOF."""
    view = memoryview(buf)
    done = 0
    try:
        while done < length:
            chunk = view[buf_offset + done : buf_offset + length]
            pos = file_offset + done
            n = os.pwritev(fd, [chunk], pos) if write else os.preadv(fd, [chunk], pos)
            if n == 0:
                break
            done += n
    finally:
        view.release()
    return done


def _data_ranges(fd: int, offset: int, length: int) -> list[tuple[int, int]]:
    """(start, end) of the parts of [offset, offset+length) that hold data; holes read as zeros."""
    end = min(offset + length, os.fstat(fd).st_size)
    ranges = []
    pos = offset
    try:
        while pos < end:
            try:
                start = os.lseek(fd, pos, os.SEEK_DATA)
            except OSError as exc:
                if exc.errno == errno_mod.ENXIO:  # no data after pos
                    break
                raise
            if start >= end:
                break
            stop = min(os.lseek(fd, start, os.SEEK_HOLE), end)
            ranges.append((start, stop))
            pos = stop
    except OSError:  # SEEK_DATA unsupported here: read it all
        return [(offset, end)] if end > offset else []
    return ranges


def _read_into(fd: int, buf: mmap.mmap, offset: int, length: int) -> tuple[int, list[tuple[int, int]]]:
    """Fill ``buf`` with the data parts of [offset, offset+length); return (bytes covered, filled ranges)."""
    size = os.fstat(fd).st_size
    filled = []
    for start, stop in _data_ranges(fd, offset, length):
        # Keep O_DIRECT alignment: extents are block-aligned except possibly at end of file.
        a = start // ALIGN * ALIGN
        b = min(-(-stop // ALIGN) * ALIGN, offset + length)
        n = _transfer(fd, buf, a - offset, a, b - a, write=False)
        filled.append((a - offset, a - offset + n))
    return max(0, min(length, size - offset)), filled


def _child_io(
    path: str, offset: int, length: int, buf: mmap.mmap, write: bool, direct: bool
) -> tuple[int, bool, list[tuple[int, int]]]:
    flags = (os.O_WRONLY | os.O_DSYNC) if write else os.O_RDONLY
    fd, used_direct = _open(path, flags, direct)

    def once() -> tuple[int, list[tuple[int, int]]]:
        if write:
            return _transfer(fd, buf, 0, offset, length, write=True), []
        return _read_into(fd, buf, offset, length)

    try:
        try:
            n, filled = once()
        except OSError as exc:
            if not (used_direct and exc.errno == errno_mod.EINVAL):
                raise
            # Opened with O_DIRECT but the filesystem refuses it at I/O time.
            os.close(fd)
            fd, used_direct = _open(path, flags, False)
            n, filled = once()
        if write:
            os.fsync(fd)
        return n, used_direct, filled
    finally:
        os.close(fd)


def _run_in_child(
    work: Callable[[], tuple[int, bool, list[tuple[int, int]]]], timeout: float, what: str
) -> tuple[int, bool, list[tuple[int, int]]]:
    """Run ``work`` in a forked child; wait at most ``timeout`` s; return (count, flag, ranges)."""
    reap_abandoned()
    deadline = time.monotonic() + max(0.0, timeout)
    rfd, wfd = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: report through the pipe, never return into the caller's code
        code = 1
        try:
            wfd = _detach(wfd)
            try:
                n, flag, ranges = work()
                msg = _RESULT.pack(0, n, int(flag), len(ranges)) + b"".join(_RANGE.pack(a, b) for a, b in ranges)
            except OSError as exc:
                msg = _RESULT.pack(exc.errno or errno_mod.EIO, 0, 0, 0)
            view = memoryview(msg)
            while view:
                view = view[os.write(wfd, view) :]
            code = 0
        finally:
            os._exit(code)
    os.close(wfd)
    try:
        msg = b""
        while True:
            ready, _, _ = select.select([rfd], [], [], max(0.0, deadline - time.monotonic()))
            if not ready:
                raise StorageTimeout(f"{what}: no answer from storage within {timeout:g} s")
            chunk = os.read(rfd, 65536)
            if not chunk:
                break
            msg += chunk
        os.waitpid(pid, 0)
    except BaseException:  # timeout, or interrupted: never wait for a child stuck on storage
        _abandon(pid)
        raise
    finally:
        os.close(rfd)
    if len(msg) < _RESULT.size:
        raise StorageError(f"{what}: I/O helper process died")
    err, n, flag, count = _RESULT.unpack_from(msg)
    if err:
        raise StorageError(f"{what}: {os.strerror(err)}", hint=_hint(err), errno=err)
    ranges = [_RANGE.unpack_from(msg, _RESULT.size + i * _RANGE.size) for i in range(count)]
    return n, bool(flag), ranges


def _detach(keep: int) -> int:
    """In the child: let go of every inherited descriptor but ``keep``; return its (new) number.

    A child stuck on hung storage must not hold the caller's stdout/stderr (or
    any other pipe) open: whoever reads hectl's output would wait for storage.
    """
    if keep <= 2:  # the caller ran with a standard descriptor closed
        import fcntl

        keep = fcntl.fcntl(keep, fcntl.F_DUPFD, 3)
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(devnull, fd)
    os.closerange(3, keep)
    os.closerange(keep + 1, max(keep + 2, os.sysconf("SC_OPEN_MAX")))
    return keep


def _hint(err: int) -> str | None:
    if err == errno_mod.ENOENT:
        return "is the storage domain connected and deployed?"
    if err in (errno_mod.EACCES, errno_mod.EPERM, errno_mod.EROFS):
        return "check permissions and that the storage is mounted read-write"
    return None


def _abandon(pid: int) -> None:
    try:
        os.kill(pid, _SIGKILL)
    except ProcessLookupError:
        return
    _abandoned.append(pid)
    reap_abandoned()


def reap_abandoned() -> int:
    """Collect children abandoned on hung storage that have since exited; return how many remain."""
    for pid in list(_abandoned):
        try:
            done, _ = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            done = pid
        if done:
            _abandoned.remove(pid)
    return len(_abandoned)


def _aligned(length: int) -> int:
    return max(ALIGN, (length + ALIGN - 1) // ALIGN * ALIGN)


def read(path: str, offset: int, length: int, timeout: float, direct: bool = True) -> IOResult:
    """Read up to ``length`` bytes at ``offset`` (both multiples of 512); fewer at end of file."""
    buf = mmap.mmap(-1, _aligned(length))
    try:
        n, used, ranges = _run_in_child(lambda: _child_io(path, offset, length, buf, False, direct), timeout, f"read {path}")
        extents = [(a, buf[a : min(b, n)]) for a, b in ranges if a < n]
        return IOResult(n, extents, used)
    finally:
        buf.close()


def write(path: str, offset: int, data: bytes, timeout: float, direct: bool = True) -> IOResult:
    """Write ``data`` (a whole number of 512-byte sectors) at ``offset`` and flush it to storage."""
    buf = mmap.mmap(-1, _aligned(len(data)))
    try:
        buf[: len(data)] = data
        n, used, _ = _run_in_child(lambda: _child_io(path, offset, len(data), buf, True, direct), timeout, f"write {path}")
        if n != len(data):
            raise StorageError(f"write {path}: short write ({n} of {len(data)} bytes)")
        return IOResult(n, [], used)
    finally:
        buf.close()


def _child_create(path: str, size: int) -> tuple[int, bool, list[tuple[int, int]]]:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        if os.fstat(fd).st_size < size:
            os.ftruncate(fd, size)
            os.fsync(fd)
    finally:
        os.close(fd)
    return 0, False, []


def ensure_file(path: str, size: int, timeout: float) -> None:
    """Create ``path`` (mode 0644) at least ``size`` bytes long, within ``timeout``; existing data is kept."""
    _run_in_child(lambda: _child_create(path, size), timeout, f"create {path}")


_KINDS = {1: "dir", 2: "file", 3: "other"}


def _child_kind(path: str) -> tuple[int, bool, list[tuple[int, int]]]:
    import stat

    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return 0, False, []
    return (1 if stat.S_ISDIR(mode) else 2 if stat.S_ISREG(mode) else 3), False, []


def path_kind(path: str, timeout: float) -> str | None:
    """``"dir"``, ``"file"``, ``"other"`` or ``None`` (missing), found within ``timeout``."""
    code, _, _ = _run_in_child(lambda: _child_kind(path), timeout, f"stat {path}")
    return _KINDS.get(code)


def _child_free(path: str) -> tuple[int, bool, list[tuple[int, int]]]:
    st = os.statvfs(path)
    return st.f_bavail * st.f_frsize, False, []


def free_bytes(path: str, timeout: float) -> int:
    """Bytes free for unprivileged users on the filesystem of ``path``, found within ``timeout``."""
    n, _, _ = _run_in_child(lambda: _child_free(path), timeout, f"statvfs {path}")
    return n
