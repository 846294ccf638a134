"""Mount-free reads of a Gluster volume through libgfapi (a small ctypes binding, GlusterFS 10 signatures).

PyPI's ``gfapi`` 1.2 does not import on Python 3.11 and declares outdated
signatures (``glfs_pread`` and friends take stat pointers since GFAPI_6.0).

Bounded I/O: a gfapi instance is not fork-safe and ``glfs_fini`` takes ~10 s,
so the parent process never loads the library. Each read runs whole in a
forked child of hectl's bounded I/O (``hectl.storage.directio``): the child
loads libgfapi, runs ``glfs_new`` .. ``glfs_init`` .. ``glfs_pread`` into the
shared buffer, reports and leaves with ``os._exit`` (no ``glfs_fini``). The
parent waits at most the timeout and kills and abandons a child that has not
answered, so a hung volume never holds a command past its ``--timeout``.
"""

from __future__ import annotations

import ctypes
import mmap
import os

from hectl.storage import directio

_SEEK_DATA = 3
_SEEK_HOLE = 4
_c = ctypes


def _load() -> ctypes.CDLL:
    """libgfapi with the signatures of GlusterFS 10 (call only in a child process)."""
    lib = _c.CDLL("libgfapi.so.0", use_errno=True)
    p, s, i, i64 = _c.c_void_p, _c.c_char_p, _c.c_int, _c.c_int64
    for name, args, res in (
        ("glfs_new", [s], p),
        ("glfs_set_volfile_server", [p, s, s, i], i),
        ("glfs_init", [p], i),
        ("glfs_open", [p, s, i], p),
        ("glfs_lstat", [p, s, p], i),
        ("glfs_pread", [p, p, _c.c_size_t, i64, i, p], _c.c_ssize_t),  # fd, buf, count, offset, flags, poststat
        ("glfs_lseek", [p, i64, i], i64),
        ("glfs_close", [p], i),
    ):
        fn = getattr(lib, name)
        fn.argtypes, fn.restype = args, res
    return lib


# st_mode's offset in struct stat (glfs_lstat fills the platform's struct stat)
_MODE_OFFSET = {"x86_64": 24, "aarch64": 16}
_S_IFMT, _S_IFDIR, _S_IFREG = 0o170000, 0o040000, 0o100000


def _check_path(lib: ctypes.CDLL, fs: int, path: str) -> None:
    """Refuse ``path`` unless every directory on the way is a directory and it is a regular file (no links)."""
    offset = _MODE_OFFSET.get(os.uname().machine)
    if offset is None:
        raise OSError(95, f"libgfapi reads are not supported on {os.uname().machine}")  # EOPNOTSUPP
    buf = _c.create_string_buffer(256)  # larger than struct stat on every Linux ABI
    parts = [p for p in path.split("/") if p]
    for depth in range(1, len(parts) + 1):
        here = "/" + "/".join(parts[:depth])
        if lib.glfs_lstat(fs, here.encode(), buf) != 0:
            raise _fail(f"stat {here}")
        mode = int.from_bytes(buf.raw[offset : offset + 4], "little") & _S_IFMT
        want = _S_IFREG if depth == len(parts) else _S_IFDIR
        if mode != want:
            kind = "a symbolic link" if mode == 0o120000 else "not a regular file" if want == _S_IFREG else "not a directory"
            raise directio.Refused(40, f"{here} is {kind}; domain files must be regular files inside the domain")  # ELOOP


def _fail(what: str) -> OSError:
    err = _c.get_errno() or 5  # EIO when libgfapi did not say
    return OSError(err, f"{what}: {os.strerror(err)}")


def _data_ranges(lib: ctypes.CDLL, fd: int, offset: int, end: int) -> list[tuple[int, int]]:
    """The data extents of [offset, end) (SEEK_DATA/SEEK_HOLE; all of it where unsupported)."""
    ranges, pos = [], offset
    while pos < end:
        start = lib.glfs_lseek(fd, pos, _SEEK_DATA)
        if start < 0:
            if _c.get_errno() == 6:  # ENXIO: no data after pos
                break
            return [(offset, end)]
        if start >= end:
            break
        stop = min(lib.glfs_lseek(fd, start, _SEEK_HOLE), end)
        if stop <= start:
            return [(offset, end)]
        ranges.append((start, stop))
        pos = stop
    return ranges


def _child_read(
    volume: str, servers: tuple[str, ...], path: str, offset: int, length: int, buf: mmap.mmap
) -> tuple[int, int, list[tuple[int, int]]]:
    lib = _load()
    fs = lib.glfs_new(volume.encode())
    if not fs:
        raise _fail("glfs_new")
    for server in servers:
        lib.glfs_set_volfile_server(fs, b"tcp", server.strip("[]").encode(), 24007)
    if lib.glfs_init(fs) != 0:
        raise _fail(f"connect to volume {volume}")
    _check_path(lib, fs, path)
    fd = lib.glfs_open(fs, path.encode(), os.O_RDONLY | os.O_DIRECT | os.O_NOFOLLOW)
    if not fd:
        raise _fail(f"open {path}")
    size = lib.glfs_lseek(fd, 0, os.SEEK_END)
    if size < 0:
        raise _fail(f"size of {path}")
    end = min(offset + length, size)
    base = _c.addressof(_c.c_char.from_buffer(buf))
    filled = []
    for start, stop in _data_ranges(lib, fd, offset, end):
        a = start // directio.ALIGN * directio.ALIGN  # O_DIRECT alignment
        b = min(-(-stop // directio.ALIGN) * directio.ALIGN, offset + length)
        done = 0
        while done < b - a:
            n = lib.glfs_pread(fd, base + a - offset + done, b - a - done, a + done, 0, None)
            if n < 0:
                raise _fail(f"read {path}")
            if n == 0:
                break
            done += n
        filled.append((a - offset, a - offset + done))
    lib.glfs_close(fd)
    return max(0, end - offset), directio.DIRECT, filled  # no glfs_fini: the child leaves with os._exit


def read(volume: str, servers: tuple[str, ...], path: str, offset: int, length: int, timeout: float) -> directio.IOResult:
    """Read ``length`` bytes at ``offset`` of ``path`` (absolute in the volume) within ``timeout`` seconds."""
    buf = mmap.mmap(-1, max(directio.ALIGN, -(-length // directio.ALIGN) * directio.ALIGN))
    try:
        n, flags, ranges = directio.run_in_child(
            lambda report: _child_read(volume, servers, path, offset, length, buf), timeout, f"read gluster://{volume}{path}"
        )
        return directio.IOResult(n, [(a, buf[a : min(b, n)]) for a, b in ranges if a < n], bool(flags & directio.DIRECT))
    finally:
        buf.close()
