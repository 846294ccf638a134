"""The engine VM's lifecycle on this host: start under its lease, shut down, power off, console password.

Each operation returns plain data for the renderer (fields documented in
docs/vm.md) and raises ``HectlError`` subclasses: ``LockHeld`` (exit 5) when
the engine runs elsewhere, ``VMStateError`` (6) when it is not here,
``WaitTimeout`` (7) when a ``--wait`` runs out.
"""

from __future__ import annotations

import errno
import os

from hectl import localstate, status
from hectl.errors import LockHeld, OperationFailed, StorageError, VMStateError, WaitTimeout
from hectl.lease import LEASE_FREE, LEASE_UNKNOWN, host_dead_seconds
from hectl.vm import spec as vmspec
from hectl.vm import xml as vmxml

TYPE_CHECKING = False  # typing.TYPE_CHECKING would import typing (see hectl.frozen)
if TYPE_CHECKING:
    from collections.abc import Callable

    from hectl.config import Config
    from hectl.context import AppContext
    from hectl.storage.backend import StorageBackend
    from hectl.storage.metadata import MetadataSnapshot
    from hectl.vm.hypervisor import Hypervisor, VMInfo

    Waiting = Callable[[str, float, float], None]

RUNNING = ("up", "paused", "starting")
POLL = 0.5
VNC_PASSWORD_MAX = 8  # VNC authentication uses DES: only the first 8 characters count


def _running_elsewhere(app: AppContext, snapshot: MetadataSnapshot) -> tuple[int, str] | None:
    """A live host whose record says the engine VM runs there."""
    cfg = app.config
    view = localstate.read_agent_view(cfg.paths.state_dir)
    report = status.report_for(cfg, snapshot, app.clock, view, {})
    for row in report["hosts"]:  # type: ignore[attr-defined]
        engine = row["engine"] or {}
        if not row["this_host"] and row["live"] and engine.get("vm") in RUNNING:
            return int(row["host_id"]), str(row["hostname"] or "")
    return None


def _hostname_of(snapshot: MetadataSnapshot, host_id: int) -> str:
    rec = snapshot.slot(host_id).record
    return str(getattr(rec, "hostname", "") or "")


def not_here(app: AppContext, name: str) -> VMStateError:
    """The polite refusal for a VM that is not on this host, saying where it is when the records know."""
    try:
        elsewhere = _running_elsewhere(app, app.store().read_all())
    except Exception:  # only for the hint: the refusal stands without it
        elsewhere = None
    hint = f"it runs on host {elsewhere[0]} ({elsewhere[1]}): run this there" if elsewhere else None
    return VMStateError(f"the engine VM ({name}) is not running on this host", hint=hint)


