"""Aligned, direct, time-bounded file I/O for shared storage, confined to the domain.

Every operation runs in a forked child that shares a page-aligned anonymous
buffer with the caller. The caller waits at most ``timeout`` seconds: a child
stuck on hung storage (even in uninterruptible sleep) is killed and abandoned,
never waited for, so no hectl command can hang on sick storage.

Files are opened with O_DIRECT so that reads see what other hosts wrote, not
this host's page cache. Where the filesystem refuses O_DIRECT (some FUSE
filesystems, tmpfs before Linux 6.6) the I/O falls back to buffered + O_DSYNC
and says so in the result.

Shared storage is untrusted: a domain file is reached from the domain root one
component at a time (``openat`` with O_NOFOLLOW, O_DIRECTORY for directories)
and must be a regular file, or the operation is refused naming it. Only the
root itself, which the admin configures, may be a symbolic link. Files are
created as a temporary file in the same directory (O_EXCL | O_NOFOLLOW),
flushed, then renamed into place; a read-modify-write (``update``) holds an
exclusive OFD lock on the domain's lock file for its whole length.
"""

from __future__ import annotations

import contextlib
import errno as errno_mod
import mmap
import os
import select
import struct
import time

from hectl.errors import Interrupted, LockHeld, StorageError, StorageTimeout

TYPE_CHECKING = False  # typing.TYPE_CHECKING would import typing (see hectl.frozen)
if TYPE_CHECKING:
    from collections.abc import Callable

ALIGN = 4096
LOCK_FILE = "ha/update.lock"  # the lock of every read-modify-write (``update``)
_RESULT = struct.Struct("!iqBI")  # errno (0 = ok), bytes transferred, flags, ranges (or message bytes on error)
_RANGE = struct.Struct("!qq")
_FLOCK = struct.Struct("hhqqi4x")  # struct flock on Linux: type, whence, start, len, pid (0 for OFD locks)
DIRECT, WRITTEN = 1, 2  # result flags
OPENED, LOCKED, WRITING, _DONE = b"O", b"L", b"W", b"R"  # progress the child reports before its result
# A write that failed with one of these wrote nothing (any other failure may have left some bytes).
_NOTHING_WRITTEN = frozenset(
    {errno_mod.ENOSPC, errno_mod.EDQUOT, errno_mod.EROFS, errno_mod.EACCES, errno_mod.EPERM, errno_mod.EBADF}
)
_abandoned: list[int] = []
_SIGKILL = 9  # signal.SIGKILL on Linux; importing signal builds three enums (~1 ms on the fast path)


class IOResult:
    """Outcome of one bounded operation.

    A read returns ``extents``: (offset from the start of the read, bytes) for
    the parts of the range holding data; holes are zeros and are not copied
    (an 8 MB metadata file is mostly holes). ``size`` is how much of the range
    exists in the file. ``written`` says whether an ``update`` wrote.
    """

    __slots__ = ("direct", "extents", "size", "written")

    def __init__(self, size: int, extents: list[tuple[int, bytes]], direct: bool, written: bool = False) -> None:
        self.size = size
        self.extents = extents
        self.direct = direct
        self.written = written

    @property
    def data(self) -> bytes:
        """The whole range as one bytes object (for small reads)."""
        out = bytearray(self.size)
        for offset, chunk in self.extents:
            out[offset : offset + len(chunk)] = chunk[: max(0, self.size - offset)]
        return bytes(out)


class Refused(OSError):
    """A domain path that is not what it must be (a link, not a regular file...): the message names it."""


class WriteUncertain(StorageError):
    """The write was under way when it failed or timed out: it may still land.

    After an ``update``, ``before`` holds the range as read before the write.
    """

    before = b""


# --- paths inside the domain -----------------------------------------------------------------------


def split(root: str, path: str) -> tuple[str, str]:
    """(root, path relative to it) for ``path`` inside ``root``; a path outside is refused."""
    root = os.path.normpath(root)
    rel = os.path.relpath(os.path.normpath(path), root)
    if rel == "." or rel == ".." or rel.startswith("../") or os.path.isabs(rel):
        raise StorageError(f"{path} is outside the storage domain {root}; refusing to use it")
    return root, rel


