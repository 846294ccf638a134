"""Property tests of the on-storage records (hectl.storage.records) with hypothesis.

Decoding must never raise on anything a disk can hold, a damaged sector must
never read as a different valid record, and every representable record must
survive an encode/decode round trip.
"""

from __future__ import annotations

import itertools
import struct
import zlib

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from hectl.storage import records
from hectl.storage.records import SlotKind

KINDS = {SlotKind.EMPTY, SlotKind.VALID, SlotKind.CORRUPT, SlotKind.TOO_NEW, SlotKind.WRONG_HOST_ID}
SLOT, SECTOR, CRC_AT = records.SLOT_SIZE, records.SECTOR_SIZE, records.CRC_OFFSET
HOST_LIMITS = dict(records.HOST_TEXT_LIMITS)
GLOBAL_LIMITS = dict(records.GLOBAL_TEXT_LIMITS)

# Moderate example counts: the whole file runs in a few seconds; no example database in the tree.
FAST = settings(max_examples=150, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
SLOWER = settings(FAST, max_examples=60)

indexes = st.integers(0, records.MAX_HOST_ID)
chars = st.characters(codec="utf-8")  # every code point UTF-8 can carry (no lone surrogates)


def fit(text: str, limit: int) -> str:
    """The longest prefix of ``text`` whose UTF-8 fits in ``limit`` bytes."""
    while len(text.encode("utf-8")) > limit:
        text = text[:-1]
    return text


def texts(limit: int, *, must_fit: bool) -> st.SearchStrategy[str]:
    if must_fit:
        return st.text(chars, max_size=limit).map(lambda s: fit(s, limit))
    return st.text(chars, max_size=limit + 40)  # may be too long: the writer shortens it


def assert_shortened(decoded: str, original: str, limit: int) -> None:
    """``decoded`` is the longest prefix of ``original`` that fits ``limit`` bytes (cut on a character)."""
    assert original.startswith(decoded)
    assert len(decoded.encode("utf-8")) <= limit
    if decoded != original:
        assert len(original[: len(decoded) + 1].encode("utf-8")) > limit


def assert_well_formed(slot: records.Slot, index: int) -> None:
    assert isinstance(slot, records.Slot)
    assert slot.number == index
    assert slot.kind in KINDS
    if slot.kind in (SlotKind.EMPTY, SlotKind.CORRUPT, SlotKind.TOO_NEW):
        assert slot.record is None
    if slot.kind in (SlotKind.CORRUPT, SlotKind.TOO_NEW, SlotKind.WRONG_HOST_ID):
        assert slot.problem
    if slot.kind == SlotKind.VALID:
        if index == 0:
            assert isinstance(slot.record, records.GlobalRecord)
        else:
            assert isinstance(slot.record, records.HostRecord) and slot.record.host_id == index
    if slot.kind == SlotKind.WRONG_HOST_ID:
        assert index != 0 and isinstance(slot.record, records.HostRecord) and slot.record.host_id != index


def sealed(first: bytes) -> bytes:
    """A 512-byte sector holding ``first`` with a correct CRC (to get past the CRC check)."""
    sector = bytearray(SECTOR)
    sector[: min(len(first), CRC_AT)] = first[:CRC_AT]
    sector[CRC_AT:] = struct.pack("!I", zlib.crc32(bytes(sector[:CRC_AT])))
    return bytes(sector)


# --- decoding never raises -------------------------------------------------------------------------


@FAST
@given(index=indexes, data=st.binary(min_size=0, max_size=5000))
@example(index=0, data=b"")
@example(index=1, data=bytes(100))
@example(index=1, data=b"\0" * 511 + b"\1")
@example(index=0, data=records.HOST_MAGIC + bytes(600))
def test_decode_slot_never_raises_on_any_bytes(index: int, data: bytes) -> None:
    assert_well_formed(records.decode_slot(index, data), index)


@FAST
@given(
    index=indexes,
    magic=st.sampled_from([records.HOST_MAGIC, records.GLOBAL_MAGIC]),
    version=st.integers(0, 0xFFFF),
    min_reader=st.sampled_from([0, 1, 1, 1, 2, 0xFFFF]),
    body=st.binary(max_size=CRC_AT),
    details=st.binary(max_size=SLOT - SECTOR),
)
def test_decode_slot_never_raises_past_magic_and_crc(
    index: int, magic: bytes, version: int, min_reader: int, body: bytes, details: bytes
) -> None:
    """Sectors with the right magic and a correct CRC reach the field parser: still never raises."""
    sector = sealed(struct.pack("!8sHH", magic, version, min_reader) + body)
    slot = records.decode_slot(index, sector + details)
    assert_well_formed(slot, index)
    if magic != (records.HOST_MAGIC if index else records.GLOBAL_MAGIC):
        assert slot.kind == SlotKind.CORRUPT
    elif min_reader > records.FORMAT_VERSION:
        assert slot.kind == SlotKind.TOO_NEW and slot.version == version


@FAST
@given(
    host_id=st.integers(0, 0xFFFF),
    index=st.integers(1, records.MAX_HOST_ID),
    lengths=st.lists(st.integers(0, 255), min_size=6, max_size=6),
    fill=st.binary(min_size=1, max_size=1),
)
def test_decode_host_with_hostile_lengths(host_id: int, index: int, lengths: list[int], fill: bytes) -> None:
    """Length bytes over their limit or running past the sector are corrupt, never an exception."""
    body = bytearray(struct.pack("!HQqiB", host_id, 1, 0, 0, 0))
    for n in lengths:
        body += bytes([n]) + fill * n
    slot = records.decode_slot(index, sealed(struct.pack("!8sHH", records.HOST_MAGIC, 1, 1) + bytes(body)))
    assert_well_formed(slot, index)
    limits = [limit for _, limit in records.HOST_TEXT_LIMITS]
    fits = all(n <= lim for n, lim in zip(lengths, limits, strict=True)) and 12 + len(body) <= CRC_AT
    if not fits:
        assert slot.kind == SlotKind.CORRUPT


# --- damage is caught --------------------------------------------------------------------------------


host_records = st.builds(
    records.HostRecord,
    host_id=st.integers(1, records.MAX_HOST_ID),
    seq=st.integers(0, 2**64 - 1),
    wall_time=st.integers(-(2**42), 2**42).map(lambda ms: ms / 1000.0),
    score=st.integers(-(2**31), 2**31 - 1),
    state=texts(HOST_LIMITS["state"], must_fit=True),
    engine=st.builds(
        records.EngineStatus,
        vm=texts(HOST_LIMITS["engine_vm"], must_fit=True),
        health=texts(HOST_LIMITS["engine_health"], must_fit=True),
        detail=texts(HOST_LIMITS["engine_detail"], must_fit=False),
        reason=texts(HOST_LIMITS["engine_reason"], must_fit=False),
    ),
    hostname=texts(HOST_LIMITS["hostname"], must_fit=True),
    local_maintenance=st.booleans(),
    stopped=st.booleans(),
    details=st.lists(st.text(chars, max_size=80), max_size=8).map(tuple),
)

global_records = st.builds(
    records.GlobalRecord,
    seq=st.integers(0, 2**64 - 1),
    maintenance=st.booleans(),
    reason=texts(GLOBAL_LIMITS["reason"], must_fit=False),
    set_by=texts(GLOBAL_LIMITS["set_by"], must_fit=False),
    set_at=st.integers(-(2**42), 2**42).map(lambda ms: ms / 1000.0),
    expires_at=st.none() | st.integers(1, 2**42).map(lambda ms: ms / 1000.0),
)


@FAST
@given(rec=host_records | global_records, data=st.data())
def test_single_byte_damage_in_the_record_sector_is_never_valid(rec, data) -> None:  # type: ignore[no-untyped-def]
    is_host = isinstance(rec, records.HostRecord)
    index = rec.host_id if is_host else 0
    good = records.encode_host(rec) if is_host else records.encode_global(rec)
    pos = data.draw(st.integers(0, SECTOR - 1), label="pos")
    new = data.draw(st.integers(0, 255).filter(lambda b: b != good[pos]), label="byte")
    bad = good[:pos] + bytes([new]) + good[pos + 1 :]
    slot = records.decode_slot(index, bad)
    assert_well_formed(slot, index)
    assert slot.kind != SlotKind.VALID, f"byte {pos} {good[pos]:#x}->{new:#x} still decodes as {slot.record}"
    assert slot.kind != SlotKind.WRONG_HOST_ID
    if slot.kind == SlotKind.TOO_NEW:
        assert 10 <= pos < 12  # the min_reader_version field, checked before the CRC by design
    else:
        assert slot.kind == SlotKind.CORRUPT


@FAST
@given(rec=host_records, data=st.data())
def test_damage_in_the_details_never_changes_the_record(rec: records.HostRecord, data) -> None:  # type: ignore[no-untyped-def]
    good = records.encode_host(rec)
    pos = data.draw(st.integers(SECTOR, SLOT - 1), label="pos")
    new = data.draw(st.integers(0, 255), label="byte")
    slot = records.decode_slot(rec.host_id, good[:pos] + bytes([new]) + good[pos + 1 :])
    assert slot.kind == SlotKind.VALID
    original = records.decode_slot(rec.host_id, good).record
    assert slot.record._replace(details=()) == original._replace(details=())  # type: ignore[union-attr]


# --- round trips ---------------------------------------------------------------------------------


def expected_details(lines: tuple[str, ...]) -> tuple[str, ...]:
    """Details as a reader sees them when they fit: newlines flattened, empty lines and NUL tails dropped."""
    text = "".join(line.replace("\n", " ") + "\n" for line in lines).split("\0", 1)[0]
    return tuple(line for line in text.split("\n") if line)


@FAST
@given(rec=host_records)
def test_host_record_round_trip(rec: records.HostRecord) -> None:
    slot_bytes = records.encode_host(rec)
    assert len(slot_bytes) == SLOT
    slot = records.decode_slot(rec.host_id, slot_bytes)
    assert slot.kind == SlotKind.VALID and slot.version == records.FORMAT_VERSION, slot.problem
    got = slot.record
    assert isinstance(got, records.HostRecord)
    assert_shortened(got.engine.detail, rec.engine.detail, HOST_LIMITS["engine_detail"])
    assert_shortened(got.engine.reason, rec.engine.reason, HOST_LIMITS["engine_reason"])
    assert got.details == expected_details(rec.details)  # 8 x 80 characters always fit in 3584 bytes
    want = rec._replace(
        engine=rec.engine._replace(detail=got.engine.detail, reason=got.engine.reason),
        details=got.details,
    )
    assert got == want
    # Written elsewhere in the file, the same bytes are another host's: never taken for it.
    other = rec.host_id % records.MAX_HOST_ID + 1
    assert records.decode_slot(other, slot_bytes).kind == SlotKind.WRONG_HOST_ID
    assert records.decode_slot(0, slot_bytes).kind == SlotKind.CORRUPT


@FAST
@given(rec=global_records)
def test_global_record_round_trip(rec: records.GlobalRecord) -> None:
    slot_bytes = records.encode_global(rec)
    assert len(slot_bytes) == SLOT
    slot = records.decode_slot(0, slot_bytes)
    assert slot.kind == SlotKind.VALID, slot.problem
    got = slot.record
    assert isinstance(got, records.GlobalRecord)
    assert_shortened(got.reason, rec.reason, GLOBAL_LIMITS["reason"])
    assert_shortened(got.set_by, rec.set_by, GLOBAL_LIMITS["set_by"])
    assert got == rec._replace(reason=got.reason, set_by=got.set_by)
    assert records.decode_slot(1, slot_bytes).kind == SlotKind.CORRUPT


@FAST
@given(wall=st.floats(-1e12, 1e12, allow_nan=False), rec=host_records)
def test_wall_time_is_kept_to_the_millisecond(wall: float, rec: records.HostRecord) -> None:
    got = records.decode_slot(rec.host_id, records.encode_host(rec._replace(wall_time=wall))).record
    assert isinstance(got, records.HostRecord)
    assert abs(got.wall_time - wall) <= 0.0005 + 1e-9 * abs(wall)


@SLOWER
@given(
    rec=host_records,
    field=st.sampled_from(["state", "engine_vm", "engine_health", "hostname"]),
    extra=st.text(chars, min_size=1, max_size=4),
)
def test_identifiers_that_do_not_fit_are_refused(rec: records.HostRecord, field: str, extra: str) -> None:
    limit = HOST_LIMITS[field]
    too_long = "x" * limit + extra
    if field.startswith("engine_"):
        rec = rec._replace(engine=rec.engine._replace(**{field[7:]: too_long}))
    else:
        rec = rec._replace(**{field: too_long})
    try:
        records.encode_host(rec)
    except records.EncodeError as exc:
        assert field in str(exc)
    else:
        raise AssertionError(f"{field} of {len(too_long.encode())} bytes was accepted")


# --- whole files ------------------------------------------------------------------------------------


positions = st.one_of(
    st.integers(0, records.MAX_HOST_ID + 2).map(lambda i: i * SLOT),  # slot boundaries, where extents usually are
    st.integers(0, records.METADATA_SIZE + SLOT),
)


@st.composite
def disjoint_extents(draw):  # type: ignore[no-untyped-def]
    """Runs of random bytes that do not overlap (as any file's data extents), anywhere, in any order."""
    cuts = sorted(set(draw(st.lists(positions, max_size=12))))
    extents = []
    for start, end in itertools.pairwise(cuts):
        if draw(st.booleans()):
            length = min(end - start, 3 * SLOT)
            extents.append((start, draw(st.binary(min_size=length, max_size=length))))
    return draw(st.permutations(extents))


@FAST
@given(
    extents=disjoint_extents(),
    size=st.one_of(positions, st.integers(0, records.METADATA_SIZE + SLOT)),
    max_host_id=st.integers(0, records.MAX_HOST_ID),
)
@example(extents=[(4100, b"\1" * 10)], size=4097, max_host_id=2000)
@example(extents=[(0, b"\1" * 10)], size=0, max_host_id=0)
@example(extents=[(0, b"\1" * SLOT), (SLOT + 100, b"\2" * 10)], size=2 * SLOT, max_host_id=5)
def test_decode_metadata_never_raises(extents: list[tuple[int, bytes]], size: int, max_host_id: int) -> None:
    slots = records.decode_metadata(extents, size, max_host_id)
    assert list(slots) == sorted(slots)
    for index, slot in slots.items():
        assert 0 <= index <= max_host_id
        assert slot.kind != SlotKind.EMPTY
        assert_well_formed(slot, index)


def test_decode_metadata_never_raises_on_overlapping_extents() -> None:
    slots = records.decode_metadata([(0, b"\1" * SLOT), (100, b"\2" * 10)], 2 * SLOT)
    assert slots[0].kind == SlotKind.CORRUPT


@st.composite
def disk_images(draw):  # type: ignore[no-untyped-def]
    """(extents, size, image): what directio returns for a file, and the file's bytes."""
    n_slots = draw(st.integers(1, 40))
    size = draw(st.integers(0, n_slots * SLOT))
    image = bytearray(size)
    for index in draw(st.lists(st.integers(0, n_slots - 1), max_size=6, unique=True)):
        kind = draw(st.sampled_from(["host", "global", "noise", "sector"]))
        if kind == "host":
            rec = draw(host_records)
            blob = records.encode_host(rec._replace(host_id=draw(st.sampled_from([index or 1, rec.host_id]))))
        elif kind == "global":
            blob = records.encode_global(draw(global_records))
        elif kind == "noise":
            blob = draw(st.binary(min_size=1, max_size=SLOT))
        else:
            blob = bytes(SECTOR) + draw(st.binary(min_size=1, max_size=SLOT - SECTOR))  # data only past the record
        start = index * SLOT
        image[start : start + len(blob)] = blob
    del image[size:]
    # Extents: non-overlapping runs that cover every non-zero byte (zeros may or may not be included).
    cuts = sorted(set(draw(st.lists(st.integers(0, size), max_size=10))) | {0, size})
    extents = []
    for lo, hi in itertools.pairwise(cuts):
        chunk = bytes(image[lo:hi])
        if chunk.count(0) == len(chunk) and draw(st.booleans()):
            continue  # a hole
        extents.append((lo, chunk))
    return extents, size, bytes(image)


@FAST
@given(disk=disk_images(), max_host_id=st.integers(0, 60))
def test_decode_metadata_matches_slot_by_slot_decoding(disk, max_host_id: int) -> None:  # type: ignore[no-untyped-def]
    """Decoding extents (holes skipped) equals decoding every slot of the whole file."""
    extents, size, image = disk
    got = records.decode_metadata(extents, size, max_host_id)
    want = {}
    for index in range(min(max_host_id + 1, -(-size // SLOT))):
        slot = records.decode_slot(index, image[index * SLOT : (index + 1) * SLOT])
        if slot.kind != SlotKind.EMPTY:
            want[index] = slot
    assert got == want
