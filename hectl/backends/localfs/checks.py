"""``hectl storage check`` for a localfs domain: the sanlock files, free space, a timed direct write."""

from __future__ import annotations

import errno
import os

from hectl.errors import StorageError, StorageTimeout
from hectl.storage import directio
from hectl.storage.doctor import FAIL, OK, WARN, Finding, latency_finding

TYPE_CHECKING = False  # typing.TYPE_CHECKING would import typing (see hectl.frozen)
if TYPE_CHECKING:
    from hectl.backends.localfs.backend import LocalFSBackend

PROBE_FILE = "ha/storage-check.probe"  # written by `hectl storage check` to time a direct write
FREE_WARN = 2**30
FREE_FAIL = 64 * 2**20


def checks(backend: LocalFSBackend, timeout: float, io_timeout: float) -> list[Finding]:
    """Findings for ``backend``'s domain; every operation bounded by ``timeout``."""
    paths = backend.paths()
    out = [
        _lease_file(backend, name, path, timeout)
        for name, path in (("lockspace", paths.lockspace), ("engine-lease", paths.engine_lease))
    ]
    out.append(_free_space(paths.root, directio.free_bytes(paths.root, timeout)))
    probe = os.path.join(paths.root, PROBE_FILE)
    backend.create(probe, b"", directio.ALIGN, timeout)  # a new file, renamed into place: never through a planted link
    start = backend.clock.monotonic()
    backend.write(probe, 0, bytes(directio.ALIGN), timeout)
    ms = (backend.clock.monotonic() - start) * 1000.0
    out.append(latency_finding("write-latency", f"a direct write to {probe}", ms, io_timeout))
    return out


def _lease_file(backend: LocalFSBackend, name: str, path: str, timeout: float) -> Finding:
    try:
        backend.check_file(path, timeout)  # sanlock gets it by path: a regular file inside the domain, not a link
        return Finding(name, OK, f"{path} is a regular file")
    except StorageError as exc:
        if isinstance(exc, StorageTimeout):
            raise
        what = f"{path} is missing" if exc.errno == errno.ENOENT else exc.message
    why = "sanlock keeps the host ids and the engine VM's lease there: no agent can join, no host can start the engine"
    return Finding(name, FAIL, what, why, "hectl deploy   (writes the lockspace and the engine lease)")


def _free_space(root: str, free: int) -> Finding:
    what = f"{free / 2**30:.1f} GiB free on the domain's filesystem"
    if free < FREE_FAIL:
        return Finding(
            "free-space",
            FAIL,
            what,
            "writes to the domain (metadata, configuration, the engine disk) fail",
            f"free space under {root}",
        )
    if free < FREE_WARN:
        return Finding("free-space", WARN, what, "the engine disk and the configuration may not fit", f"free space under {root}")
    return Finding("free-space", OK, what)
