"""hectl's on-storage records: encode and decode the slots of the metadata file.

The metadata file is an array of 4096-byte slots: slot 0 holds the global record
(cluster-wide maintenance), slot N the record of host id N (1..2000). The first
512-byte sector of a slot is the machine-read record, protected by a CRC32; the
rest of the slot is human-readable detail. docs/storage-format.md is the
normative description; this module is its implementation.

Decoding never raises: every slot is classified (``SlotKind``) so that a corrupt
or foreign slot can be reported and can never count as a live host.
"""

from __future__ import annotations

import struct
import zlib

from hectl.frozen import Frozen

SLOT_SIZE = 4096
SECTOR_SIZE = 512
MAX_HOST_ID = 2000
METADATA_SIZE = SLOT_SIZE * (MAX_HOST_ID + 1)

FORMAT_VERSION = 1
"""Version this code writes and fully understands."""

HOST_MAGIC = b"HECTLHST"
GLOBAL_MAGIC = b"HECTLGLB"
CRC_OFFSET = SECTOR_SIZE - 4

# magic, version, min_reader_version: at these offsets in every version, forever.
_PREFIX = struct.Struct("!8sHH")
# host record fixed part after the prefix: host_id, seq, wall_ms, score, flags
_HOST_FIXED = struct.Struct("!HQqiB")
# global record fixed part after the prefix: seq, flags, set_at_ms, expires_at_ms
_GLOBAL_FIXED = struct.Struct("!QBqq")
_CRC = struct.Struct("!I")
_ZERO_SECTOR = bytes(SECTOR_SIZE)

HOST_FLAG_LOCAL_MAINTENANCE = 0x01
HOST_FLAG_STOPPED = 0x02
GLOBAL_FLAG_MAINTENANCE = 0x01

# Byte limits of the variable fields (UTF-8), in on-storage order.
HOST_TEXT_LIMITS = (
    ("state", 32),
    ("engine_vm", 16),
    ("engine_health", 16),
    ("engine_detail", 48),
    ("engine_reason", 96),
    ("hostname", 253),
)
GLOBAL_TEXT_LIMITS = (("set_by", 128), ("reason", 255))
# Free text is shortened to fit; identifiers and hostnames must fit as given.
_TRUNCATABLE = frozenset({"engine_detail", "engine_reason", "reason", "set_by"})


class SlotKind:
    """How a reader classified a slot."""

    EMPTY = "empty"
    VALID = "valid"
    CORRUPT = "corrupt"
    TOO_NEW = "version-too-new"
    WRONG_HOST_ID = "wrong-host-id"


class EngineStatus(Frozen):
    """What a host says about the engine VM on itself."""

    vm: str = "unknown"  # up | down | down-unexpected | unknown ...
    health: str = "unknown"  # good | bad | unknown
    detail: str = ""  # e.g. libvirt state "running", "paused"
    reason: str = ""  # free text explaining vm/health


class HostRecord(Frozen):
    """The machine-read part of one host's slot."""

    host_id: int
    seq: int
    wall_time: float
    score: int
    state: str
    engine: EngineStatus
    hostname: str
    local_maintenance: bool = False
    stopped: bool = False
    details: tuple[str, ...] = ()  # human-readable lines (bytes 512..4095); never decided upon


class GlobalRecord(Frozen):
    """Slot 0: cluster-wide state."""

    seq: int = 0
    maintenance: bool = False
    reason: str = ""
    set_by: str = ""
    set_at: float = 0.0
    expires_at: float | None = None

    def maintenance_active(self, now_wall: float) -> bool:
        """Global maintenance in force at wall time ``now_wall`` (expired TTL no longer counts)."""
        return self.maintenance and not self.maintenance_expired(now_wall)

    def maintenance_expired(self, now_wall: float) -> bool:
        return self.maintenance and self.expires_at is not None and now_wall >= self.expires_at


class Slot(Frozen):
    """One decoded slot: its number (0 global, else the host id), kind, record when valid, and what was wrong."""

    number: int
    kind: str
    record: HostRecord | GlobalRecord | None = None
    problem: str = ""
    version: int | None = None


class EncodeError(ValueError):
    """A record cannot be represented in the on-storage format."""


def _encode_texts(limits: tuple[tuple[str, int], ...], values: dict[str, str]) -> bytes:
    out = bytearray()
    for name, limit in limits:
        raw = values[name].encode("utf-8")
        if len(raw) > limit:
            if name not in _TRUNCATABLE:
                raise EncodeError(f"{name} is {len(raw)} bytes; at most {limit} fit")
            raw = raw[:limit].decode("utf-8", "ignore").encode("utf-8")
        out.append(len(raw))
        out += raw
    return bytes(out)


def _seal(sector: bytearray) -> None:
    sector[CRC_OFFSET:SECTOR_SIZE] = _CRC.pack(zlib.crc32(bytes(sector[:CRC_OFFSET])))


