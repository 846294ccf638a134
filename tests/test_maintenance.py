"""set-maintenance semantics on a real localfs domain: round trips, TTL expiry, audit log, hooks."""

from __future__ import annotations

import json
import os
from typing import Any

import pytest
from conftest import Domain

from hectl import audit, localstate, maintenance
from hectl.clock import VirtualClock
from hectl.errors import StorageError
from hectl.storage import records


def apply(
    domain: Domain, mode: str, clock: VirtualClock, *, reason: str = "", ttl: float | None = None, **kw: Any
) -> dict[str, Any]:
    app = domain.app(clock=clock)
    cfg = app.config
    return maintenance.set_maintenance(
        mode,
        reason=reason,
        ttl=ttl,
        store=kw.pop("store", app.store),
        state_dir=cfg.paths.state_dir,
        audit_log=cfg.audit_log,
        host_id=cfg.host.id,
        hostname=cfg.host.hostname,
        clock=clock,
        **kw,
    )


def global_record(domain: Domain) -> records.GlobalRecord:
    rec = domain.store().read_slot(0).record
    assert isinstance(rec, records.GlobalRecord)
    return rec


def test_global_round_trip_with_reason_and_ttl(domain: Domain) -> None:
    clock = VirtualClock(wall=1_800_000_000.0)
    out = apply(domain, "global", clock, reason="kernel upgrade", ttl=1800)
    g = global_record(domain)
    assert (g.maintenance, g.reason, g.set_at, g.expires_at) == (True, "kernel upgrade", 1_800_000_000.0, 1_800_001_800.0)
    assert g.set_by.endswith("@host1.example")
    assert out["changes"][0]["new_mode"] == "global" and out["changes"][0]["expires_at"] == "2027-01-15T08:30:00Z"
    assert g.maintenance_active(clock.wall())
    clock.advance(1800)
    assert not g.maintenance_active(clock.wall()) and g.maintenance_expired(clock.wall())
    apply(domain, "none", clock)
    assert not global_record(domain).maintenance
    assert global_record(domain).seq == g.seq + 1


def test_local_round_trip_does_not_touch_shared_storage(domain: Domain) -> None:
    clock = VirtualClock()

    def no_storage() -> Any:
        raise AssertionError("local maintenance must not need shared storage")

    apply(domain, "local", clock, reason="replace disk", ttl=60, store=no_storage)
    lm = localstate.read_local_maintenance(str(domain.state_dir))
    assert lm.active and lm.reason == "replace disk" and lm.in_force(clock.wall())
    clock.advance(61)
    assert lm.expired(clock.wall()) and not lm.in_force(clock.wall())
    apply(domain, "none", clock)
    assert not localstate.read_local_maintenance(str(domain.state_dir)).active


def test_none_clears_local_even_when_storage_is_down(domain: Domain) -> None:
    clock = VirtualClock()
    apply(domain, "local", clock)

    def down() -> Any:
        raise StorageError("read metadata: no answer from storage within 1 s")

    with pytest.raises(StorageError) as info:
        apply(domain, "none", clock, store=down)
    assert "local maintenance was cleared" in info.value.message
    assert not localstate.read_local_maintenance(str(domain.state_dir)).active


def test_idempotent_none_writes_nothing(domain: Domain) -> None:
    out = apply(domain, "none", VirtualClock())
    assert out["changes"] == []
    assert domain.store().read_slot(0).kind == records.SlotKind.EMPTY


def test_audit_log_and_notifications(domain: Domain) -> None:
    clock = VirtualClock()
    events: list[dict[str, Any]] = []
    apply(domain, "global", clock, reason="r1", notify=lambda **e: events.append(e))
    apply(domain, "local", clock, reason="r2", notify=lambda **e: events.append(e))
    apply(domain, "none", clock, notify=lambda **e: events.append(e))
    log = audit.read(domain.app().config.audit_log)
    assert [(e["scope"], e["old_mode"], e["new_mode"]) for e in log] == [
        ("global", "none", "global"),
        ("local", "none", "local"),
        ("local", "local", "none"),
        ("global", "global", "none"),
    ]
    assert all(e["set_by"] and e["set_at"].endswith("Z") and e["from_host_id"] == 1 for e in log)
    assert [e["new_mode"] for e in events] == ["global", "local", "none", "none"]
    assert events[0] == {
        "scope": "global",
        "host_id": None,
        "old_mode": "none",
        "new_mode": "global",
        "reason": "r1",
        "set_by": events[0]["set_by"],
        "expires_at": None,
    }
    with open(domain.app().config.audit_log) as f:
        assert json.loads(f.readline())["reason"] == "r1"


def test_corrupt_global_record_is_repaired_by_none(domain: Domain) -> None:
    path = domain.app().backend().paths().metadata
    with open(path, "r+b") as f:
        f.write(b"garbage!" * 512)
    assert domain.store().read_slot(0).kind == records.SlotKind.CORRUPT
    apply(domain, "none", VirtualClock())
    assert domain.store().read_slot(0).kind == records.SlotKind.VALID
    assert not global_record(domain).maintenance


def test_too_new_global_record_is_never_overwritten(domain: Domain) -> None:
    path = domain.app().backend().paths().metadata
    slot = bytearray(records.encode_global(records.GlobalRecord()))
    slot[8:12] = b"\x00\x05\x00\x05"
    with open(path, "r+b") as f:
        f.write(slot)
    with pytest.raises(StorageError, match="newer hectl"):
        apply(domain, "global", VirtualClock())
    with open(path, "rb") as f:
        assert f.read(4096) == bytes(slot)


def test_reason_must_be_one_printable_line() -> None:
    assert maintenance.check_reason("upgrade to 4.5") == "upgrade to 4.5"
    for bad in ("two\nlines", "bell\a", "x" * 256):
        with pytest.raises(ValueError):
            maintenance.check_reason(bad)


def test_who_prefers_the_sudo_caller(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SUDO_USER", "alice")
    assert maintenance.who("h1") == "alice@h1"
    monkeypatch.delenv("SUDO_USER")
    assert maintenance.who("h1").endswith("@h1") and os.getuid() >= 0


class _FullStore:
    """A metadata store on a full filesystem: the update is refused before anything is written."""

    def update_global(self, change: Any) -> Any:
        import errno

        raise StorageError("update metadata: No space left on device", errno=errno.ENOSPC)


def test_a_storage_failure_wins_over_an_audit_failure(domain: Domain, tmp_path: Any) -> None:
    clock = VirtualClock()
    apply(domain, "local", clock)
    (tmp_path / "file").write_text("")
    broken = str(tmp_path / "file" / "audit.log")  # cannot be created: its directory is a file
    app = domain.app(clock=clock)
    with pytest.raises(StorageError) as info:
        maintenance.set_maintenance(
            "none", reason="", ttl=None, store=lambda: _FullStore(), state_dir=app.config.paths.state_dir,  # type: ignore[arg-type,return-value]
            audit_log=broken, host_id=1, hostname="h", clock=clock,
        )  # fmt: skip
    msg = info.value.message
    assert msg.startswith("global maintenance unchanged: update metadata: No space left on device"), msg
    assert "local maintenance was cleared" in msg and f"the audit log {broken} could not be written" in msg
    assert "changed, but" not in msg
