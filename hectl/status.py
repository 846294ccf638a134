"""The cluster status report (what ``hectl vm-status`` shows) and its Nagios verdict.

``build_report`` and ``check`` are pure: every input is passed in, nothing is
read there. ``build`` and ``report_for`` gather those inputs (the domain, the
local state, this host's configuration) for the click command, the fast path,
the agent and ``explain``; ``vm_status`` wraps the result in an ``Output``. The
report is plain, JSON-ready data whose field names are public API
(docs/vm-status-json.md).

Liveness: when the local agent is running, its view decides (a host is live
when its record's sequence number changed within the liveness window, as seen
on this host's monotonic clock). When the local agent is silent, hosts are
judged by the writer's wall time against ours and the report says so; a silent
local agent is reported as such on *this* host's row, never smeared over the
others (the "unknown stale-data for every host" of the original). A record
stamped more than ``CLOCK_SKEW_TOLERANCE`` ahead of our clock proves nothing by
its time: without the agent's view it is stale ("clock-skew"), never live.
"""

from __future__ import annotations

from hectl import localstate
from hectl.output import Output
from hectl.storage import records
from hectl.storage.records import SlotKind
from hectl.text import nagios_line

TYPE_CHECKING = False  # typing.TYPE_CHECKING would import typing (see hectl.frozen)
if TYPE_CHECKING:
    from hectl.clock import Clock
    from hectl.config import Config
    from hectl.context import AppContext
    from hectl.localstate import AgentView, LocalMaintenance
    from hectl.storage.metadata import MetadataSnapshot

CLOCK_SKEW_TOLERANCE = 5.0


def _round(x: float | None) -> float | None:
    return None if x is None else round(x, 1)


def _global_section(snapshot: MetadataSnapshot, now_wall: float, view: AgentView | None, now_mono: float) -> dict[str, object]:
    """Slot 0. A TTL's expiry is the running local agent's judgement (on its monotonic clock, as it acts) once it
    has read this record; before that, or without an agent, this host's wall clock against ``expires_at``."""
    slot = snapshot.slot(0)
    g = snapshot.global_record
    if g.maintenance and g.expires_at is not None and view is not None and view.global_seq == g.seq:
        left = None if view.global_left is None else view.global_left - (now_mono - view.written_mono)
        clock = "agent"
    else:
        left = None if g.expires_at is None else g.expires_at - now_wall
        clock = "wall-clock"
    active = g.maintenance and (left is None or left > 0)
    section: dict[str, object] = {
        "active": active,
        "expired": g.maintenance and not active,
        "reason": g.reason if g.maintenance else "",
        "set_by": g.set_by if g.maintenance else "",
        "set_at": records.iso_time(g.set_at) if g.maintenance else None,
        "expires_at": records.iso_time(g.expires_at) if g.maintenance and g.expires_at is not None else None,
        "remaining_s": _round(left) if active and left is not None else None,
        "expiry_clock": clock if g.maintenance and g.expires_at is not None else None,
        "record": slot.kind,
    }
    if slot.problem:
        section["problem"] = slot.problem
    return section


def agent_section(view: AgentView | None, now_mono: float, boot: str, silent_after: float) -> dict[str, object]:
    if view is None:
        return {"status": "absent", "view_age_s": None, "state": None}
    age = now_mono - view.written_mono if view.boot_id == boot else None
    fresh = age is not None and -1.0 <= age <= silent_after
    return {"status": "running" if fresh else "silent", "view_age_s": _round(age), "state": view.state}