def _finish_slot(first: bytes, details: tuple[str, ...]) -> bytes:
    if len(first) > CRC_OFFSET:
        raise EncodeError("record does not fit in its sector")
    sector = bytearray(SECTOR_SIZE)
    sector[: len(first)] = first
    _seal(sector)
    text = "".join(line.replace("\n", " ") + "\n" for line in details).encode("utf-8")
    text = text[: SLOT_SIZE - SECTOR_SIZE]
    return bytes(sector) + text + bytes(SLOT_SIZE - SECTOR_SIZE - len(text))


def _ms(seconds: float) -> int:
    return round(seconds * 1000)


def encode_host(record: HostRecord) -> bytes:
    """The full 4096-byte slot for ``record``."""
    if not 1 <= record.host_id <= MAX_HOST_ID:
        raise EncodeError(f"host id {record.host_id} is outside 1..{MAX_HOST_ID}")
    if not 0 <= record.seq < 2**64:
        raise EncodeError("sequence number out of range")
    if not -(2**31) <= record.score < 2**31:
        raise EncodeError("score out of range")
    _check_time("wall_time", record.wall_time)
    flags = (HOST_FLAG_LOCAL_MAINTENANCE if record.local_maintenance else 0) | (HOST_FLAG_STOPPED if record.stopped else 0)
    texts = _encode_texts(
        HOST_TEXT_LIMITS,
        {
            "state": record.state,
            "engine_vm": record.engine.vm,
            "engine_health": record.engine.health,
            "engine_detail": record.engine.detail,
            "engine_reason": record.engine.reason,
            "hostname": record.hostname,
        },
    )
    first = (
        _PREFIX.pack(HOST_MAGIC, FORMAT_VERSION, FORMAT_VERSION)
        + _HOST_FIXED.pack(record.host_id, record.seq, _ms(record.wall_time), record.score, flags)
        + texts
    )
    return _finish_slot(first, record.details)


def _check_time(name: str, value: float) -> None:
    if not -(2**62) < value * 1000 < 2**62:  # NaN fails too
        raise EncodeError(f"{name} out of range")


def encode_global(record: GlobalRecord) -> bytes:
    """The full 4096-byte slot 0 for ``record`` (``expires_at`` of 0 or None: no expiry)."""
    if not 0 <= record.seq < 2**64:
        raise EncodeError("sequence number out of range")
    _check_time("set_at", record.set_at)
    if record.expires_at is not None:
        _check_time("expires_at", record.expires_at)
    flags = GLOBAL_FLAG_MAINTENANCE if record.maintenance else 0
    expires = _ms(record.expires_at) if record.expires_at is not None else 0
    texts = _encode_texts(GLOBAL_TEXT_LIMITS, {"set_by": record.set_by, "reason": record.reason})
    first = (
        _PREFIX.pack(GLOBAL_MAGIC, FORMAT_VERSION, FORMAT_VERSION)
        + _GLOBAL_FIXED.pack(record.seq, flags, _ms(record.set_at), expires)
        + texts
    )
    return _finish_slot(first, _global_details(record))


def _global_details(record: GlobalRecord) -> tuple[str, ...]:
    lines = [f"hectl global record v{FORMAT_VERSION}", f"seq={record.seq}"]
    lines.append(f"maintenance={'global' if record.maintenance else 'none'}")
    if record.maintenance:
        lines += [f"reason={record.reason}", f"set_by={record.set_by}", f"set_at={iso_time(record.set_at)}"]
        if record.expires_at is not None:
            lines.append(f"expires_at={iso_time(record.expires_at)}")
    return tuple(lines)


def iso_time(wall: float) -> str:
    """UTC ISO-8601 with seconds, e.g. ``2026-11-24T07:00:00Z``."""
    import time

    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(wall))


def host_details(record: HostRecord, extra: tuple[str, ...] = ()) -> tuple[str, ...]:
    """Standard human-readable lines for a host slot, followed by ``extra``."""
    e = record.engine
    return (
        f"hectl host record v{FORMAT_VERSION}",
        f"host_id={record.host_id} hostname={record.hostname}",
        f"seq={record.seq} written={iso_time(record.wall_time)}",
        f"state={record.state} score={record.score}",
        f"engine vm={e.vm} health={e.health} detail={e.detail} reason={e.reason}",
        f"local_maintenance={int(record.local_maintenance)} stopped={int(record.stopped)}",
        *extra,
    )


def _texts(first: bytes, pos: int, limits: tuple[tuple[str, int], ...]) -> list[str]:
    """The length-prefixed UTF-8 strings from ``pos`` on; ValueError on anything malformed."""
    out = []
    for name, limit in limits:
        if pos >= CRC_OFFSET:
            raise ValueError(f"{name}: runs past the record")
        end = pos + 1 + first[pos]
        if end - pos - 1 > limit or end > CRC_OFFSET:
            raise ValueError(f"{name}: bad length {end - pos - 1}")
        try:
            out.append(first[pos + 1 : end].decode("utf-8"))
        except UnicodeDecodeError:
            raise ValueError(f"{name}: not UTF-8") from None
        pos = end
    return out


