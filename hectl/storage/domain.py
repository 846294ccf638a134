"""Create and recognise a storage domain on a connected backend."""

from __future__ import annotations

import json
import uuid
from typing import TYPE_CHECKING

from hectl.errors import ConfigError, StorageError
from hectl.storage import records

if TYPE_CHECKING:
    from hectl.clock import Clock
    from hectl.storage.backend import StorageBackend

DOMAIN_FORMAT = 1


def exists(backend: StorageBackend, path: str, timeout: float) -> bool:
    """Whether the domain file ``path`` exists, asked through the backend (bounded by ``timeout``)."""
    try:
        backend.read(path, 0, 1, timeout)
    except StorageError as exc:
        if exc.errno == 2:  # ENOENT
            return False
        raise
    return True


def init_domain(backend: StorageBackend, clock: Clock, timeout: float, *, force: bool = False) -> dict[str, object]:
    """Lay out an empty domain at the backend's root and return its identity.

    Refuses to touch an existing domain unless ``force`` (which zeroes every
    slot of the metadata file: all hosts and the global record are lost).
    """
    paths = backend.paths()
    if exists(backend, paths.marker, timeout) and not force:
        raise ConfigError(
            f"a hectl domain already exists at {paths.root}", hint="use --force to re-initialise it (erases all records)"
        )
    identity = {
        "format": DOMAIN_FORMAT,
        "uuid": str(uuid.uuid4()),
        "created_at": records.iso_time(clock.wall()),
        "metadata_slots": records.MAX_HOST_ID + 1,
        "slot_size": records.SLOT_SIZE,
    }
    try:
        for d in (paths.config_dir, paths.images_dir):
            backend.make_dirs(d, timeout)
        # Each file is made new and renamed into place: nothing is written through a link planted there.
        backend.create(paths.metadata, b"", records.METADATA_SIZE, timeout)
        backend.create(paths.marker, (json.dumps(identity, indent=2) + "\n").encode(), 0, timeout)
    except StorageError as exc:
        raise StorageError(f"cannot create the domain at {paths.root}: {exc.message}", hint=exc.hint) from exc
    # Prove the new file takes direct I/O (or learn that it falls back) right away.
    backend.read(paths.metadata, 0, records.SLOT_SIZE, timeout)
    return identity
