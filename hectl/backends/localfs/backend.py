"""A storage domain in a local directory: for single-host set-ups, demos and tests.

Any already-mounted shared filesystem also works through it, but the dedicated
backends add what sharing needs (mounting, quorum and failover checks).
"""

from __future__ import annotations

import os

from hectl.errors import ConfigError, StorageError
from hectl.storage import directio
from hectl.storage.backend import StorageBackend

TYPE_CHECKING = False  # typing.TYPE_CHECKING would import typing (see hectl.frozen)
if TYPE_CHECKING:
    from collections.abc import Mapping

    from hectl.clock import Clock
    from hectl.storage.doctor import Finding


class LocalFSBackend(StorageBackend):
    """``[storage] type = localfs``, ``path = /absolute/dir``."""

    name = "localfs"
    libvirt_sees_shared = False
    KEYS = frozenset({"path"})

    def __init__(self, options: Mapping[str, str], clock: Clock) -> None:
        super().__init__(options, clock)
        unknown = sorted(set(options) - self.KEYS)
        if unknown:
            raise ConfigError(f"[storage] unknown key '{unknown[0]}' for type localfs (known: path)")
        path = options.get("path", "")
        if not path:
            raise ConfigError("[storage] path is required for type localfs (the domain directory)")
        if not os.path.isabs(path) or "\0" in path:
            raise ConfigError(f"[storage] path = {path!r}: must be an absolute path")
        self._root = os.path.normpath(path)

    def connect(self, timeout: float) -> None:
        """Check (within ``timeout``) that the directory exists: there is nothing to mount."""
        kind = directio.path_kind(self._root, timeout)
        if kind != "dir":
            what = "does not exist" if kind is None else "is not a directory"
            raise StorageError(f"domain directory {self._root} {what}")

    def disconnect(self, timeout: float) -> None:
        """Nothing to undo."""

    def is_connected(self) -> bool:
        return True  # nothing to set up: the first I/O (or connect()) finds out whether the directory is there

    def root(self) -> str:
        return self._root

    def checks(self, timeout: float, io_timeout: float) -> list[Finding]:
        from hectl.backends.localfs.checks import checks

        return checks(self, timeout, io_timeout)