def _nofollow_error(dirfd: int, name: str, shown: str, exc: OSError, directory: bool) -> OSError:
    """Say why ``name`` (in ``dirfd``) could not be opened without following links."""
    if exc.errno not in (errno_mod.ELOOP, errno_mod.ENOTDIR, errno_mod.ENXIO, errno_mod.EMLINK, errno_mod.EISDIR):
        return exc
    import stat

    try:
        mode = os.stat(name, dir_fd=dirfd, follow_symlinks=False).st_mode
    except OSError:
        return exc
    if stat.S_ISLNK(mode):
        return Refused(errno_mod.ELOOP, f"{shown} is a symbolic link; domain files must be regular files inside the domain")
    want = "a directory" if directory else "a regular file"
    if stat.S_ISDIR(mode) if directory else stat.S_ISREG(mode):
        return exc
    return Refused(errno_mod.ELOOP, f"{shown} is not {want}; refusing to use it")


def _open_dir(root: str, rel_dir: str) -> int:
    """An O_DIRECTORY descriptor of ``root/rel_dir``, every component below the root opened without following links."""
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    shown = root
    for part in [p for p in rel_dir.split("/") if p]:
        shown = os.path.join(shown, part)
        try:
            nxt = _open_dir_in(fd, part, shown)
        finally:
            os.close(fd)
        fd = nxt
    return fd


def _open_in(dirfd: int, name: str, shown: str, flags: int, direct: bool) -> tuple[int, bool]:
    """Open regular file ``name`` in ``dirfd`` without following a link; (fd, O_DIRECT used)."""
    import stat

    flags |= os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC  # O_NONBLOCK: a FIFO planted here cannot block open()
    try:
        try:
            fd, used = os.open(name, flags | (os.O_DIRECT if direct else 0), dir_fd=dirfd), direct
        except OSError as exc:
            if not (direct and exc.errno == errno_mod.EINVAL):
                raise
            fd, used = os.open(name, flags, dir_fd=dirfd), False
    except OSError as exc:
        raise _nofollow_error(dirfd, name, shown, exc, directory=False) from None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise Refused(errno_mod.ELOOP, f"{shown} is not a regular file; refusing to use it")
    return fd, used


def _open(root: str, rel: str, flags: int, direct: bool) -> tuple[int, bool]:
    head, name = os.path.split(rel)
    dirfd = _open_dir(root, head)
    try:
        return _open_in(dirfd, name, os.path.join(root, rel), flags, direct)
    finally:
        os.close(dirfd)


