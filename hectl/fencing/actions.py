"""``hectl fence check`` and ``hectl fence off``: the devices as an admin uses them."""

from __future__ import annotations

from hectl import audit
from hectl.errors import ConfigError, HectlError, Interrupted, OperationFailed, UsageError, WaitTimeout
from hectl.fencing import device, fence, takeover
from hectl.storage import records

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

    from hectl.context import AppContext


def check(app: AppContext, host_id: int | None) -> tuple[dict[str, object], int]:
    """Ask every configured device (or host ``host_id``'s) whether it answers and what power it sees.

    Returns the report and its exit code: 0 when every device checked works, 1 otherwise.
    """
    cfg = app.config.fencing
    hosts = [host_id] if host_id is not None else [h for h, _ in cfg.devices]
    if not hosts:
        raise ConfigError(
            "no host has a fence device", hint="hectl cluster-config set fencing.host1='fence_ipmilan ip=... username=...'"
        )
    methods = app.plugins.fence_methods()
    results = []
    for h in hosts:
        dev = device.configured(cfg, h)
        try:
            dev, method = device.build(cfg, h, methods)
        except HectlError as exc:
            failed = {"host_id": h, "device": dev.describe(), "works": False, "power": "unknown", "problem": exc.message}
            results.append({**failed, "elapsed_s": 0.0, "steps": []})
            continue
        results.append(fence.check(method, h, dev.describe(), cfg.timeout).to_dict())
    works = all(r["works"] for r in results)
    return {"enabled": cfg.enabled, "works": works, "devices": results}, 0 if works else 1


def power_off(app: AppContext, host_id: int, say: Callable[[str], None] = lambda _m: None) -> dict[str, object]:
    """Power host ``host_id`` off through its device, confirm it, then free its sanlock host id.

    Once the device reports the host off, its delta lease is released
    (``takeover.fence_and_free``) so that the engine lease it may hold can be
    taken at once instead of after sanlock's host_dead_seconds. Audited before and after,
    an interruption too: what it left behind (``fence.COMPLETED``, ``KILLED_BEFORE_OFF``,
    ``UNKNOWN``) is recorded before ``Interrupted`` is raised. ``say``: progress for people.
    """
    cfg = app.config
    if host_id == cfg.host.id:
        raise UsageError(f"host {host_id} is this host: a host cannot fence itself", hint="run it on another host")
    dev, method = device.build(cfg.fencing, host_id, app.plugins.fence_methods())
    method.on_wait = say
    entry = {"action": "fence-off", "host_id": host_id, "device": dev.describe()}
    _audit(app, {**entry, "result": "started"})
    try:
        done = takeover.fence_and_free(method, host_id, dev.describe(), cfg.fencing.timeout, app.backend().paths(), app.timeout)
    except KeyboardInterrupt as exc:  # before the device was asked anything
        _interrupted(app, entry, fence.KILLED_BEFORE_OFF, "interrupted before the power-off: nothing was sent", exc)
        raise  # not reached
    outcome = done.outcome
    if outcome.signal:
        what = outcome.interruption
        _interrupted(app, entry, what, outcome.reason, Interrupted(outcome.signal), power=outcome.power)
    result: dict[str, object] = {
        **outcome.to_dict(),
        "by_host_id": cfg.host.id,
        "host_id_freed": done.freed,
        "free_problem": done.problem if outcome.confirmed else "",
    }
    problem = _audit(
        app,
        {
            "action": "fence-off",
            "host_id": host_id,
            "device": dev.describe(),
            "result": "confirmed" if outcome.confirmed else "failed",
            "reason": outcome.reason,
            "host_id_freed": result["host_id_freed"],
        },
    )
    if problem:
        result["audit_problem"] = problem
    if not outcome.confirmed:
        error = WaitTimeout if any(s.code is None for s in outcome.steps) else OperationFailed
        hint = f"check the device: hectl fence check --host-id {host_id}"
        raise error(f"host {host_id} is not confirmed off: {outcome.reason}", hint=hint)
    return result


def _interrupted(
    app: AppContext, entry: dict[str, object], what: str, why: str, exc: KeyboardInterrupt, power: str = "unknown"
) -> None:
    """Record what an interruption of ``fence off`` left behind, then raise it as ``Interrupted``."""
    problem = _audit(app, {**entry, "result": "interrupted", "outcome": what, "reason": why, "power": power})
    signum = getattr(exc, "signum", 2)
    message = f"fence off of host {entry['host_id']}: {why} (recorded as '{what}' in the audit log)"
    if what == fence.UNKNOWN:
        message += "; the host may be off: check it with 'hectl fence check'"
    raise Interrupted(signum, message + (f"; and {problem}" if problem else "")) from None


def _audit(app: AppContext, entry: dict[str, object]) -> str:
    head = {"at": records.iso_time(app.clock.wall()), "by_host_id": app.config.host.id}
    return audit.append(app.config.audit_log, {**head, **entry})