def _host_row(
    slot: records.Slot,
    me: int,
    window: float,
    now_wall: float,
    view: AgentView | None,
    local_maint: LocalMaintenance,
) -> dict[str, object]:
    row: dict[str, object] = {
        "host_id": slot.number,
        "this_host": slot.number == me,
        "slot": slot.kind,
        "hostname": None,
        "state": None,
        "score": None,
        "engine": None,
        "local_maintenance": None,
        "stopped": None,
        "seq": None,
        "written_at": None,
        "age_s": None,
        "live": False,
        "stale_reason": None,
        "problem": slot.problem or None,
        "details": [],
    }
    rec = slot.record
    if slot.kind == SlotKind.EMPTY:
        row["stale_reason"] = "no-record"
        return row
    if slot.kind == SlotKind.CORRUPT:
        row["stale_reason"] = "slot-corrupt"
        return row
    if slot.kind == SlotKind.TOO_NEW:
        row["stale_reason"] = "version-too-new"
        return row
    assert isinstance(rec, records.HostRecord)
    row.update(
        hostname=rec.hostname,
        state=rec.state,
        score=rec.score,
        engine={"vm": rec.engine.vm, "health": rec.engine.health, "detail": rec.engine.detail, "reason": rec.engine.reason},
        local_maintenance=rec.local_maintenance,
        stopped=rec.stopped,
        seq=rec.seq,
        written_at=records.iso_time(rec.wall_time),
        details=list(rec.details),
    )
    fencing = fencings(rec.details, rec.host_id)
    if fencing:
        row["fencing"] = fencing
    if slot.kind == SlotKind.WRONG_HOST_ID:
        row["stale_reason"] = "wrong-host-id"
        return row
    if slot.number == me and local_maint.in_force(now_wall) != rec.local_maintenance:
        row["local_maintenance_pending"] = local_maint.in_force(now_wall)
    skew = rec.wall_time - now_wall
    if skew > CLOCK_SKEW_TOLERANCE:
        row["clock_skew_s"] = _round(skew)
    hv = view.hosts.get(slot.number) if view is not None else None
    if hv is not None:
        row["lease"] = hv.lease
    skewed = False
    if hv is not None and hv.seq == rec.seq:
        row["age_s"] = _round(hv.unchanged_for)
        live = hv.live
    elif skew > CLOCK_SKEW_TOLERANCE:  # its only evidence is a time we cannot have reached: no age, not live
        live, skewed = False, True
    else:
        age = max(0.0, now_wall - rec.wall_time)
        row["age_s"] = _round(age)
        live = age <= window
    if rec.stopped:
        row["live"], row["stale_reason"] = False, "agent-stopped"
    elif live:
        row["live"] = True
    elif skewed:
        row["stale_reason"] = "clock-skew"
    else:
        row["stale_reason"] = "local-agent-silent" if slot.number == me else "remote-host-silent"
    return row


def fencings(details: tuple[str, ...], by: int) -> list[dict[str, object]]:
    """The fencings a host's record reports (its agent keeps them for [ha] retry_window): who, when, why.

    Parsed from the record's detail lines (``fenced host=1 by=2 at=... reason=...``); a line that does
    not parse, or claims another author than the record's host, is left out."""
    import re

    out: list[dict[str, object]] = []
    for line in details:
        m = re.fullmatch(r"(fenced|fence-failed) host=(\d{1,4}) by=(\d{1,4}) at=(\S{1,40}) reason=(.{0,600})", line)
        if m and int(m[3]) == by:
            result = "confirmed" if m[1] == "fenced" else "failed"
            out.append({"host_id": int(m[2]), "by_host_id": by, "at": m[4], "result": result, "reason": m[5]})
    return out