# --- the I/O itself (in the child) ---------------------------------------------------------------


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
        a = max(offset, start // ALIGN * ALIGN)  # offset: a multiple of 512, not always of ALIGN
        b = min(-(-stop // ALIGN) * ALIGN, offset + length)
        n = _transfer(fd, buf, a - offset, a, b - a, write=False)
        filled.append((a - offset, a - offset + n))
    return max(0, min(length, size - offset)), filled


def _with_fallback(
    opener: Callable[[bool], tuple[int, bool]], direct: bool, op: Callable[[int], tuple[int, list[tuple[int, int]]]]
) -> tuple[int, bool, list[tuple[int, int]]]:
    """Open (O_DIRECT when ``direct``), run ``op``; retry buffered when O_DIRECT is refused at I/O time."""
    fd, used = opener(direct)
    try:
        try:
            n, ranges = op(fd)
        except OSError as exc:
            if not (used and exc.errno == errno_mod.EINVAL):
                raise
            os.close(fd)
            fd = -1
            fd, used = opener(False)
            n, ranges = op(fd)
        return n, used, ranges
    finally:
        if fd >= 0:
            os.close(fd)


def _child_read(
    root: str, rel: str, offset: int, length: int, buf: mmap.mmap, direct: bool
) -> tuple[int, int, list[tuple[int, int]]]:
    n, used, filled = _with_fallback(
        lambda d: _open(root, rel, os.O_RDONLY, d), direct, lambda fd: _read_into(fd, buf, offset, length)
    )
    return n, DIRECT if used else 0, filled


def _write_at(root: str, rel: str, offset: int, buf: mmap.mmap, length: int, direct: bool) -> tuple[int, bool]:
    def op(fd: int) -> tuple[int, list[tuple[int, int]]]:
        try:
            n = _transfer(fd, buf, 0, offset, length, write=True)
            os.fsync(fd)
        except OSError as exc:
            exc.maybe_written = exc.errno not in _NOTHING_WRITTEN  # type: ignore[attr-defined]
            raise
        return n, []

    n, used, _ = _with_fallback(lambda d: _open(root, rel, os.O_WRONLY | os.O_DSYNC, d), direct, op)
    return n, used


def _child_write(
    root: str, rel: str, offset: int, buf: mmap.mmap, length: int, direct: bool
) -> tuple[int, int, list[tuple[int, int]]]:
    n, used = _write_at(root, rel, offset, buf, length, direct)
    return n, (DIRECT if used else 0) | WRITTEN, []


def _replace(
    root: str,
    rel: str,
    buf: mmap.mmap,
    length: int,
    size: int,
    direct: bool,
    owner: tuple[int, int] | None = None,
    mode: int = 0o644,
) -> bool:
    """Make ``root/rel`` a new regular file holding ``buf[:length]`` (then zeros up to ``size``), atomically.

    A temporary file is created (O_EXCL | O_NOFOLLOW) in the same directory,
    written, flushed and renamed over the name: readers see the old file or the
    new one, never a part of either; a link at the name is replaced, never followed.
    """
    head, name = os.path.split(rel)
    dirfd = _open_dir(root, head)
    tmp = f".{name}.{os.urandom(6).hex()}.tmp"
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600, dir_fd=dirfd)
        try:
            if owner is not None:
                os.fchown(fd, *owner)
            os.fchmod(fd, mode)
        finally:
            os.close(fd)
        try:

            def op(fd: int) -> tuple[int, list[tuple[int, int]]]:
                n = _transfer(fd, buf, 0, 0, length, write=True) if length else 0
                if n != length:
                    raise OSError(errno_mod.EIO, f"short write ({n} of {length} bytes)")
                os.ftruncate(fd, max(size, length))
                os.fsync(fd)
                return n, []

            _, used, _ = _with_fallback(
                lambda d: _open_in(dirfd, tmp, os.path.join(root, head, tmp), os.O_WRONLY | os.O_DSYNC, d), direct, op
            )
            os.rename(tmp, name, src_dir_fd=dirfd, dst_dir_fd=dirfd)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp, dir_fd=dirfd)
            raise
        try:
            os.fsync(dirfd)
        except OSError as exc:
            exc.maybe_written = True  # type: ignore[attr-defined]  # renamed: the new file may be in place
            raise
        return used
    finally:
        os.close(dirfd)


def _make_dirs(root: str, rel_dir: str) -> None:
    """Create the directories of ``rel_dir`` under ``root`` (0755) that are missing, never through a link."""
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    shown = root
    try:
        for part in [p for p in rel_dir.split("/") if p]:
            shown = os.path.join(shown, part)
            with contextlib.suppress(FileExistsError):
                os.mkdir(part, 0o755, dir_fd=fd)
            nxt = _open_dir_in(fd, part, shown)
            os.close(fd)
            fd = nxt
    finally:
        os.close(fd)


def _open_dir_in(fd: int, part: str, shown: str) -> int:
    try:
        return os.open(part, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=fd)
    except OSError as exc:
        raise _nofollow_error(fd, part, shown, exc, directory=True) from None


def _lock(root: str, report: Callable[[bytes], None]) -> int:
    """Open (creating it when missing: temp file + link, never through a link) and lock the domain's lock file."""
    import fcntl

    head, name = os.path.split(LOCK_FILE)
    dirfd = _open_dir(root, head)
    shown = os.path.join(root, LOCK_FILE)
    try:
        try:
            fd, _ = _open_in(dirfd, name, shown, os.O_RDWR, False)
        except FileNotFoundError:
            tmp = f".{name}.{os.urandom(6).hex()}.tmp"
            os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644, dir_fd=dirfd))
            try:
                os.link(tmp, name, src_dir_fd=dirfd, dst_dir_fd=dirfd, follow_symlinks=False)
            except FileExistsError:  # another host made it first: use theirs
                pass
            finally:
                os.unlink(tmp, dir_fd=dirfd)
            fd, _ = _open_in(dirfd, name, shown, os.O_RDWR, False)
    finally:
        os.close(dirfd)
    os.set_blocking(fd, True)
    report(OPENED)
    fcntl.fcntl(fd, fcntl.F_OFD_SETLKW, _FLOCK.pack(fcntl.F_WRLCK, os.SEEK_SET, 0, 0, 0))
    report(LOCKED)
    return fd


