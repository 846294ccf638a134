"""The storage-backend interface every backend plugin implements, and the domain layout.

A storage domain is a directory tree that a backend makes available on this
host (a local directory, an NFS export, a Gluster volume...). Its layout is
fixed here; docs/storage-format.md describes it for humans.
"""

from __future__ import annotations

import abc
import os

from hectl.errors import StorageError
from hectl.frozen import Frozen
from hectl.storage import directio

TYPE_CHECKING = False  # typing.TYPE_CHECKING would import typing (see hectl.frozen)
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from hectl.clock import Clock
    from hectl.storage.doctor import Finding, Stall

DOMAIN_MARKER = "hectl-domain.json"
METADATA_FILE = "ha/metadata"
LOCKSPACE_FILE = "ha/lockspace"
ENGINE_LEASE_FILE = "ha/engine.lease"
CONFIG_DIR = "config"
IMAGES_DIR = "images"
LOCKSPACE_NAME = "hectl"
ENGINE_LEASE_NAME = "engine"


class DomainPaths(Frozen):
    """Where the domain's files are on this host."""

    root: str
    marker: str
    metadata: str
    lockspace: str
    engine_lease: str
    config_dir: str
    images_dir: str

    @classmethod
    def under(cls, root: str) -> DomainPaths:
        j = os.path.join
        return cls(
            root=root,
            marker=j(root, DOMAIN_MARKER),
            metadata=j(root, METADATA_FILE),
            lockspace=j(root, LOCKSPACE_FILE),
            engine_lease=j(root, ENGINE_LEASE_FILE),
            config_dir=j(root, CONFIG_DIR),
            images_dir=j(root, IMAGES_DIR),
        )


class BackendHealth(Frozen):
    """Result of a backend health probe."""

    ok: bool
    detail: str
    latency_ms: float | None = None
    direct_io: bool | None = None


class StorageBackend(abc.ABC):
    """A way to reach a storage domain from this host.

    Constructed by the factory a plugin registers (``factory(options, clock)``),
    which validates the ``[storage]`` options and raises ``ConfigError`` naming
    the bad key. Constructors do no I/O. Every method that touches storage takes
    a hard ``timeout`` in seconds and raises ``StorageError``/``StorageTimeout``.
    """

    name: str = ""
    libvirt_sees_shared: bool = True
    """libvirt recognises the domain's mount as shared storage (NFS, GlusterFS FUSE), so a live migration of
    the engine needs no ``VIR_MIGRATE_UNSAFE``. A backend on a plain directory sets False: libvirt cannot tell
    it is shared, and hectl vouches for it (every host of a domain sees the same files by definition)."""

    def __init__(self, options: Mapping[str, str], clock: Clock) -> None:
        self.options = dict(options)
        self.clock = clock

    @abc.abstractmethod
    def connect(self, timeout: float) -> None:
        """Make the domain reachable on this host (mount...) and check that it is. Idempotent.

        Also called when an I/O finds a domain file missing, to tell "not
        deployed" from "storage not there": it raises ``StorageError`` saying
        what is missing.
        """

    @abc.abstractmethod
    def disconnect(self, timeout: float) -> None:
        """Undo ``connect``. Idempotent."""

    @abc.abstractmethod
    def is_connected(self) -> bool:
        """Whether I/O may go ahead without ``connect()`` first (fast, no storage I/O).

        A backend with nothing to set up (a local directory) answers True and
        lets the first I/O find out whether the domain is there.
        """

    @abc.abstractmethod
    def root(self) -> str:
        """The local path of the domain root while connected."""

    def paths(self) -> DomainPaths:
        return DomainPaths.under(self.root())

    def describe(self) -> dict[str, object]:
        """Plain data for status output (no secrets)."""
        return {"type": self.name, "root": self.root()}

    # Domain file I/O. Every path is a file of the domain (``paths()``); each is reached from the
    # root without following links and must be a regular file, or ``StorageError`` names it.
    # Backends without a local path (userspace NFS or Gluster clients) override these.

    def read(self, path: str, offset: int, length: int, timeout: float) -> directio.IOResult:
        """Direct, bounded read of a domain file."""
        return directio.read(path, offset, length, timeout, root=self.root())

    def write(self, path: str, offset: int, data: bytes, timeout: float) -> directio.IOResult:
        """Direct, bounded write of whole sectors into an existing domain file."""
        return directio.write(path, offset, data, timeout, root=self.root())

    def update(
        self,
        path: str,
        offset: int,
        length: int,
        change: Callable[[bytes], bytes | None],
        timeout: float,
        *,
        replace: bool = False,
    ) -> directio.IOResult:
        """Read-modify-write under the domain's exclusive update lock (see ``directio.update``).

        ``LockHeld`` when the lock is not obtained within ``timeout``;
        ``directio.WriteUncertain`` when the write may or may not have landed.
        """
        return directio.update(path, offset, length, change, timeout, root=self.root(), replace=replace)

    def make_dirs(self, path: str, timeout: float) -> None:
        """Create the missing directories down to ``path`` (a directory of the domain), never through a link."""
        directio.make_dirs(self.root(), directio.split(self.root(), path)[1], timeout)

    def create(self, path: str, data: bytes, size: int, timeout: float) -> None:
        """Atomically make ``path`` a new regular file (``data``, zeros up to ``size``); its directories too."""
        if os.path.dirname(path) != self.root():
            self.make_dirs(os.path.dirname(path), timeout)
        directio.create(path, data, size, timeout, root=self.root())

    def check_file(self, path: str, timeout: float) -> None:
        """``StorageError`` unless ``path`` is a regular file inside the domain (for files handed on by path, to sanlock)."""
        directio.check_file(path, timeout, root=self.root())

    def health(self, timeout: float) -> BackendHealth:
        """Probe the domain: a timed read of the metadata file's first slot; never raises."""
        start = self.clock.monotonic()
        try:
            if not self.is_connected():
                self.connect(timeout)
            result = self.read(self.paths().metadata, 0, 4096, timeout)
        except StorageError as exc:
            return BackendHealth(False, exc.message)
        ms = (self.clock.monotonic() - start) * 1000.0
        return BackendHealth(True, "metadata readable", round(ms, 3), result.direct)

    def checks(self, timeout: float, io_timeout: float) -> list[Finding]:
        """This backend's own findings for ``hectl storage check``, called once the metadata was read.

        The backend is not necessarily connected: connect first if the checks need the mount.

        ``io_timeout`` is sanlock's, to weigh latencies against. Bounded by
        ``timeout`` per operation; may raise ``StorageError``. None by default.
        """
        return []

    def stall_budget(self, timeout: float) -> list[Stall]:
        """The longest I/O stall each layer under this backend can cause (Gluster ping-timeout, NFS grace...).

        ``hectl storage check`` weighs each against sanlock's limits. None by default.
        """
        return []

    def on_local_maintenance(self, on: bool, timeout: float) -> str:
        """This host went into local maintenance (``on``) or left it: hand over what the storage layer runs here
        (a floating address...). Returns what was done, in words ('' for nothing). Nothing by default."""
        return ""


def manual(backend: StorageBackend, action: str, timeout: float) -> dict[str, object]:
    """``hectl storage connect|disconnect``: do ``action`` (idempotent) and say whether anything changed."""
    before = backend.is_connected()
    if action == "connect":
        backend.connect(timeout)
    else:
        backend.disconnect(timeout)
    after = backend.is_connected()
    return {"action": action, "changed": before != after, "connected": after, "storage": backend.describe()}
