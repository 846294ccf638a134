"""Guarded repairs of the shared state: re-initialise the sanlock lockspace, clean one host's metadata slot.

oVirt's equivalents are easy to misuse on a live cluster. Here both refuse
unless global maintenance is in force, the lockspace repair also while any
agent is live (per the records and per sanlock), and the slot cleaning while
that host is live; each says what it would change and acts only when asked
(``yes``); every action goes to the audit log.
"""

from __future__ import annotations

from hectl import audit
from hectl.errors import LockHeld, OperationFailed
from hectl.storage import records

TYPE_CHECKING = False  # typing.TYPE_CHECKING would import typing (see hectl.frozen)
if TYPE_CHECKING:
    from hectl.context import AppContext
    from hectl.storage.metadata import MetadataSnapshot


def _guard(app: AppContext, snapshot: MetadataSnapshot, action: str) -> None:
    if not snapshot.global_record.maintenance_active(app.clock.wall()):
        raise OperationFailed(
            f"{action} is refused outside global maintenance",
            hint="hectl set-maintenance --mode global --reason ... first (the agents then change nothing)",
        )


def live_hosts(app: AppContext, snapshot: MetadataSnapshot) -> list[int]:
    """Hosts whose agent published recently and did not say it stopped."""
    now, window = app.clock.wall(), app.config.timeouts.liveness_window
    live = []
    for slot in snapshot.host_slots():
        rec = slot.record
        if isinstance(rec, records.HostRecord) and not rec.stopped and -window < now - rec.wall_time < window:
            live.append(slot.number)
    return live


def _record(app: AppContext, action: str, yes: bool, detail: dict[str, object]) -> dict[str, object]:
    cfg = app.config
    result: dict[str, object] = {"action": action, "done": yes, **detail}
    if yes:
        entry = {"action": action, "at": records.iso_time(app.clock.wall()), "from_host_id": cfg.host.id, **detail}
        problem = audit.append(cfg.audit_log, entry)
        if problem:
            result["audit_problem"] = problem
    return result


def reinitialize_lockspace(app: AppContext, yes: bool) -> dict[str, object]:
    """Rewrite the lockspace and the engine lease (every host id and the lease owner are forgotten)."""
    from hectl.lease import SanlockLeases

    snapshot = app.store().read_all()
    _guard(app, snapshot, "reinitialize-lockspace")
    live = live_hosts(app, snapshot)
    leases = app.leases()
    in_sanlock = sorted(h for h, state in leases.hosts().items() if state == "live")
    if live or in_sanlock:
        raise LockHeld(
            f"agents are live (records of hosts {live or '-'}, sanlock sees hosts {in_sanlock or '-'} live): "
            "rewriting the lockspace under them would make sanlock fence them",
            hint="stop the agent on every host (systemctl stop hectl-ha) and wait for their records to show stopped",
        )
    paths = app.backend().paths()
    detail = {"lockspace": paths.lockspace, "engine_lease": paths.engine_lease, "io_timeout": app.config.ha.io_timeout}
    if yes:
        SanlockLeases(
            paths, app.config.host.id, int(app.config.ha.io_timeout), lambda p: app.backend().check_file(p, app.timeout)
        ).initialize()
    return _record(app, "reinitialize-lockspace", yes, detail)


def clean_metadata(app: AppContext, host_id: int, yes: bool) -> dict[str, object]:
    """Empty host ``host_id``'s metadata slot (a host that left for good, or a corrupt slot)."""
    snapshot = app.store().read_all()
    _guard(app, snapshot, "clean-metadata")
    if host_id in live_hosts(app, snapshot):
        raise LockHeld(f"host {host_id} is live (its agent published recently)", hint="stop its agent first")
    slot = snapshot.slot(host_id)
    rec = slot.record
    detail: dict[str, object] = {"host_id": host_id, "slot": slot.kind}
    if isinstance(rec, records.HostRecord):
        detail.update(hostname=rec.hostname, written_at=records.iso_time(rec.wall_time), state=rec.state)
    if yes:
        app.store().clear_slot(host_id)
    return _record(app, "clean-metadata", yes, detail)