def start(
    app: AppContext,
    *,
    paused: bool = False,
    timeout: float | None = None,
    wait: float | None = None,
    healthy: bool = False,
    progress: Callable[[str], None] = lambda _msg: None,
    waiting: Waiting = lambda _what, _elapsed, _limit: None,
) -> dict[str, object]:
    """Start the engine VM here unless it runs elsewhere (per the records and per the engine lease).

    ``waiting(what, elapsed, limit)`` is called on every poll of a ``wait``.
    """
    from hectl.vm.hypervisor import choose_accel

    cfg = app.config
    began = app.clock.monotonic()
    spec = vmspec.read(app.backend(), app.timeout)
    hyper = app.hypervisor()
    accel, accel_reason = choose_accel(cfg.vm.accelerator)
    result: dict[str, object] = {"action": "start", "vm": spec.name, "host_id": cfg.host.id, "paused": paused}
    info = hyper.info(spec.name)
    if info.state == "paused" and not paused:
        hyper.resume(spec.name)
        result.update(result="resumed", accel=info.accel, waited_for_lease_s=0.0)
    elif info.state in RUNNING:
        result.update(result="already-running", state=info.state, accel=info.accel, waited_for_lease_s=0.0)
    else:
        snapshot = app.store().read_all()
        elsewhere = _running_elsewhere(app, snapshot)
        if elsewhere:
            raise LockHeld(
                f"the engine VM runs on host {elsewhere[0]} ({elsewhere[1]}) per its record",
                hint="stop it there first, or move it with maintenance",
            )
        leases = app.leases()
        if leases.state() != "held":
            raise OperationFailed(
                f"this host (id {cfg.host.id}) has not joined the sanlock lockspace, so it cannot take the engine lease",
                hint="start the HA agent (hectl ha run) and wait until vm-status shows this host live",
            )
        holder = leases.engine_holder()
        limit = timeout if timeout is not None else cfg.vm.start_timeout
        if holder not in (LEASE_FREE, LEASE_UNKNOWN, cfg.host.id):
            seen = leases.hosts().get(holder, "unknown")
            who = f"host {holder} ({_hostname_of(snapshot, holder) or 'no record'})"
            if seen == "live":
                raise LockHeld(f"the engine VM runs on {who}: it holds the engine lease and sanlock sees it live")
            progress(
                f"{who} still holds the engine lease (sanlock sees it {seen}); waiting for the lease to expire, "
                f"up to about {host_dead_seconds(cfg.ha.io_timeout):.0f} s after its last renewal (giving up after {limit:g} s)"
            )
        xml = host_domain_xml(cfg, spec, app.backend(), accel)
        t0 = app.clock.monotonic()
        hyper.start(xml, paused=paused, timeout=limit)
        result.update(result="started", accel=accel, waited_for_lease_s=round(app.clock.monotonic() - t0, 3))
    result["accel_reason"] = accel_reason
    if wait is not None:
        info = _wait_running(app, spec.name, wait, began, waiting)
        result["state"] = info.state
        if healthy and not paused:
            result["healthy"] = _wait_healthy(app, wait, began, waiting)
    else:
        result["state"] = hyper.info(spec.name).state
    result["elapsed_s"] = round(app.clock.monotonic() - began, 3)
    return result


def host_domain_xml(cfg: Config, spec: vmspec.EngineSpec, backend: StorageBackend, accel: str) -> str:
    """The engine's libvirt XML on this host (its console log directory created), for ``vm-start`` and the agent.

    libvirt, QEMU and sanlock get the domain's files by path: each must be a
    regular file inside the domain (``StorageError`` naming it), not a link
    planted there. A missing image is left for libvirt to report.
    """
    paths = backend.paths()
    images = [os.path.join(paths.images_dir, rel) for rel in (spec.kernel, spec.initrd, spec.disk) if rel]
    for path in (paths.engine_lease, *images):
        try:
            backend.check_file(path, cfg.storage.timeout)
        except StorageError as exc:
            if exc.errno != errno.ENOENT:
                raise
    os.makedirs(os.path.dirname(cfg.console_log), exist_ok=True)
    return vmxml.domain_xml(spec, paths, accel=accel, console_log=cfg.console_log, console_lock=vmxml.console_lock())


def _wait_running(app: AppContext, name: str, wait: float, began: float, waiting: Waiting) -> VMInfo:
    hyper = app.hypervisor()
    while True:
        info = hyper.info(name)
        if info.state in ("up", "paused"):
            return info
        if info.state == "down":
            raise OperationFailed(f"the engine VM stopped while starting ({info.detail})")
        elapsed = app.clock.monotonic() - began
        if elapsed >= wait:
            raise WaitTimeout(f"the engine VM is not running after {wait:g} s (state {info.state})")
        waiting(f"the engine VM to run (now {info.state})", elapsed, wait)
        app.clock.sleep(POLL)


def _wait_healthy(app: AppContext, wait: float, began: float, waiting: Waiting) -> bool:
    from hectl.vm import liveliness

    engine = app.config.engine
    if not engine.url():
        raise OperationFailed("--healthy needs the engine's health URL", hint="set [engine] fqdn or health_url")
    while True:
        # Short probes: a booting guest behind user networking has its port forward accept and hold connections.
        probe = liveliness.check(engine.url(), min(engine.health_timeout, 1.0), engine.health_ca)
        if probe.healthy:
            return True
        elapsed = app.clock.monotonic() - began
        if elapsed >= wait:
            raise WaitTimeout(f"the engine VM runs but is not healthy after {wait:g} s ({probe.detail})")
        waiting(f"the engine to be healthy (now {probe.detail})", elapsed, wait)
        app.clock.sleep(POLL)


