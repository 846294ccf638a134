"""Create and recognise a storage domain on a connected backend."""

from __future__ import annotations

import json
import os
import uuid
from typing import TYPE_CHECKING

from hectl.errors import ConfigError, StorageError
from hectl.storage import records

if TYPE_CHECKING:
    from hectl.clock import Clock
    from hectl.storage.backend import StorageBackend

DOMAIN_FORMAT = 1


def init_domain(backend: StorageBackend, clock: Clock, timeout: float, *, force: bool = False) -> dict[str, object]:
    """Lay out an empty domain at the backend's root and return its identity.

    Refuses to touch an existing domain unless ``force`` (which zeroes every
    slot of the metadata file: all hosts and the global record are lost).
    """
    paths = backend.paths()
    if os.path.exists(paths.marker) and not force:
        raise ConfigError(
            f"a hectl domain already exists at {paths.root}", hint="use --force to re-initialise it (erases all records)"
        )
    try:
        for d in (os.path.dirname(paths.metadata), paths.config_dir, paths.images_dir):
            os.makedirs(d, mode=0o755, exist_ok=True)
        with open(paths.metadata, "wb") as f:
            f.truncate(0)
            f.truncate(records.METADATA_SIZE)
        identity = {
            "format": DOMAIN_FORMAT,
            "uuid": str(uuid.uuid4()),
            "created_at": records.iso_time(clock.wall()),
            "metadata_slots": records.MAX_HOST_ID + 1,
            "slot_size": records.SLOT_SIZE,
        }
        tmp = paths.marker + ".tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(identity, f, indent=2)
            f.write("\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, paths.marker)
    except OSError as exc:
        raise StorageError(f"cannot create the domain at {paths.root}: {exc.strerror}") from exc
    # Prove the new file takes direct I/O (or learn that it falls back) right away.
    backend.read(paths.metadata, 0, records.SLOT_SIZE, timeout)
    return identity
