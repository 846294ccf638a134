"""Domain file I/O over NFS without a mount: a small ctypes binding of libnfs (Debian's libnfs13, 4.0 signatures).

Why ctypes and not PyPI's ``libnfs``: that is an sdist that compiles against
libnfs-dev at install time (gcc, headers, ~seconds per install) for the dozen
synchronous calls needed here, whose signatures are stable C.

Bounded I/O, as for Gluster's libgfapi: the parent never loads the library.
Each operation runs whole in a forked child of hectl's bounded I/O
(``hectl.storage.directio.run_in_child``): the child mounts the export
(``nfs_mount``: no kernel involved), walks the path with ``lstat`` refusing
links and special files, does the operation and leaves with ``os._exit``. The
parent waits at most the timeout and kills and abandons a child that has not
answered, so a stopped or frozen server never holds a command past its
``--timeout``.

Read-modify-writes (``update``) cannot use byte-range locks here: libnfs 4.0
sends NFSv4 LOCK with a stale open seqid (the server answers NFS4ERR_INVAL;
seen against Ganesha 4.3) and has no NLM for NFSv3. Every hectl NFS client
therefore serialises updates with a lock *file*, ``ha/update.lock.owner``: the
holder writes its token to a file of its own and links it to that name (a
link is atomic on the server and fails when the name exists, so the lock file
appears whole or not at all; an exclusive create would show a waiter an empty
file for a moment, which looked expired and was broken: a lost update). It holds
the holder's name and a wall-clock deadline (three storage timeouts: the
holder's bounded child is dead by then); a lock past its deadline (plus
``STALE_SLACK``) is broken by renaming it away (one breaker wins) and removed.
The holder removes it when done. The nfs backend sends every update through
here, mounted or not, so all of its clients use the same lock.
"""

from __future__ import annotations

import ctypes
import errno
import mmap
import os
from collections.abc import Callable

from hectl.storage import directio

TYPE_CHECKING = False  # typing.TYPE_CHECKING would import typing (see hectl.frozen)
if TYPE_CHECKING:
    from hectl.clock import Clock

_c = ctypes
NFS_V3, NFS_V4 = 3, 4
LOCK_OWNER = "/ha/update.lock.owner"
STALE_SLACK = 10.0  # seconds past a lock's deadline before another client breaks it (clock skew between hosts)
_S_IFMT, _S_IFDIR, _S_IFREG, _S_IFLNK = 0o170000, 0o040000, 0o100000, 0o120000
# libnfs 4.0 cannot encode an NFSv4 WRITE of ~4000 bytes or more ("ZDR error: Failed to encode COMPOUND4args"):
# writes go in 2 KiB pieces, in order, so a slot's first sector (its machine-read part) is written whole.
WRITE_CHUNK = 2048
READ_CHUNK = 256 * 1024  # one 8 MB read fails in nfs_service; the server's own limit is 1 MiB anyway


class _Stat(_c.Structure):
    _fields_ = tuple((name, _c.c_uint64) for name in (
        "dev", "ino", "mode", "nlink", "uid", "gid", "rdev", "size", "blksize", "blocks",
        "atime", "mtime", "ctime", "atime_nsec", "mtime_nsec", "ctime_nsec", "used",
    ))  # fmt: skip


class Target:
    """Where the export is: server (an address or name, IPv6 without brackets), export path, NFS version,
    and ``root``, the domain's path on this host (messages name files by it)."""

    def __init__(self, server: str, export: str, version: int, timeout: float, root: str, clock: Clock) -> None:
        self.server, self.export, self.version, self.timeout, self.root = server, export, version, timeout, root
        self.clock = clock  # the lock file's deadlines and waits (the child keeps its parent's clock)


def _load() -> ctypes.CDLL:
    """libnfs with its 4.0 signatures (call only in a child process)."""
    lib = _c.CDLL("libnfs.so.13", use_errno=True)
    p, s, i, u64 = _c.c_void_p, _c.c_char_p, _c.c_int, _c.c_uint64
    pp = _c.POINTER(_c.c_void_p)
    for name, args, res in (
        ("nfs_init_context", [], p),
        ("nfs_get_error", [p], s),
        ("nfs_set_version", [p, i], i),
        ("nfs_set_timeout", [p, i], None),
        ("nfs_mount", [p, s, s], i),
        ("nfs_lstat64", [p, s, _c.POINTER(_Stat)], i),
        ("nfs_open", [p, s, i, pp], i),
        ("nfs_create", [p, s, i, i, pp], i),
        ("nfs_close", [p, p], i),
        ("nfs_pread", [p, p, u64, u64, p], i),
        ("nfs_pwrite", [p, p, u64, u64, p], i),
        ("nfs_ftruncate", [p, p, u64], i),
        ("nfs_fsync", [p, p], i),
        ("nfs_mkdir", [p, s], i),
        ("nfs_rename", [p, s, s], i),
        ("nfs_link", [p, s, s], i),
        ("nfs_unlink", [p, s], i),
    ):
        fn = getattr(lib, name)
        fn.argtypes, fn.restype = args, res
    return lib


