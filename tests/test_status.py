"""vm-status report and Nagios verdict, from hand-built snapshots (pure: no storage)."""

from __future__ import annotations

from typing import Any

import pytest

from hectl import status
from hectl.localstate import AgentView, HostView, LocalMaintenance
from hectl.storage import records
from hectl.storage.metadata import MetadataSnapshot
from hectl.storage.records import EngineStatus, GlobalRecord, HostRecord, Slot, SlotKind

NOW = 1_800_000_000.0
MONO = 5000.0
BOOT = "boot-1"


def rec(host_id: int, age: float = 0.0, vm: str = "down", health: str = "unknown", **kw: Any) -> HostRecord:
    return HostRecord(
        host_id=host_id,
        seq=kw.pop("seq", 10),
        wall_time=NOW - age,
        score=kw.pop("score", 3400),
        state=kw.pop("state", "EngineUp" if vm == "up" else "EngineDown"),
        engine=EngineStatus(vm, health, "", ""),
        hostname=f"h{host_id}",
        **kw,
    )


def snap(*slots: Slot, global_: GlobalRecord | None = None) -> MetadataSnapshot:
    by_index = {s.number: s for s in slots}
    if global_ is not None:
        by_index[0] = Slot(0, SlotKind.VALID, global_)
    return MetadataSnapshot(by_index, records.METADATA_SIZE, True, 1.0, MONO, NOW)


def valid(r: HostRecord) -> Slot:
    return Slot(r.host_id, SlotKind.VALID, r)


def report(snapshot: MetadataSnapshot, view: AgentView | None = None, me: int = 1, **kw: Any) -> dict[str, Any]:
    return status.build_report(
        snapshot,
        host_id=me,
        hostname=f"h{me}",
        window=30.0,
        silent_after=30.0,
        agent_view=view,
        local_maintenance=kw.pop("local_maintenance", LocalMaintenance()),
        now_wall=NOW,
        now_mono=MONO,
        boot_id=BOOT,
        storage={"type": "localfs", "root": "/d"},
        **kw,
    )


def rows(r: dict[str, Any]) -> dict[int, dict[str, Any]]:
    return {h["host_id"]: h for h in r["hosts"]}


def test_every_slot_kind_reported() -> None:
    s = snap(
        valid(rec(1, vm="up", health="good")),
        Slot(2, SlotKind.CORRUPT, problem="bad CRC"),
        Slot(3, SlotKind.TOO_NEW, problem="format v2 needs a reader of v2; this is v1", version=2),
        Slot(4, SlotKind.WRONG_HOST_ID, rec(9), problem="slot 4 holds a record of host id 9"),
    )
    r = rows(report(s))
    assert r[1]["live"] and r[1]["stale_reason"] is None
    assert (r[2]["live"], r[2]["stale_reason"], r[2]["problem"]) == (False, "slot-corrupt", "bad CRC")
    assert (r[3]["live"], r[3]["stale_reason"]) == (False, "version-too-new")
    assert (r[4]["live"], r[4]["stale_reason"], r[4]["hostname"]) == (False, "wrong-host-id", "h9")


def test_corrupt_slot_never_counts_as_live_or_as_engine_host() -> None:
    s = snap(Slot(1, SlotKind.CORRUPT, problem="bad CRC"), Slot(2, SlotKind.WRONG_HOST_ID, rec(3, vm="up", health="good")))
    r = report(s)
    assert r["summary"]["live"] == 0 and r["summary"]["engine_up_on"] == []
    assert r["summary"]["problem_slots"] == 2


def test_wall_clock_fallback_blames_only_the_silent_party() -> None:
    s = snap(valid(rec(1, age=100)), valid(rec(2, age=5)), valid(rec(3, age=100)))
    r = report(s)
    assert r["liveness"]["source"] == "wall-clock" and r["local_agent"]["status"] == "absent"
    hosts = rows(r)
    assert hosts[1]["stale_reason"] == "local-agent-silent"  # this host's own agent
    assert hosts[2]["live"] is True  # a healthy remote host is not smeared
    assert hosts[3]["stale_reason"] == "remote-host-silent"


def test_agent_view_decides_liveness_when_fresh() -> None:
    # Host 2's wall clock is far behind ours, but the agent saw its sequence change 3 s ago.
    view = AgentView(1, "EngineDown", BOOT, MONO - 2, NOW - 2, {1: HostView(True, 10, 1.0), 2: HostView(True, 10, 3.0)})
    r = report(snap(valid(rec(1)), valid(rec(2, age=3600))), view)
    assert r["liveness"]["source"] == "agent" and r["local_agent"]["status"] == "running"
    assert rows(r)[2]["live"] and rows(r)[2]["age_s"] == 3.0


