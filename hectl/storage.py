"""The storage-backend interface every backend plugin implements, and the domain layout.

A storage domain is a directory tree that a backend makes available on this
host (a local directory, an NFS export, a Gluster volume...). Its layout is
fixed here; docs/storage-format.md describes it for humans.
"""

from __future__ import annotations

import abc
import os

from hectl import directio
from hectl.frozen import Frozen

TYPE_CHECKING = False  # typing.TYPE_CHECKING would import typing (see hectl.frozen)
if TYPE_CHECKING:
    from collections.abc import Mapping

    from hectl.clock import Clock

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

    def __init__(self, options: Mapping[str, str], clock: Clock) -> None:
        self.options = dict(options)
        self.clock = clock

    @abc.abstractmethod
    def connect(self, timeout: float) -> None:
        """Make the domain reachable on this host (mount...). Idempotent."""

    @abc.abstractmethod
    def disconnect(self, timeout: float) -> None:
        """Undo ``connect``. Idempotent."""

    @abc.abstractmethod
    def is_connected(self) -> bool:
        """Whether ``paths()`` currently lead to the domain (fast, no storage I/O)."""

    @abc.abstractmethod
    def root(self) -> str:
        """The local path of the domain root while connected."""

    def paths(self) -> DomainPaths:
        return DomainPaths.under(self.root())

    def describe(self) -> dict[str, object]:
        """Plain data for status output (no secrets)."""
        return {"type": self.name, "root": self.root()}

    def read(self, path: str, offset: int, length: int, timeout: float) -> directio.IOResult:
        """Direct, bounded read of a domain file (backends without a local path override this)."""
        return directio.read(path, offset, length, timeout)

    def write(self, path: str, offset: int, data: bytes, timeout: float) -> directio.IOResult:
        """Direct, bounded write of whole sectors to a domain file."""
        return directio.write(path, offset, data, timeout)

    def health(self, timeout: float) -> BackendHealth:
        """Probe the domain: a timed read of the metadata file's first slot."""
        if not self.is_connected():
            return BackendHealth(False, "not connected")
        start = self.clock.monotonic()
        result = self.read(self.paths().metadata, 0, 4096, timeout)
        ms = (self.clock.monotonic() - start) * 1000.0
        return BackendHealth(True, "metadata readable", round(ms, 3), result.direct)
