"""The on-storage record format: encoding, limits and the classification of every kind of slot."""

from __future__ import annotations

import struct
import zlib

import pytest

from hectl.storage import records
from hectl.storage.records import EngineStatus, GlobalRecord, HostRecord, SlotKind


def host(host_id: int = 3, **kw: object) -> HostRecord:
    base: dict[str, object] = dict(
        host_id=host_id,
        seq=41,
        wall_time=1_700_000_123.456,
        score=3400,
        state="EngineUp",
        engine=EngineStatus("up", "good", "running", ""),
        hostname=f"h{host_id}.example.org",
        local_maintenance=False,
        stopped=False,
    )
    base.update(kw)
    return HostRecord(**base)  # type: ignore[arg-type]


def reseal(slot: bytearray) -> bytearray:
    slot[records.CRC_OFFSET : records.SECTOR_SIZE] = struct.pack("!I", zlib.crc32(bytes(slot[: records.CRC_OFFSET])))
    return slot


def test_host_record_round_trip_with_details() -> None:
    rec = host(details=("score 3400 = base 3400", "timers: none"), local_maintenance=True, stopped=True)
    data = records.encode_host(rec)
    assert len(data) == records.SLOT_SIZE
    slot = records.decode_slot(3, data)
    assert slot.kind == SlotKind.VALID
    assert slot.record == rec
    assert data[records.SECTOR_SIZE :].startswith(b"score 3400 = base 3400\ntimers: none\n")


def test_global_record_round_trip_and_expiry() -> None:
    rec = GlobalRecord(seq=7, maintenance=True, reason="upgrade", set_by="root@h1", set_at=1000.0, expires_at=1600.0)
    slot = records.decode_slot(0, records.encode_global(rec))
    assert slot.kind == SlotKind.VALID and slot.record == rec
    assert rec.maintenance_active(1599.9) and not rec.maintenance_expired(1599.9)
    assert not rec.maintenance_active(1600.0) and rec.maintenance_expired(1600.0)
    assert GlobalRecord(maintenance=True).maintenance_active(1e12)  # no expiry: in force until cleared


def test_all_zero_slot_is_empty() -> None:
    assert records.decode_slot(5, bytes(records.SLOT_SIZE)).kind == SlotKind.EMPTY


def test_bad_crc_is_corrupt() -> None:
    data = bytearray(records.encode_host(host()))
    data[40] ^= 0x01
    slot = records.decode_slot(3, bytes(data))
    assert (slot.kind, slot.problem, slot.record) == (SlotKind.CORRUPT, "bad CRC", None)


def test_truncated_sector_is_corrupt() -> None:
    slot = records.decode_slot(3, records.encode_host(host())[:300])
    assert slot.kind == SlotKind.CORRUPT and "truncated" in slot.problem


def test_garbage_is_corrupt() -> None:
    slot = records.decode_slot(3, b"this is not a hectl record at all".ljust(4096, b"x"))
    assert slot.kind == SlotKind.CORRUPT and slot.problem == "bad magic"


def test_global_record_in_host_slot_is_corrupt() -> None:
    slot = records.decode_slot(2, records.encode_global(GlobalRecord()))
    assert slot.kind == SlotKind.CORRUPT and "global record" in slot.problem


def test_newer_format_is_too_new_without_checking_its_crc() -> None:
    data = bytearray(records.encode_host(host()))
    struct.pack_into("!HH", data, 8, 3, 2)  # written by v3, needs a v2 reader
    data[100] ^= 0xFF  # layout unknown to us: the CRC is not ours to check
    slot = records.decode_slot(3, bytes(data))
    assert slot.kind == SlotKind.TOO_NEW and slot.version == 3 and slot.record is None
    assert "v2" in slot.problem


def test_newer_but_compatible_format_is_read() -> None:
    data = reseal(bytearray(records.encode_host(host())))
    struct.pack_into("!HH", data, 8, 2, 1)  # v2 writer, readable by v1
    slot = records.decode_slot(3, bytes(reseal(data)))
    assert slot.kind == SlotKind.VALID and slot.version == 2


def test_wrong_host_id_keeps_record_but_is_flagged() -> None:
    slot = records.decode_slot(4, records.encode_host(host(3)))
    assert slot.kind == SlotKind.WRONG_HOST_ID
    assert isinstance(slot.record, HostRecord) and slot.record.host_id == 3


def test_malformed_length_field_is_corrupt() -> None:
    data = bytearray(records.encode_host(host()))
    data[35] = 200  # state length beyond its 32-byte limit
    slot = records.decode_slot(3, bytes(reseal(data)))
    assert slot.kind == SlotKind.CORRUPT and slot.problem.startswith("malformed")


def test_invalid_utf8_is_corrupt() -> None:
    data = bytearray(records.encode_host(host(state="ABCD")))
    data[36:40] = b"\xff\xfe\xfd\xfc"
    slot = records.decode_slot(3, bytes(reseal(data)))
    assert slot.kind == SlotKind.CORRUPT and "UTF-8" in slot.problem


@pytest.mark.parametrize(
    ("field", "value"),
    [("state", "S" * 33), ("hostname", "h" * 254), ("host_id", 0), ("host_id", 2001), ("score", 2**31), ("seq", -1)],
)
def test_values_that_do_not_fit_are_refused(field: str, value: object) -> None:
    with pytest.raises(records.EncodeError):
        records.encode_host(host(**{field: value}))


def test_free_text_is_shortened_on_a_character_boundary() -> None:
    rec = host(engine=EngineStatus("up", "bad", "é" * 40, "ü" * 100))
    decoded = records.decode_slot(3, records.encode_host(rec)).record
    assert isinstance(decoded, HostRecord)
    assert decoded.engine.detail == "é" * 24 and decoded.engine.reason == "ü" * 48


def test_longest_fields_fit_in_one_sector() -> None:
    rec = host(
        state="S" * 32,
        engine=EngineStatus("v" * 16, "h" * 16, "d" * 48, "r" * 96),
        hostname="n" * 253,
        seq=2**64 - 1,
        score=-(2**31),
    )
    assert records.decode_slot(3, records.encode_host(rec)).record == rec


def test_decode_metadata_places_extents_and_reports_only_non_empty_slots() -> None:
    blob = bytearray(records.SLOT_SIZE * 6)
    blob[0:4096] = records.encode_global(GlobalRecord(seq=1))
    blob[4096 * 2 : 4096 * 3] = records.encode_host(host(2))
    blob[4096 * 5 : 4096 * 6] = b"\x01" * 4096
    # split the file into two extents with a hole between them, the second cut mid-slot
    extents = [(0, bytes(blob[: 4096 * 3])), (4096 * 5, bytes(blob[4096 * 5 : 4096 * 5 + 1000]))]
    slots = records.decode_metadata(extents, size=4096 * 5 + 1000)
    assert sorted(slots) == [0, 2, 5]
    assert slots[2].kind == SlotKind.VALID
    assert slots[5].kind == SlotKind.CORRUPT  # the file ends inside slot 5: bad magic / truncated, never live