def test_stale_agent_view_is_ignored() -> None:
    view = AgentView(1, "EngineDown", BOOT, MONO - 120, NOW - 120, {2: HostView(False, 10, 99.0)})
    r = report(snap(valid(rec(1)), valid(rec(2))), view)
    assert r["local_agent"]["status"] == "silent" and r["liveness"]["source"] == "wall-clock"
    assert rows(r)[2]["live"]


def test_agent_view_from_another_boot_is_silent() -> None:
    view = AgentView(1, "EngineDown", "other-boot", MONO, NOW, {})
    assert report(snap(valid(rec(1))), view)["local_agent"]["status"] == "silent"


def test_stopped_agent() -> None:
    r = rows(report(snap(valid(rec(2, stopped=True)))))
    assert (r[2]["live"], r[2]["stale_reason"]) == (False, "agent-stopped")


def test_missing_own_record_is_listed() -> None:
    r = rows(report(snap(valid(rec(2))), me=5))
    assert r[5]["slot"] == "empty" and r[5]["stale_reason"] == "no-record" and r[5]["this_host"]


def test_a_record_from_the_future_is_clock_skew_never_live() -> None:
    # No local agent: the wall time is the only evidence, and a time we have not reached proves nothing.
    year = 365 * 86400.0
    r = report(snap(valid(rec(1, vm="up", health="good")), valid(rec(2, age=-year, vm="up", health="good"))))
    h = rows(r)[2]
    assert (h["live"], h["stale_reason"], h["age_s"], h["clock_skew_s"]) == (False, "clock-skew", None, year)
    assert r["summary"]["engine_up_on"] == [1] and r["summary"]["stale"] == 1
    code, line = status.check(r)
    assert code == status.WARNING and f"host 2 (h2) clock {year:.0f} s ahead of ours" in line
    # ... and alone it cannot make the engine look up: CRITICAL.
    code, line = status.check(report(snap(valid(rec(1)), valid(rec(2, age=-year, vm="up", health="good")))))
    assert code == status.CRITICAL and "engine not up on any live host" in line


def test_clock_skew_within_the_tolerance_is_ignored() -> None:
    r = rows(report(snap(valid(rec(2, age=-status.CLOCK_SKEW_TOLERANCE)))))
    assert r[2]["live"] and "clock_skew_s" not in r[2]


def test_a_skewed_clock_under_a_running_agent_is_flagged_but_live() -> None:
    # The agent saw the sequence change: the host lives, only its clock is wrong.
    view = AgentView(1, "EngineDown", BOOT, MONO - 2, NOW - 2, {1: HostView(True, 10, 1.0), 2: HostView(True, 10, 3.0)})
    r = report(snap(valid(rec(1, vm="up", health="good")), valid(rec(2, age=-60))), view)
    assert rows(r)[2]["live"] and rows(r)[2]["clock_skew_s"] == 60.0 and rows(r)[2]["age_s"] == 3.0
    code, line = status.check(r)
    assert code == status.WARNING and "host 2 (h2) clock 60 s ahead of ours" in line


def test_pending_local_maintenance() -> None:
    lm = LocalMaintenance(active=True, reason="disk", set_by="root@h1", set_at=NOW - 5)
    r = rows(report(snap(valid(rec(1))), local_maintenance=lm))
    assert r[1]["local_maintenance"] is False and r[1]["local_maintenance_pending"] is True


def test_global_maintenance_active_and_expired() -> None:
    on = GlobalRecord(1, True, "upgrade", "root@h1", NOW - 60, NOW + 600)
    g = report(snap(valid(rec(1)), global_=on))["global_maintenance"]
    assert g["active"] and not g["expired"] and g["remaining_s"] == 600.0 and g["reason"] == "upgrade"
    gone = GlobalRecord(1, True, "upgrade", "root@h1", NOW - 700, NOW - 100)
    g = report(snap(valid(rec(1)), global_=gone))["global_maintenance"]
    assert not g["active"] and g["expired"]