class _Session:
    """One mounted export in the child."""

    def __init__(self, target: Target) -> None:
        self.lib = _load()
        self.root = target.root
        self.clock = target.clock
        self.ctx = self.lib.nfs_init_context()
        if not self.ctx:
            raise OSError(errno.ENOMEM, "nfs_init_context failed")
        self.lib.nfs_set_timeout(self.ctx, max(100, int(target.timeout * 1000)))
        self.lib.nfs_set_version(self.ctx, target.version)
        self.check(self.lib.nfs_mount(self.ctx, target.server.encode(), target.export.encode()), f"mount {target.export}")

    def check(self, rc: int, what: str) -> int:
        if rc < 0:
            detail = (self.lib.nfs_get_error(self.ctx) or b"").decode(errors="replace")
            raise OSError(-rc, f"{what}: {detail or os.strerror(-rc)}")
        return rc

    def kind(self, path: str) -> int | None:
        """The file type bits of ``path`` (``lstat``: links are not followed), None when it does not exist."""
        st = _Stat()
        rc = self.lib.nfs_lstat64(self.ctx, path.encode(), _c.byref(st))
        if rc == -errno.ENOENT:
            return None
        self.check(rc, f"stat {path}")
        return int(st.mode) & _S_IFMT

    def walk(self, path: str, *, last: int | None = _S_IFREG, missing_ok: bool = False) -> int | None:
        """Every directory on the way must be a directory, ``path`` itself of type ``last`` (no links)."""
        parts = [p for p in path.split("/") if p]
        kind: int | None = _S_IFDIR
        for depth in range(1, len(parts) + 1):
            here = "/" + "/".join(parts[:depth])
            kind = self.kind(here)
            final = depth == len(parts)
            if kind is None:
                if final and missing_ok:
                    return None
                raise FileNotFoundError(errno.ENOENT, f"{here}: no such file")
            want = last if final else _S_IFDIR
            if want is not None and kind != want:
                what = "a symbolic link" if kind == _S_IFLNK else "not a regular file" if want == _S_IFREG else "not a directory"
                raise directio.Refused(
                    errno.ELOOP, f"{self.root}{here} is {what}; domain files must be regular files inside the domain"
                )
        return kind

    def open(self, path: str, flags: int) -> int:
        fh = _c.c_void_p()
        self.check(self.lib.nfs_open(self.ctx, path.encode(), flags, _c.byref(fh)), f"open {path}")
        return fh.value or 0

    def create(self, path: str, flags: int, mode: int = 0o644) -> int:
        fh = _c.c_void_p()
        self.check(self.lib.nfs_create(self.ctx, path.encode(), flags, mode, _c.byref(fh)), f"create {path}")
        return fh.value or 0

    def pread(self, fh: int, offset: int, length: int, into: int, path: str) -> int:
        done = 0
        while done < length:
            count = min(length - done, READ_CHUNK)
            n = self.check(self.lib.nfs_pread(self.ctx, fh, offset + done, count, into + done), f"read {path}")
            if n == 0:
                break
            done += n
        return done

    def pwrite(self, fh: int, offset: int, data: bytes, path: str) -> int:
        buf = _c.create_string_buffer(data, len(data))
        done = 0
        while done < len(data):
            count = min(len(data) - done, WRITE_CHUNK)
            n = self.lib.nfs_pwrite(self.ctx, fh, offset + done, count, _c.addressof(buf) + done)
            if n <= 0:
                detail = (self.lib.nfs_get_error(self.ctx) or b"").decode(errors="replace") if n < 0 else "no progress"
                err = OSError(-n if n < 0 else errno.EIO, f"write {path}: {detail}")
                err.maybe_written = done > 0 or n < 0  # type: ignore[attr-defined]
                raise err
            done += n
        return done

    def read_small(self, path: str) -> bytes | None:
        """A small file's bytes, None when it does not exist (or stopped existing meanwhile)."""
        if self.kind(path) is None:
            return None
        try:
            fh = self.open(path, os.O_RDONLY)
        except OSError as exc:
            if exc.errno == errno.ENOENT:  # its holder removed it between the lstat and the open
                return None
            raise
        try:
            buf = _c.create_string_buffer(4096)
            n = self.pread(fh, 0, 4096, _c.addressof(buf), path)
            return buf.raw[:n]
        finally:
            self.close(fh)

    def lock(self, timeout: float) -> bytes:
        """Take the update lock file (waiting for it; the parent bounds the wait); return its content, our token."""
        import json
        import socket

        until = self.clock.wall() + 3 * timeout
        token = json.dumps({"host": socket.gethostname(), "pid": os.getpid(), "until": until}).encode()
        # The lock file appears whole or not at all: the token is written to a file of our own, which is then
        # linked to the lock's name (atomic on the server, and it fails when the name exists).
        mine = f"{LOCK_OWNER}.{socket.gethostname()}.{os.getpid()}"
        fh = self.create(mine, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            self.pwrite(fh, 0, token, mine)
            self.check(self.lib.nfs_fsync(self.ctx, fh), f"flush {mine}")
        finally:
            self.close(fh)
        try:
            while True:
                rc = self.lib.nfs_link(self.ctx, mine.encode(), LOCK_OWNER.encode())
                if rc == 0:
                    return token
                if rc != -errno.EEXIST:
                    self.check(rc, f"link {LOCK_OWNER}")
                held = self.read_small(LOCK_OWNER)
                if held is None:  # released meanwhile: try again at once
                    continue
                try:
                    held_until = float(json.loads(held).get("until", 0))
                except (ValueError, TypeError, AttributeError):
                    held_until = 0.0  # foreign: treated as expired
                if self.clock.wall() > held_until + STALE_SLACK:
                    stale = f"{LOCK_OWNER}.stale.{os.getpid()}"
                    if self.lib.nfs_rename(self.ctx, LOCK_OWNER.encode(), stale.encode()) == 0:
                        self.lib.nfs_unlink(self.ctx, stale.encode())
                    continue
                self.clock.sleep(0.05)
        finally:
            self.lib.nfs_unlink(self.ctx, mine.encode())  # the lock's name keeps the file while it is held

    def unlock(self, token: bytes) -> None:
        """Remove the lock file if it is still ours (a breaker may have taken it over)."""
        if self.read_small(LOCK_OWNER) == token:
            self.lib.nfs_unlink(self.ctx, LOCK_OWNER.encode())

    def close(self, fh: int) -> None:
        self.lib.nfs_close(self.ctx, fh)


# --- the operations, each run whole in a bounded child -------------------------------------------------


def _read_into(session: _Session, path: str, offset: int, length: int, buf: mmap.mmap) -> int:
    session.walk(path)
    fh = session.open(path, os.O_RDONLY)
    try:
        return session.pread(fh, offset, length, _c.addressof(_c.c_char.from_buffer(buf)), path)
    finally:
        session.close(fh)


def _replace(session: _Session, path: str, data: bytes, size: int) -> None:
    """``path`` becomes a new regular file holding ``data`` padded with zeros to ``size`` (temporary file + rename)."""
    head, name = path.rsplit("/", 1)
    tmp = f"{head}/.{name}.{os.getpid()}.tmp"
    fh = session.create(tmp, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        session.pwrite(fh, 0, data, tmp)
        if size > len(data):
            session.check(session.lib.nfs_ftruncate(session.ctx, fh, size), f"size {tmp}")
        session.check(session.lib.nfs_fsync(session.ctx, fh), f"flush {tmp}")
    finally:
        session.close(fh)
    if session.kind(path) == _S_IFDIR:
        raise directio.Refused(
            errno.EISDIR, f"{path} is not a regular file; domain files must be regular files inside the domain"
        )
    session.check(session.lib.nfs_rename(session.ctx, tmp.encode(), path.encode()), f"rename {tmp}")


def _make_dirs(session: _Session, path: str) -> None:
    parts = [p for p in path.split("/") if p]
    for depth in range(1, len(parts) + 1):
        here = "/" + "/".join(parts[:depth])
        kind = session.kind(here)
        if kind is None:
            rc = session.lib.nfs_mkdir(session.ctx, here.encode())
            if rc < 0 and rc != -errno.EEXIST:
                session.check(rc, f"mkdir {here}")
        elif kind != _S_IFDIR:
            raise directio.Refused(
                errno.ENOTDIR, f"{here} is not a directory; domain files must be regular files inside the domain"
            )


def _run(
    target: Target, what: str, work: Callable[..., tuple[int, int, list[tuple[int, int]]]], timeout: float
) -> tuple[int, int, list[tuple[int, int]]]:
    return directio.run_in_child(
        lambda report: work(_Session(target), report), timeout, f"{what} nfs://{target.server}{target.export}"
    )


def read(target: Target, path: str, offset: int, length: int, timeout: float) -> directio.IOResult:
    """Read ``length`` bytes at ``offset`` of ``path`` (absolute in the export)."""
    buf = mmap.mmap(-1, max(directio.ALIGN, length))
    try:
        n, flags, ranges = _run(
            target,
            f"read {path} on",
            lambda s, _r: (n := _read_into(s, path, offset, length, buf), directio.DIRECT, [(0, n)]),
            timeout,
        )
        return directio.IOResult(n, [(a, buf[a:b]) for a, b in ranges if a < b], bool(flags & directio.DIRECT))
    finally:
        buf.close()


def write(target: Target, path: str, offset: int, data: bytes, timeout: float) -> directio.IOResult:
    """Write ``data`` at ``offset`` into the existing regular file ``path``."""

    def work(s: _Session, report: Callable[[bytes], None]) -> tuple[int, int, list[tuple[int, int]]]:
        s.walk(path)
        fh = s.open(path, os.O_WRONLY)
        try:
            report(directio.WRITING)
            n = s.pwrite(fh, offset, data, path)
            s.check(s.lib.nfs_fsync(s.ctx, fh), f"flush {path}")
        finally:
            s.close(fh)
        return n, directio.DIRECT | directio.WRITTEN, []

    n, flags, _ = _run(target, f"write {path} on", work, timeout)
    return directio.IOResult(n, [], True, written=bool(flags & directio.WRITTEN))


def create(target: Target, path: str, data: bytes, size: int, timeout: float) -> None:
    """Make ``path`` a new regular file (its directories too), never through a link."""

    def work(s: _Session, _report: Callable[[bytes], None]) -> tuple[int, int, list[tuple[int, int]]]:
        _make_dirs(s, path.rsplit("/", 1)[0])
        _replace(s, path, data, size)
        return len(data), 0, []

    _run(target, f"create {path} on", work, timeout)


def _done(_anything: object) -> tuple[int, int, list[tuple[int, int]]]:
    return 0, 0, []


def make_dirs(target: Target, path: str, timeout: float) -> None:
    _run(target, f"mkdir {path} on", lambda s, _r: _done(_make_dirs(s, path)), timeout)  # type: ignore[func-returns-value]


def check_file(target: Target, path: str, timeout: float) -> None:
    _run(target, f"check {path} on", lambda s, _r: _done(s.walk(path)), timeout)


def probe(target: Target, timeout: float) -> None:
    """The export answers: mounted by libnfs and its root is a directory."""
    _run(target, "probe", lambda s, _r: _done(s.walk("/", last=None)), timeout)


def update(
    target: Target, path: str, offset: int, length: int, change: Callable[[bytes], bytes | None], timeout: float, *, replace: bool
) -> directio.IOResult:
    """Read-modify-write of ``path`` under the update lock file (see above; ``directio.update``'s contract)."""
    buf = mmap.mmap(-1, max(directio.ALIGN, length))

    def work(s: _Session, report: Callable[[bytes], None]) -> tuple[int, int, list[tuple[int, int]]]:
        import signal

        for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):  # the caller decides; this finishes what it began
            signal.signal(signum, signal.SIG_IGN)
        _make_dirs(s, LOCK_OWNER.rsplit("/", 1)[0])
        report(directio.OPENED)
        token = s.lock(timeout)
        report(directio.LOCKED)
        try:
            try:
                n = _read_into(s, path, offset, length, buf)
            except FileNotFoundError:
                if not replace:
                    raise
                n = 0
            try:
                new = change(bytes(buf[:n]))
            except Exception:  # the caller runs ``change`` again on the same bytes and reports what it raises
                new = None
            if new is None:
                return n, directio.DIRECT, [(0, n)]
            report(directio.WRITING)
            if replace:
                _replace(s, path, new, len(new))
            else:
                s.walk(path)
                fh = s.open(path, os.O_WRONLY)
                try:
                    s.pwrite(fh, offset, new, path)
                    s.check(s.lib.nfs_fsync(s.ctx, fh), f"flush {path}")
                finally:
                    s.close(fh)
            return n, directio.DIRECT | directio.WRITTEN, [(0, n)]
        finally:
            s.unlock(token)

    try:
        n, flags, ranges = _run(target, f"update {path} on", work, timeout)
        return directio.IOResult(n, [(a, buf[a:b]) for a, b in ranges if a < b], True, written=bool(flags & directio.WRITTEN))
    finally:
        buf.close()