def engine_here(app: AppContext, warn: Callable[[str], None] | None = None) -> tuple[vmspec.EngineSpec, Hypervisor]:
    """Spec and hypervisor of the engine VM running on this host, else ``VMStateError``.

    With ``warn``: also warn unless global maintenance is set (the agents would undo a stop).
    """
    spec = vmspec.read(app.backend(), app.timeout)
    hyper = app.hypervisor()
    if hyper.info(spec.name).state not in RUNNING:
        raise not_here(app, spec.name)
    if warn is not None and not _global_maintenance(app):
        warn("global maintenance is not set: the HA agents will start the engine again")
    return spec, hyper


def _global_maintenance(app: AppContext) -> bool:
    try:
        return app.store().read_all().global_record.maintenance_active(app.clock.wall())
    except Exception:  # only decides whether to warn
        return True


def shutdown(
    app: AppContext,
    *,
    wait: float | None = None,
    force_after: float | None = None,
    warn: Callable[[str], None] = lambda _msg: None,
    waiting: Waiting = lambda _what, _elapsed, _limit: None,
) -> dict[str, object]:
    """ACPI power-button shutdown; with ``wait`` until the guest is off; ``force_after`` escalates to power-off.

    ``waiting(what, elapsed, limit)`` is called on every poll while waiting.
    """
    began = app.clock.monotonic()
    spec, hyper = engine_here(app, warn)
    hyper.shutdown(spec.name)
    result: dict[str, object] = {"action": "shutdown", "vm": spec.name, "host_id": app.config.host.id, "result": "requested"}
    limit = force_after if force_after is not None else wait
    if limit is not None:
        what = "the guest to power off" + (" (then power-off)" if force_after is not None else "")
        while hyper.info(spec.name).state in RUNNING:
            elapsed = app.clock.monotonic() - began
            if elapsed >= limit:
                if force_after is None:
                    raise WaitTimeout(
                        f"the engine VM is still running {wait:g} s after the shutdown request",
                        hint="use --force-after SECONDS or vm-poweroff",
                    )
                hyper.poweroff(spec.name)
                result["result"] = "forced"
                break
            waiting(what, elapsed, limit)
            app.clock.sleep(POLL)
        else:
            result["result"] = "shut-down"
    result["elapsed_s"] = round(app.clock.monotonic() - began, 3)
    return result


def poweroff(app: AppContext, *, warn: Callable[[str], None] = lambda _msg: None) -> dict[str, object]:
    """Stop the engine VM at once (its lease is released when QEMU exits)."""
    began = app.clock.monotonic()
    spec, hyper = engine_here(app, warn)
    hyper.poweroff(spec.name)
    return {
        "action": "poweroff",
        "vm": spec.name,
        "host_id": app.config.host.id,
        "result": "powered-off",
        "elapsed_s": round(app.clock.monotonic() - began, 3),
    }


def console_password(app: AppContext, password: str, expire: float) -> dict[str, object]:
    """Set a temporary password on the engine VM's graphical console; it stops working after ``expire`` seconds."""
    import time

    if not password:
        raise OperationFailed("the console password is empty")
    spec, hyper = engine_here(app)
    expires = app.clock.wall() + expire
    valid_to = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(expires))
    truncated = spec.graphics == "vnc" and len(password) > VNC_PASSWORD_MAX
    if truncated:  # what a VNC client sends anyway; libvirt refuses longer ones
        password = password[:VNC_PASSWORD_MAX]
    graphics = hyper.set_console_password(spec.name, password, valid_to)
    return {
        "vm": spec.name,
        "address": graphics.address,
        "type": graphics.type,
        "expires_at": valid_to + "Z",
        "expire_s": expire,
        "truncated": truncated,
    }