def test_global_maintenance_expiry_is_the_running_agents_judgement() -> None:
    """This host's wall clock says the TTL ran out long ago; the agent (which acts on it) counts 250 s more."""
    on = GlobalRecord(4, True, "upgrade", "root@h1", NOW - 3700, NOW - 3400)
    view = AgentView(1, "GlobalMaintenance", BOOT, MONO - 10, NOW, {}, global_seq=4, global_left=260.0)
    g = report(snap(valid(rec(1)), global_=on), view)["global_maintenance"]
    assert g["active"] and not g["expired"] and g["remaining_s"] == 250.0 and g["expiry_clock"] == "agent"
    g = report(snap(valid(rec(1)), global_=on._replace(seq=5)), view)["global_maintenance"]  # not read by the agent yet
    assert not g["active"] and g["expired"] and g["expiry_clock"] == "wall-clock"
    g = report(snap(valid(rec(1)), global_=on), view._replace(global_left=-1.0))["global_maintenance"]
    assert not g["active"] and g["expired"] and g["remaining_s"] is None
    g = report(snap(valid(rec(1)), global_=on._replace(expires_at=None)), view)["global_maintenance"]
    assert g["active"] and g["expiry_clock"] is None


def test_a_host_waiting_to_retry_says_when_in_the_table() -> None:
    from hectl import output

    why = "retry here in 156 s: engine failed here 4 times, no other host can start it"
    waiting = rec(1, state="EngineRetryWait", score=0)._replace(engine=EngineStatus("down", "unknown", "", why))
    text = output._vm_status_text(report(snap(valid(waiting))))
    assert "EngineRetryWait" in text and "(retry here in 156 s: engine failed here" in text


def test_host_filter() -> None:
    r = report(snap(valid(rec(1)), valid(rec(2)), valid(rec(3))), host_filter=frozenset({2}))
    assert [h["host_id"] for h in r["hosts"]] == [2]


@pytest.mark.parametrize(
    ("slots", "global_", "code", "words"),
    [
        ([valid(rec(1, vm="up", health="good")), valid(rec(2))], None, status.OK, "engine up on host 1"),
        ([valid(rec(1)), valid(rec(2))], None, status.CRITICAL, "engine not up on any live host"),
        ([valid(rec(1, vm="up", health="good")), valid(rec(2, vm="up", health="good"))], None, status.CRITICAL, "up on 2 hosts"),
        ([valid(rec(1)), valid(rec(2))], GlobalRecord(1, True, "x", "a", NOW, None), status.WARNING, "GLOBAL MAINTENANCE"),
        ([valid(rec(1, vm="up", health="good")), valid(rec(2, age=500))], None, status.WARNING, "remote-host-silent"),
        ([valid(rec(1, vm="up", health="bad"))], None, status.WARNING, "engine health bad"),
        (
            [valid(rec(1, vm="up", health="good")), Slot(2, SlotKind.CORRUPT, problem="bad CRC")],
            None,
            status.WARNING,
            "slot-corrupt",
        ),
        (
            [valid(rec(1, vm="up", health="good")), valid(rec(2, local_maintenance=True))],
            None,
            status.WARNING,
            "local maintenance",
        ),
    ],
)
def test_check_verdicts(slots: list[Slot], global_: GlobalRecord | None, code: int, words: str) -> None:
    got, line = status.check(report(snap(*slots, global_=global_)))
    assert got == code, line
    assert words in line
    assert line.startswith(f"HECTL {status.CHECK_NAMES[code]} - ") and "\n" not in line and " | live_hosts=" in line


def test_check_line_is_one_escaped_line_whatever_the_records_say() -> None:
    evil = "a\x1b]0;pwned\x07b\rc\u202ed\x9be|f\nHECTL OK - fine"
    host = rec(1, vm="up", health="good")._replace(hostname=evil, local_maintenance=True)
    g = GlobalRecord(1, True, evil, evil, NOW, None)
    code, line = status.check(report(snap(valid(host), global_=g)))
    assert code == status.WARNING
    assert line.isprintable() and line.count("|") == 1, line  # one line; '|' only before the perfdata
    assert "a\\x1b]0;pwned\\x07b\\rc\\u202ed\\x9be/f\\nHECTL OK - fine" in line
    assert line.endswith("global_maintenance=1;;;0;1 storage_read_ms=1.0ms")


def test_check_line_of_garbage_metadata_is_capped_with_its_perfdata() -> None:
    slots = [Slot(i, SlotKind.CORRUPT, problem="bad magic") for i in range(1, records.MAX_HOST_ID + 1)]
    code, line = status.check(report(snap(*slots)))
    assert code == status.CRITICAL and len(line.encode()) <= 4096, len(line)
    text, perf = line.split(" | ")
    assert perf == "live_hosts=0;;;0 stale_hosts=2000;;;0 problem_slots=2000;;;0 global_maintenance=0;;;0;1 storage_read_ms=1.0ms"
    assert text.startswith("HECTL CRITICAL - engine not up on any live host; host 1 slot-corrupt; host 2 slot-corrupt")
    shown = text.count("slot-corrupt")
    assert text.endswith(f"; {2000 - shown} more; 0/2000 hosts live") and shown > 100