def build_report(
    snapshot: MetadataSnapshot,
    *,
    host_id: int,
    hostname: str,
    window: float,
    silent_after: float,
    agent_view: AgentView | None,
    local_maintenance: LocalMaintenance,
    now_wall: float,
    now_mono: float,
    boot_id: str,
    storage: dict[str, object],
    host_filter: frozenset[int] = frozenset(),
    cluster_config: dict[str, object] | None = None,
) -> dict[str, object]:
    """The full vm-status report (``cluster_config``: the version in force here, and why not the domain's)."""
    agent = agent_section(agent_view, now_mono, boot_id, silent_after)
    view = agent_view if agent["status"] == "running" else None
    slots = list(snapshot.host_slots())
    if not any(s.number == host_id for s in slots):
        slots.append(snapshot.slot(host_id))
        slots.sort(key=lambda s: s.number)
    rows = [
        _host_row(s, host_id, window, now_wall, view, local_maintenance)
        for s in slots
        if not host_filter or s.number in host_filter
    ]
    live = [r for r in rows if r["live"]]
    engine_up = [r["host_id"] for r in live if isinstance(r["engine"], dict) and r["engine"]["vm"] == "up"]
    return {
        "this_host": {"host_id": host_id, "hostname": hostname},
        "storage": dict(
            storage,
            direct_io=snapshot.direct_io,
            read_ms=snapshot.read_ms,
            truncated=snapshot.truncated,
            metadata_size=snapshot.size,
            metadata_expected_size=records.METADATA_SIZE,
            problem=snapshot.truncation() or None,
        ),
        "global_maintenance": _global_section(snapshot, now_wall, view, now_mono),
        "local_agent": agent,
        "liveness": {"source": "agent" if view is not None else "wall-clock", "window_s": window},
        "hosts": rows,
        "summary": {
            "hosts": len([r for r in rows if r["slot"] != SlotKind.EMPTY]),
            "live": len(live),
            "stale": len([r for r in rows if not r["live"] and r["slot"] != SlotKind.EMPTY]),
            "problem_slots": len([r for r in rows if r["slot"] not in (SlotKind.VALID, SlotKind.EMPTY)]),
            "engine_up_on": engine_up,
        },
        "read_at": records.iso_time(snapshot.read_at_wall),
        **({"cluster_config": cluster_config} if cluster_config is not None else {}),
    }


OK, WARNING, CRITICAL, UNKNOWN = 0, 1, 2, 3
CHECK_NAMES = {OK: "OK", WARNING: "WARNING", CRITICAL: "CRITICAL", UNKNOWN: "UNKNOWN"}


def check(report: dict[str, object]) -> tuple[int, str]:
    """Nagios-style verdict and one-line summary with performance data."""
    g: dict = report["global_maintenance"]  # type: ignore[assignment]
    s: dict = report["summary"]  # type: ignore[assignment]
    hosts: list[dict] = report["hosts"]  # type: ignore[assignment]
    crit: list[str] = []
    warn: list[str] = []
    up = s["engine_up_on"]
    if len(up) > 1:
        crit.append(f"engine reported up on {len(up)} hosts ({', '.join(map(str, up))})")
    elif not up:
        (warn if g["active"] else crit).append("engine not up on any live host")
    if report["storage"].get("problem"):  # type: ignore[attr-defined]
        warn.append(str(report["storage"]["problem"]))  # type: ignore[index]
    shared: dict = report.get("cluster_config") or {}  # type: ignore[assignment]
    if shared.get("problem"):
        warn.append(f"cluster configuration: {shared['problem']}")
    if g["record"] not in (SlotKind.VALID, SlotKind.EMPTY):
        warn.append(f"global record {g['record']}: maintenance state unknown")
    if g["active"]:
        until = f", expires {g['expires_at']}" if g["expires_at"] else ", no expiry"
        warn.append(f"GLOBAL MAINTENANCE since {g['set_at']}{until}" + (f" ({g['reason']})" if g["reason"] else ""))
    for r in hosts:
        if r["slot"] == SlotKind.EMPTY:
            continue
        name = f"host {r['host_id']}" + (f" ({r['hostname']})" if r["hostname"] else "")
        if "clock_skew_s" in r:
            warn.append(f"{name} clock {r['clock_skew_s']:.0f} s ahead of ours")
        if r["stale_reason"] == "clock-skew":
            continue
        if r["stale_reason"]:
            warn.append(f"{name} {r['stale_reason']}")
        elif r["local_maintenance"]:
            warn.append(f"{name} in local maintenance")
        elif isinstance(r["engine"], dict) and r["engine"]["vm"] == "up" and r["engine"]["health"] != "good":
            warn.append(f"{name} engine health {r['engine']['health']}")
    if report["local_agent"]["status"] == "silent":  # type: ignore[index]
        warn.append("local agent silent")
    code = CRITICAL if crit else WARNING if warn else OK
    where = ", ".join(f"host {h}" for h in up) or "nowhere"
    perf = (
        f"live_hosts={s['live']};;;0 stale_hosts={s['stale']};;;0 problem_slots={s['problem_slots']};;;0 "
        f"global_maintenance={int(bool(g['active']))};;;0;1 storage_read_ms={report['storage']['read_ms']}ms"  # type: ignore[index]
    )
    items = crit + warn or [f"engine up on {where}"]
    return code, nagios_line(f"HECTL {CHECK_NAMES[code]}", items, f"{s['live']}/{s['hosts']} hosts live", perf)