def _details(data: bytes) -> tuple[str, ...]:
    text = data[SECTOR_SIZE:SLOT_SIZE].split(b"\0", 1)[0].decode("utf-8", "replace")
    return tuple(line for line in text.split("\n") if line)


def decode_slot(index: int, data: bytes) -> Slot:
    """Classify and decode slot ``index`` from its bytes (normally 4096; never raises)."""
    magic = HOST_MAGIC if index else GLOBAL_MAGIC
    first = data[:SECTOR_SIZE]
    if first == _ZERO_SECTOR[: len(first)]:
        return Slot(index, SlotKind.EMPTY, problem="" if len(first) == SECTOR_SIZE else "truncated, empty")
    if len(first) < SECTOR_SIZE:
        return Slot(index, SlotKind.CORRUPT, problem=f"truncated ({len(data)} of {SLOT_SIZE} bytes)")
    got_magic, version, min_reader = _PREFIX.unpack_from(first, 0)
    if got_magic != magic:
        other = GLOBAL_MAGIC if index else HOST_MAGIC
        what = "global record in a host slot" if got_magic == other else "bad magic"
        return Slot(index, SlotKind.CORRUPT, problem=what)
    if min_reader > FORMAT_VERSION:
        return Slot(
            index,
            SlotKind.TOO_NEW,
            problem=f"format v{version} needs a reader of v{min_reader}; this is v{FORMAT_VERSION}",
            version=version,
        )
    (crc,) = _CRC.unpack_from(first, CRC_OFFSET)
    if crc != zlib.crc32(first[:CRC_OFFSET]):
        return Slot(index, SlotKind.CORRUPT, problem="bad CRC", version=version)
    try:
        record = _decode_host(first, data) if index else _decode_global(first)
    except (ValueError, OverflowError) as exc:
        return Slot(index, SlotKind.CORRUPT, problem=f"malformed: {exc}", version=version)
    if isinstance(record, HostRecord) and record.host_id != index:
        return Slot(
            index,
            SlotKind.WRONG_HOST_ID,
            record=record,
            problem=f"slot {index} holds a record of host id {record.host_id}",
            version=version,
        )
    return Slot(index, SlotKind.VALID, record=record, version=version)


def _decode_host(first: bytes, data: bytes) -> HostRecord:
    host_id, seq, wall_ms, score, flags = _HOST_FIXED.unpack_from(first, _PREFIX.size)
    state, vm, health, detail, reason, hostname = _texts(first, _PREFIX.size + _HOST_FIXED.size, HOST_TEXT_LIMITS)
    return HostRecord(
        host_id,
        seq,
        wall_ms / 1000.0,
        score,
        state,
        EngineStatus(vm, health, detail, reason),
        hostname,
        bool(flags & HOST_FLAG_LOCAL_MAINTENANCE),
        bool(flags & HOST_FLAG_STOPPED),
        _details(data),
    )


def _decode_global(first: bytes) -> GlobalRecord:
    seq, flags, set_at_ms, expires_ms = _GLOBAL_FIXED.unpack_from(first, _PREFIX.size)
    set_by, reason = _texts(first, _PREFIX.size + _GLOBAL_FIXED.size, GLOBAL_TEXT_LIMITS)
    return GlobalRecord(
        seq,
        bool(flags & GLOBAL_FLAG_MAINTENANCE),
        reason,
        set_by,
        set_at_ms / 1000.0,
        expires_ms / 1000.0 if expires_ms else None,
    )


def decode_metadata(extents: list[tuple[int, bytes]], size: int, max_host_id: int = MAX_HOST_ID) -> dict[int, Slot]:
    """Decode the non-empty slots among slot 0 and host slots 1..``max_host_id``, by index.

    ``extents`` are (offset, bytes) runs of the file that hold data and ``size``
    is the file's length: anything else reads as zeros, so holes cost nothing.
    A slot cut short by the end of the file is reported as truncated.
    """
    pieces: dict[int, bytes | bytearray] = {}
    limit = min(size, SLOT_SIZE * (max_host_id + 1))
    for offset, chunk in extents:
        end = min(offset + len(chunk), limit)
        for index in range(offset // SLOT_SIZE, (end - 1) // SLOT_SIZE + 1):
            base = index * SLOT_SIZE
            lo, hi = max(base, offset), min(base + SLOT_SIZE, end)
            part = chunk[lo - offset : hi - offset]
            if lo == base and part[:SECTOR_SIZE] == _ZERO_SECTOR:
                continue  # an empty record sector: an empty slot, whatever follows
            if lo == base and hi - lo == SLOT_SIZE and index not in pieces:
                pieces[index] = part  # the common case: one extent holds the whole slot
            else:
                piece = pieces.get(index)
                if not isinstance(piece, bytearray):
                    piece = pieces[index] = bytearray(piece or bytes(SLOT_SIZE))
                piece[lo - base : hi - base] = part
    slots = {}
    for index in sorted(pieces):
        slot = decode_slot(index, bytes(pieces[index][: max(0, min(SLOT_SIZE, size - index * SLOT_SIZE))]))
        if slot.kind != SlotKind.EMPTY:
            slots[index] = slot
    return slots