def _child_update(
    root: str,
    rel: str,
    offset: int,
    length: int,
    buf: mmap.mmap,
    change: Callable[[bytes], bytes | None],
    replace: bool,
    direct: bool,
    report: Callable[[bytes], None],
) -> tuple[int, int, list[tuple[int, int]]]:
    import signal

    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):  # the caller decides; this finishes what it began
        signal.signal(signum, signal.SIG_IGN)
    lock = _lock(root, report)
    try:
        try:
            n, flags, filled = _child_read(root, rel, offset, length, buf, direct)
        except FileNotFoundError:
            if not replace:
                raise
            n, flags, filled = 0, 0, []
        old = bytearray(n)
        for a, b in filled:
            old[a:b] = buf[a : min(b, n)]
        try:
            new = change(bytes(old))
        except Exception:  # the caller runs ``change`` again on the same bytes and reports what it raises
            new = None
        if new is None:
            return n, flags, filled
        report(WRITING)
        out = mmap.mmap(-1, _aligned(len(new)))
        out[: len(new)] = new
        if replace:
            used = _replace(root, rel, out, len(new), len(new), direct)
        else:
            done, used = _write_at(root, rel, offset, out, len(new), direct)
            if done != len(new):
                short = OSError(errno_mod.EIO, f"short write ({done} of {len(new)} bytes)")
                short.maybe_written = True  # type: ignore[attr-defined]
                raise short
        return n, (DIRECT if used else 0) | WRITTEN, filled
    finally:
        os.close(lock)


# --- the bounded child -----------------------------------------------------------------------------


def run_in_child(
    work: Callable[[Callable[[bytes], None]], tuple[int, int, list[tuple[int, int]]]], timeout: float, what: str
) -> tuple[int, int, list[tuple[int, int]]]:
    """Run ``work(report)`` in a forked child; wait at most ``timeout`` s; return (count, flags, ranges).

    ``report`` sends a progress mark. Waiting for the lock (after
    ``OPENED``) and the I/O after ``LOCKED`` each get ``timeout``; once
    ``WRITING`` was reported, a timeout, an interruption or a failure that may
    have left bytes behind raises ``WriteUncertain`` (the write may still land).
    """
    reap_abandoned()
    deadline = time.monotonic() + max(0.0, timeout)
    rfd, wfd = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: report through the pipe, never return into the caller's code
        code = 1
        try:
            wfd = _detach(wfd)

            sent = [b""]

            def send(data: bytes) -> None:
                sent[0] += data
                view = memoryview(data)
                while view:
                    view = view[os.write(wfd, view) :]

            try:
                n, flags, ranges = work(send)
                msg = _RESULT.pack(0, n, flags, len(ranges)) + b"".join(_RANGE.pack(a, b) for a, b in ranges)
            except OSError as exc:
                words = (exc.strerror or "").encode("utf-8", "replace") if isinstance(exc, Refused) else b""
                maybe = WRITTEN if getattr(exc, "maybe_written", False) else 0
                msg = _RESULT.pack(exc.errno or errno_mod.EIO, 0, maybe, len(words)) + words
            except Exception as exc:  # a bug: say what, rather than "helper died"
                words = f"{type(exc).__name__}: {exc}".encode("utf-8", "replace")
                maybe = WRITTEN if WRITING in sent[0] else 0
                msg = _RESULT.pack(errno_mod.EIO, 0, maybe, len(words)) + words
            send(_DONE + msg)
            code = 0
        finally:
            os._exit(code)
    os.close(wfd)
    marks = b""
    msg = b""
    try:
        while True:
            ready, _, _ = select.select([rfd], [], [], max(0.0, deadline - time.monotonic()))
            if not ready:
                raise _timed_out(what, timeout, marks)
            chunk = os.read(rfd, 65536)
            if not chunk:
                break
            if not msg:
                head, sep, rest = chunk.partition(_DONE)
                if LOCKED in head:
                    deadline = time.monotonic() + max(0.0, timeout)
                marks += head
                chunk = sep + rest
            msg += chunk
        os.waitpid(pid, 0)
    except BaseException as exc:  # timeout, or interrupted: never wait for a child stuck on storage
        abandon(pid)
        if isinstance(exc, KeyboardInterrupt) and WRITING in marks:
            raise Interrupted(getattr(exc, "signum", 2), f"{what}: interrupted while writing", write_started=True) from exc
        raise
    finally:
        os.close(rfd)
    if len(msg) < 1 + _RESULT.size:
        cls = WriteUncertain if WRITING in marks else StorageError
        raise cls(f"{what}: I/O helper process died")
    err, n, flags, count = _RESULT.unpack_from(msg, 1)
    if err:
        text = msg[1 + _RESULT.size : 1 + _RESULT.size + count].decode("utf-8", "replace")  # a refusal, in words
        cls = WriteUncertain if flags & WRITTEN else StorageError
        said = f"{what.split()[0]} refused: {text}" if text and err == errno_mod.ELOOP else f"{what}: {text or os.strerror(err)}"
        raise cls(said, hint=_hint(err), errno=err)
    ranges = [_RANGE.unpack_from(msg, 1 + _RESULT.size + i * _RANGE.size) for i in range(count)]
    return n, flags, ranges