def vm_status(app: AppContext, *, fmt: str, check: bool, host_filter: frozenset[int]) -> Output:
    """The status report (or, with ``check``, the Nagios verdict) as an ``Output``."""
    if check:
        return _check(app, fmt, host_filter)
    return Output("vm-status", build(app, host_filter), fmt)


def _check(app: AppContext, fmt: str, host_filter: frozenset[int]) -> Output:
    try:
        report = build(app, host_filter)
    except Exception as exc:  # a monitoring check answers in its own codes, always
        return _check_failure(exc, fmt)
    return _check_output(*check(report), fmt)


def build(app: AppContext, host_filter: frozenset[int]) -> dict[str, object]:
    """The vm-status report (reads the domain and the local state; connects only if the backend must)."""
    cfg = app.config
    backend = app.backend(connect=False)
    snapshot = app.store(connect=False).read_all()
    agent_view = localstate.read_agent_view(cfg.paths.state_dir)
    shared: dict[str, object] = {"version": app.cluster_version, "problem": app.cluster_problem or None}
    report = report_for(cfg, snapshot, app.clock, agent_view, backend.describe(), host_filter, shared)
    hosts = [[h["host_id"], h["hostname"] or ""] for h in report["hosts"] if h["slot"] == "valid"]  # type: ignore[attr-defined]
    localstate.update_completion_cache(cfg.paths.state_dir, hosts=hosts)
    return report


def report_for(
    cfg: Config,
    snapshot: MetadataSnapshot,
    clock: Clock,
    agent_view: AgentView | None,
    storage: dict[str, object],
    host_filter: frozenset[int] = frozenset(),
    cluster_config: dict[str, object] | None = None,
) -> dict[str, object]:
    """The report for ``snapshot`` as this host's configuration sees it now."""
    return build_report(
        snapshot,
        host_id=cfg.host.id,
        hostname=cfg.host.hostname,
        window=cfg.timeouts.liveness_window,
        silent_after=cfg.timeouts.agent_silent_after,
        agent_view=agent_view,
        local_maintenance=localstate.read_local_maintenance(cfg.paths.state_dir),
        now_wall=clock.wall(),
        now_mono=clock.monotonic(),
        boot_id=localstate.boot_id(),
        storage=storage,
        host_filter=host_filter,
        cluster_config=cluster_config,
    )


def _check_failure(exc: Exception, fmt: str) -> Output:
    from hectl.errors import ConfigError, HectlError, StorageError

    if isinstance(exc, StorageError):
        code, what = CRITICAL, "storage unreachable"
    elif isinstance(exc, ConfigError):
        code, what = UNKNOWN, "configuration problem"
    else:
        code, what = UNKNOWN, "check failed"
    message = exc.message if isinstance(exc, HectlError) else f"{type(exc).__name__}: {exc}"
    return _check_output(code, nagios_line(f"HECTL {CHECK_NAMES[code]}", [f"{what}: {message}"]), fmt)


def _check_output(code: int, line: str, fmt: str) -> Output:
    return Output("check", {"status": CHECK_NAMES[code], "code": code, "line": line}, fmt, code)
