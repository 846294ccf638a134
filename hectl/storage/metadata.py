"""Read and write the metadata file of a storage domain through its backend.

One whole-slot write per update; never a read-modify-write of another host's
slot. Reads take the whole file in one direct I/O and classify every slot.
"""

from __future__ import annotations

import errno

from hectl.errors import NotDeployed, StorageError
from hectl.frozen import Frozen
from hectl.storage import directio, records

TYPE_CHECKING = False  # typing.TYPE_CHECKING would import typing (see hectl.frozen)
if TYPE_CHECKING:
    from collections.abc import Callable

    from hectl.clock import Clock
    from hectl.storage.backend import StorageBackend


class MetadataSnapshot(Frozen):
    """Every slot of the metadata file as read at one moment."""

    slots: dict[int, records.Slot]  # non-empty slots only; see slot()
    size: int
    direct_io: bool
    read_ms: float
    read_at_mono: float
    read_at_wall: float

    def slot(self, index: int) -> records.Slot:
        return self.slots.get(index) or records.Slot(index, records.SlotKind.EMPTY)

    @property
    def global_record(self) -> records.GlobalRecord:
        rec = self.slot(0).record
        return rec if isinstance(rec, records.GlobalRecord) else records.GlobalRecord()

    @property
    def truncated(self) -> bool:
        return self.size < records.METADATA_SIZE

    def truncation(self) -> str:
        """What a truncated file hides, in words ('' when whole): never read as "fewer hosts"."""
        if not self.truncated:
            return ""
        # The first slot whose record sector is not wholly in the file (details cut short are harmless).
        first = (self.size - records.SECTOR_SIZE) // records.SLOT_SIZE + 1 if self.size >= records.SECTOR_SIZE else 0
        what = "the global record and every host slot are" if first == 0 else f"host slots {first} to {records.MAX_HOST_ID} are"
        return (
            f"metadata file truncated ({self.size} of {records.METADATA_SIZE} bytes): {what} missing, those hosts cannot be seen"
        )

    def host_slots(self) -> tuple[records.Slot, ...]:
        """Host slots that are not empty, by host id."""
        return tuple(s for i, s in sorted(self.slots.items()) if i)


class MetadataStore:
    """The metadata file of one domain, reached through ``backend`` with hard timeouts."""

    def __init__(self, backend: StorageBackend, clock: Clock, timeout: float) -> None:
        self.backend = backend
        self.clock = clock
        self.timeout = timeout

    @property
    def path(self) -> str:
        return self.backend.paths().metadata

    def _read(self, offset: int, length: int) -> directio.IOResult:
        try:
            return self.backend.read(self.path, offset, length, self.timeout)
        except StorageError as exc:
            if exc.errno != errno.ENOENT:
                raise
        # Missing: is the storage not there (connect() says what is wrong), or the domain not deployed?
        self.backend.connect(self.timeout)
        try:
            return self.backend.read(self.path, offset, length, self.timeout)
        except StorageError as exc:
            if exc.errno == errno.ENOENT:
                raise NotDeployed(
                    f"no hectl domain at {self.backend.root()} ({self.path} is missing)", hint="deploy one first"
                ) from None
            raise

    def read_all(self, max_host_id: int = records.MAX_HOST_ID) -> MetadataSnapshot:
        start = self.clock.monotonic()
        result = self._read(0, records.SLOT_SIZE * (max_host_id + 1))
        end = self.clock.monotonic()
        return MetadataSnapshot(
            slots=records.decode_metadata(result.extents, result.size, max_host_id),
            size=result.size,
            direct_io=result.direct,
            read_ms=round((end - start) * 1000.0, 3),
            read_at_mono=end,
            read_at_wall=self.clock.wall(),
        )

    def read_slot(self, index: int) -> records.Slot:
        _check_index(index)
        result = self._read(index * records.SLOT_SIZE, records.SLOT_SIZE)
        return records.decode_slot(index, result.data)

    def write_host(self, record: records.HostRecord) -> bool:
        """Write ``record`` into its own slot; return whether O_DIRECT was used."""
        return self._write(record.host_id, records.encode_host(record))

    def write_global(self, record: records.GlobalRecord) -> bool:
        return self._write(0, records.encode_global(record))

    def update_global(self, change: Callable[[records.Slot], records.GlobalRecord | None]) -> directio.IOResult:
        """Read slot 0, apply ``change`` (pure; ``None``: leave it) and write the result, under the domain's update lock.

        The result's ``data`` is slot 0 as it was read: ``change(decode_slot(0, data))`` is what was written.
        """

        def on_bytes(old: bytes) -> bytes | None:
            new = change(records.decode_slot(0, old))
            return None if new is None else records.encode_global(new)

        try:
            return self.backend.update(self.path, 0, records.SLOT_SIZE, on_bytes, self.timeout)
        except StorageError as exc:
            if exc.errno != errno.ENOENT:
                raise
            self._read(0, records.SECTOR_SIZE)  # says "not deployed" or what is missing
            raise

    def clear_slot(self, index: int) -> bool:
        _check_index(index)
        return self._write(index, bytes(records.SLOT_SIZE))

    def _write(self, index: int, slot: bytes) -> bool:
        if len(slot) != records.SLOT_SIZE:
            raise StorageError(f"refusing to write {len(slot)} bytes into a {records.SLOT_SIZE}-byte slot")
        return self.backend.write(self.path, index * records.SLOT_SIZE, slot, self.timeout).direct

    def next_seq(self, host_id: int) -> int:
        """The sequence number a fresh writer of ``host_id`` should use next."""
        slot = self.read_slot(host_id)
        rec = slot.record
        return (rec.seq + 1) % 2**64 if isinstance(rec, records.HostRecord) else 1


def _check_index(index: int) -> None:
    if not 0 <= index <= records.MAX_HOST_ID:
        raise ValueError(f"slot index {index} outside 0..{records.MAX_HOST_ID}")