def _timed_out(what: str, timeout: float, marks: bytes) -> StorageError | LockHeld:
    if WRITING in marks:
        return WriteUncertain(f"{what}: no answer from storage within {timeout:g} s while writing")
    if OPENED in marks and LOCKED not in marks:
        return LockHeld(
            f"{what}: the domain's update lock ({LOCK_FILE}) was not obtained within {timeout:g} s",
            hint="another command is changing the domain; nothing was changed: try again",
        )
    return StorageTimeout(f"{what}: no answer from storage within {timeout:g} s")


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
    if err == errno_mod.ELOOP:
        return "something other than hectl put it there: inspect it, and move it away"
    if err in (errno_mod.ENOSPC, errno_mod.EDQUOT):
        return "free space on the storage domain"
    return None


def abandon(pid: int) -> None:
    """Kill child ``pid`` and leave it to ``reap_abandoned`` (never wait on a child stuck on storage)."""
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


def _where(path: str, root: str | None) -> tuple[str, str]:
    """(root, relative path): inside ``root`` when given, else ``path``'s own directory is the root."""
    if root is None:
        return os.path.dirname(path) or ".", os.path.basename(path)
    return split(root, path)


# --- the operations ----------------------------------------------------------------------------------


def read(path: str, offset: int, length: int, timeout: float, direct: bool = True, root: str | None = None) -> IOResult:
    """Read up to ``length`` bytes at ``offset`` (both multiples of 512) of regular file ``path``; fewer at end of file.

    With ``root``, every directory from ``root`` down to ``path`` is opened
    without following links; without it, only ``path`` itself.
    """
    base, rel = _where(path, root)
    buf = mmap.mmap(-1, _aligned(length))
    try:
        n, flags, ranges = run_in_child(
            lambda report: _child_read(base, rel, offset, length, buf, direct), timeout, f"read {path}"
        )
        extents = [(a, buf[a : min(b, n)]) for a, b in ranges if a < n]
        return IOResult(n, extents, bool(flags & DIRECT))
    finally:
        buf.close()


def write(path: str, offset: int, data: bytes, timeout: float, direct: bool = True, root: str | None = None) -> IOResult:
    """Write ``data`` (a whole number of 512-byte sectors) at ``offset`` of regular file ``path`` and flush it."""
    base, rel = _where(path, root)
    buf = mmap.mmap(-1, _aligned(len(data)))
    try:
        buf[: len(data)] = data

        def work(report: Callable[[bytes], None]) -> tuple[int, int, list[tuple[int, int]]]:
            report(WRITING)
            return _child_write(base, rel, offset, buf, len(data), direct)

        n, flags, _ = run_in_child(work, timeout, f"write {path}")
        if n != len(data):
            raise WriteUncertain(f"write {path}: short write ({n} of {len(data)} bytes)")
        return IOResult(n, [], bool(flags & DIRECT), written=True)
    finally:
        buf.close()


def create(
    path: str,
    data: bytes,
    size: int,
    timeout: float,
    root: str | None = None,
    owner: tuple[int, int] | None = None,
    mode: int = 0o644,
) -> None:
    """Make ``path`` a new regular file: ``data``, then zeros (a hole) up to ``size`` bytes; atomically, by rename.

    Whatever was at ``path`` (a file, a link) is replaced, never written through.
    """
    base, rel = _where(path, root)
    buf = mmap.mmap(-1, _aligned(len(data)))
    try:
        buf[: len(data)] = data

        def work(report: Callable[[bytes], None]) -> tuple[int, int, list[tuple[int, int]]]:
            _replace(base, rel, buf, len(data), size, False, owner, mode)
            return len(data), WRITTEN, []

        run_in_child(work, timeout, f"create {path}")
    finally:
        buf.close()


