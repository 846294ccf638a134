"""Live migration of the engine VM to another host, its lease moving with it (docs/vm.md, "Live migration").

``candidates`` judges every other host from its record and sanlock's view, ``request`` says how this host's
libvirtd reaches the target's, ``migrate`` is ``hectl vm-migrate``. The HA agent's migration on local
maintenance goes through ``request`` too. A host's record is untrusted: its hostname becomes part of a libvirt
URI only when it is a plain DNS name or an IP address.
"""

from __future__ import annotations

import ipaddress
import re
import threading

from hectl import audit, localstate, status
from hectl.errors import LockHeld, OperationFailed, UsageError, VMStateError, WaitTimeout
from hectl.frozen import Frozen
from hectl.storage import records
from hectl.vm import control
from hectl.vm.hypervisor import MigrationRequest

TYPE_CHECKING = False  # typing.TYPE_CHECKING would import typing (see hectl.frozen)
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence
    from typing import Any

    from hectl.config import VMConfig
    from hectl.context import AppContext
    from hectl.vm.hypervisor import MigrationProgress

RESOLVE_TIMEOUT = 5.0  # seconds for the target's name to resolve
_LABEL = re.compile(r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)")


class Candidate(Frozen):
    """Another host, and why it cannot take the engine ('' when it can)."""

    host_id: int
    hostname: str
    score: int
    why_not: str = ""


def usable_hostname(name: str) -> bool:
    """``name`` is an IP address or a DNS name (labels of letters, digits and inner hyphens): safe in a URI."""
    try:
        ipaddress.ip_address(name)
        return True
    except ValueError:
        pass
    return 0 < len(name) <= 253 and all(_LABEL.fullmatch(label) for label in name.rstrip(".").split("."))


def candidates(rows: Sequence[Mapping[str, Any]], lease_view: Mapping[int, str]) -> list[Candidate]:
    """Every other host of a vm-status report (``rows``), judged; ``lease_view``: sanlock's word on host ids."""
    out = []
    for row in rows:
        if row.get("this_host") or row.get("slot") != records.SlotKind.VALID:
            continue
        host_id, hostname = int(row["host_id"]), str(row.get("hostname") or "")
        score = row["score"] if isinstance(row.get("score"), int) else 0
        engine = row["engine"] if isinstance(row.get("engine"), dict) else {}
        lease = lease_view.get(host_id, "unknown")
        why = ""
        if not row.get("live"):
            why = f"not live ({row.get('stale_reason') or 'its record is not changing'})"
        elif row.get("local_maintenance"):
            why = "in local maintenance"
        elif engine.get("vm") in control.RUNNING:
            why = f"its record says the engine VM is {engine.get('vm')} there"
        elif score <= 0:
            why = "score 0"
        elif lease != "live":
            why = f"sanlock sees its host id {lease}: it cannot take the engine lease"
        elif not usable_hostname(hostname):
            why = f"its hostname {hostname!r} is not a DNS name or an IP address"
        out.append(Candidate(host_id, hostname, int(score), why))
    return out


def choose(found: Sequence[Candidate], to: int | None) -> Candidate:
    """The host to migrate to: ``to``, or the best-scoring one that can take the engine (lowest id on a tie)."""
    if to is not None:
        picked = next((c for c in found if c.host_id == to), None)
        if picked is None:
            raise UsageError(f"host {to} is not another host with a record on the domain")
        if picked.why_not:
            raise LockHeld(f"host {to} cannot take the engine: {picked.why_not}")
        return picked
    able = sorted((c for c in found if not c.why_not), key=lambda c: (-c.score, c.host_id))
    if not able:
        why = "; ".join(f"host {c.host_id}: {c.why_not}" for c in found) or "there is no other host"
        raise LockHeld(f"no other host can take the engine ({why})")
    return able[0]


def resolve(hostname: str, timeout: float = RESOLVE_TIMEOUT) -> str:
    """The address ``hostname`` resolves to (the first getaddrinfo gives), within ``timeout``."""
    import socket

    found: list[str] = []
    problem: list[str] = []

    def look() -> None:
        try:
            found.append(str(socket.getaddrinfo(hostname, None, type=socket.SOCK_STREAM)[0][4][0]))
        except OSError as exc:
            problem.append(str(exc))

    worker = threading.Thread(target=look, name="resolve", daemon=True)
    worker.start()
    worker.join(timeout)
    if not found:
        why = problem[0] if problem else f"no answer within {timeout:g} s"
        raise OperationFailed(
            f"cannot resolve the target's hostname {hostname}: {why}",
            hint="a host's [host] hostname must be the name (or address) the other hosts reach it at",
        )
    return found[0]