def update(
    path: str,
    offset: int,
    length: int,
    change: Callable[[bytes], bytes | None],
    timeout: float,
    *,
    root: str,
    replace: bool = False,
    direct: bool = True,
) -> IOResult:
    """Read-modify-write ``length`` bytes at ``offset`` of ``path`` under the domain's update lock.

    In the child, holding an exclusive OFD lock on ``root/LOCK_FILE``: read the
    range (missing file: ``b""`` when ``replace``), call ``change(old)``, and
    when it returns bytes write them at ``offset`` (``replace``: as the new
    whole file, by rename). ``change`` must be pure: the caller runs it again
    on the returned old bytes (``data``) to learn what was written, or to raise
    what it raised. The lock not obtained within ``timeout`` -> ``LockHeld``;
    the I/O gets ``timeout`` more from then on.
    """
    base, rel = split(root, path)
    buf = mmap.mmap(-1, _aligned(length))
    try:
        try:
            n, flags, ranges = run_in_child(
                lambda report: _child_update(base, rel, offset, length, buf, change, replace, direct, report),
                timeout,
                f"update {path}",
            )
        except (WriteUncertain, Interrupted) as exc:
            if isinstance(exc, WriteUncertain) or exc.write_started:
                exc.before = bytes(buf[:length])  # the helper read it (holes are zeros) before it started writing
            raise
        extents = [(a, buf[a : min(b, n)]) for a, b in ranges if a < n]
        return IOResult(n, extents, bool(flags & DIRECT), written=bool(flags & WRITTEN))
    finally:
        buf.close()


def make_dirs(root: str, rel_dir: str, timeout: float) -> None:
    """Create the missing directories of ``rel_dir`` under ``root`` (0755), never through a link."""

    def work(report: Callable[[bytes], None]) -> tuple[int, int, list[tuple[int, int]]]:
        _make_dirs(root, rel_dir)
        return 0, 0, []

    run_in_child(work, timeout, f"create {os.path.join(root, rel_dir)}")


def check_file(path: str, timeout: float, root: str) -> None:
    """Raise ``StorageError`` naming ``path`` unless it is a regular file reached inside ``root`` without links."""
    base, rel = split(root, path)

    def work(report: Callable[[bytes], None]) -> tuple[int, int, list[tuple[int, int]]]:
        fd, _ = _open(base, rel, os.O_RDONLY, False)
        os.close(fd)
        return 0, 0, []

    run_in_child(work, timeout, f"check {path}")


_KINDS = {1: "dir", 2: "file", 3: "other"}


def _child_kind(path: str) -> tuple[int, int, list[tuple[int, int]]]:
    import stat

    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return 0, 0, []
    return (1 if stat.S_ISDIR(mode) else 2 if stat.S_ISREG(mode) else 3), 0, []


def path_kind(path: str, timeout: float) -> str | None:
    """``"dir"``, ``"file"``, ``"other"`` or ``None`` (missing), found within ``timeout`` (links followed)."""
    code, _, _ = run_in_child(lambda report: _child_kind(path), timeout, f"stat {path}")
    return _KINDS.get(code)


def _child_free(path: str) -> tuple[int, int, list[tuple[int, int]]]:
    st = os.statvfs(path)
    return st.f_bavail * st.f_frsize, 0, []


def free_bytes(path: str, timeout: float) -> int:
    """Bytes free for unprivileged users on the filesystem of ``path``, found within ``timeout``."""
    n, _, _ = run_in_child(lambda report: _child_free(path), timeout, f"statvfs {path}")
    return n


def run_command(argv: list[str], timeout: float, what: str, log: str | None = None) -> None:
    """Run ``argv`` (a mount, an unmount) for at most ``timeout`` seconds; on timeout kill it and abandon it
    (never wait on storage). ``StorageError`` with the last line it printed when it fails."""
    import subprocess
    import tempfile

    reap_abandoned()
    with tempfile.TemporaryFile() as err:
        try:
            proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err)
        except OSError as exc:
            raise StorageError(f"{what}: cannot run {argv[0]}: {exc.strerror}") from exc
        deadline = time.monotonic() + timeout
        while proc.poll() is None:
            if time.monotonic() > deadline:
                abandon(proc.pid)
                raise StorageTimeout(f"{what} did not finish within {timeout:g} s")
            time.sleep(0.01)
        if proc.returncode != 0:
            err.seek(0)
            message = err.read(2000).decode(errors="replace").strip().splitlines()
            detail = message[-1] if message else f"exit status {proc.returncode}"
            raise StorageError(f"{what} failed: {detail}", hint=f"see {log}" if log else None)