def request(vm: VMConfig, hostname: str, address: str, *, unsafe: bool, timeout: float, bandwidth: int) -> MigrationRequest:
    """How this host's libvirtd reaches the target's (``hostname``, the name its certificate carries) and where
    QEMU sends the migration stream (``address``)."""
    from urllib.parse import quote

    tls = vm.migration_transport == "tls"
    host = f"[{hostname}]" if ":" in hostname else hostname
    query = f"?pkipath={quote(vm.migration_pki_dir)}" if tls and vm.migration_pki_dir else ""
    stream = f"[{address}]" if ":" in address else address
    return MigrationRequest(
        dest_uri=f"qemu+{'tls' if tls else 'tcp'}://{host}/system{query}",
        migrate_uri=f"tcp://{stream}",
        tls=tls,
        unsafe=unsafe,
        bandwidth_mib=bandwidth,
        timeout=timeout,
    )


def migrate(
    app: AppContext,
    *,
    to: int | None = None,
    timeout: float | None = None,
    bandwidth: int | None = None,
    wait: bool = False,
    progress: Callable[[MigrationProgress], None] = lambda _p: None,
    waiting: control.Waiting = lambda _what, _elapsed, _limit: None,
) -> dict[str, object]:
    """Live-migrate the engine VM from this host; with ``wait`` until the target's agent has it up and its health
    page answers. Every attempt goes to the audit log."""
    cfg = app.config
    began = app.clock.monotonic()
    limit = timeout if timeout is not None else cfg.vm.migration_timeout
    spec, hyper = control.engine_here(app)
    info = hyper.info(spec.name)
    if info.state != "up":
        raise VMStateError(f"the engine VM is {info.state} here ({info.detail}): only a running VM migrates")
    snapshot = app.store().read_all()
    report = status.report_for(cfg, snapshot, app.clock, localstate.read_agent_view(cfg.paths.state_dir), {})
    rows: Sequence[Mapping[str, Any]] = report["hosts"]  # type: ignore[assignment]
    target = choose(candidates(rows, app.leases().hosts()), to)
    req = request(
        cfg.vm,
        target.hostname,
        resolve(target.hostname),
        unsafe=not app.backend().libvirt_sees_shared,
        timeout=limit,
        bandwidth=cfg.vm.migration_bandwidth if bandwidth is None else bandwidth,
    )
    phases: dict[str, float] = {"checked": app.clock.monotonic() - began}

    def seen(p: MigrationProgress) -> None:
        phases.setdefault(p.phase, round(app.clock.monotonic() - began, 3))
        progress(p)

    result: dict[str, object] = {
        "action": "migrate",
        "vm": spec.name,
        "host_id": cfg.host.id,
        "to_host_id": target.host_id,
        "to_hostname": target.hostname,
        "transport": cfg.vm.migration_transport,
    }
    try:
        moved = hyper.migrate(spec.name, req, seen)
    except Exception as exc:
        _audit(app, result, f"failed: {getattr(exc, 'message', exc)}")
        raise
    phases["running-there"] = app.clock.monotonic() - began
    result.update(
        result="migrated", migration_s=moved.seconds, downtime_ms=moved.downtime_ms, transferred_mib=moved.transferred_mib
    )
    _audit(app, result, "migrated")
    if wait:
        _wait_taken_over(app, target.host_id, limit, began, phases, waiting)
    result["phases"] = [{"phase": name, "at_s": round(at, 3)} for name, at in sorted(phases.items(), key=lambda p: p[1])]
    result["elapsed_s"] = round(app.clock.monotonic() - began, 3)
    return result


def _wait_taken_over(
    app: AppContext, target: int, limit: float, began: float, phases: dict[str, float], waiting: control.Waiting
) -> None:
    """Until the target's record says the engine is up there and, where configured, the health page answers."""
    from hectl.vm import liveliness

    url = app.config.engine.url()
    while True:
        rec = app.store().read_all().slot(target).record
        if "target-agent" not in phases and isinstance(rec, records.HostRecord) and rec.engine.vm == "up":
            phases["target-agent"] = app.clock.monotonic() - began
        probe = min(app.config.engine.health_timeout, 1.0)
        if "target-agent" in phases and (not url or liveliness.check(url, probe, app.config.engine.health_ca).healthy):
            phases["healthy"] = app.clock.monotonic() - began
        if "healthy" in phases:
            return
        elapsed = app.clock.monotonic() - began
        if elapsed >= limit:
            what = "its health page does not answer" if "target-agent" in phases else "its agent does not report it up"
            raise WaitTimeout(f"the engine VM runs on host {target}, but after {limit:g} s {what}")
        waiting(f"host {target} to take the engine over", elapsed, limit)
        app.clock.sleep(control.POLL)


def _audit(app: AppContext, result: dict[str, object], outcome: str) -> None:
    cfg = app.config
    entry = {
        "action": "vm-migrate",
        "at": records.iso_time(app.clock.wall()),
        "from_host_id": cfg.host.id,
        "to_host_id": result["to_host_id"],
        "result": outcome,
    }
    problem = audit.append(cfg.audit_log, entry)
    if problem:
        result["audit_problem"] = problem
