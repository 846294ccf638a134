"""Set global or local maintenance, with reason, TTL and an audit trail.

- ``global``: cluster-wide, stored in slot 0 of the metadata file; agents stop
  acting on the engine while it is in force. A TTL makes it expire by itself.
- ``local``: this host only, stored in the host-local state directory; the
  local agent publishes it in the host record and gives this host score 0.
- ``none``: clears global maintenance and this host's local maintenance.

Every change is appended to the local audit log as one JSON line.
"""

from __future__ import annotations

import getpass
import os
from typing import TYPE_CHECKING

from hectl import audit, localstate
from hectl.errors import HectlError, Interrupted, LockHeld, OperationFailed, StorageError
from hectl.storage import records
from hectl.storage.directio import WriteUncertain
from hectl.text import escape

if TYPE_CHECKING:
    from collections.abc import Callable

    from hectl.clock import Clock
    from hectl.storage.metadata import MetadataStore

MODES = ("global", "local", "none")
MAX_REASON_BYTES = 255


def check_reason(reason: str) -> str:
    """``reason`` if it is one line of printable text within the size limit, else ValueError.

    Refused: C0 and C1 controls, DEL, bidi and other format characters, line separators and
    spaces other than ' ' (``str.isprintable``). '|' is accepted: the Nagios line shows it as '/'.
    """
    if not reason.isprintable():
        bad = next(c for c in reason if not c.isprintable())
        raise ValueError(f"the reason must be one line of printable text (it contains {escape(bad)})")
    if len(reason.encode("utf-8")) > MAX_REASON_BYTES:
        raise ValueError(f"the reason is longer than {MAX_REASON_BYTES} bytes")
    return reason


def who(hostname: str) -> str:
    """``user@host`` of the human behind this command (the sudo caller when there is one)."""
    user = os.environ.get("SUDO_USER") or ""
    if not user:
        try:
            user = getpass.getuser()
        except (KeyError, OSError):
            user = f"uid{os.getuid()}"
    return f"{user}@{hostname}"[:128]


def set_maintenance(
    mode: str,
    *,
    reason: str,
    ttl: float | None,
    store: Callable[[], MetadataStore],
    state_dir: str,
    audit_log: str,
    host_id: int,
    hostname: str,
    clock: Clock,
    notify: Callable[..., None] | None = None,
) -> dict[str, object]:
    """Apply ``mode``; return what changed, as plain data for the renderer.

    ``store`` is called only when shared storage is needed (global and none).
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {', '.join(MODES)}")
    now = clock.wall()
    expires = now + ttl if ttl else None
    actor = who(hostname)
    changes: list[dict[str, object]] = []

    old_local = localstate.read_local_maintenance(state_dir)
    if mode in ("local", "none") and (mode == "local" or old_local.active):
        want_on = mode == "local"
        new_local = localstate.LocalMaintenance(
            active=want_on,
            reason=reason if want_on else "",
            set_by=actor,
            set_at=now,
            expires_at=expires if want_on else None,
        )
        try:
            localstate.write_local_maintenance(state_dir, new_local)
        except OSError as exc:
            raise OperationFailed(f"cannot write local maintenance state in {state_dir}: {exc.strerror}") from exc
        changes.append(_change("local", host_id, old_local.in_force(now), want_on, reason, actor, now, new_local.expires_at))

    if mode in ("global", "none"):  # local maintenance above never needs shared storage
        try:
            _set_global(mode == "global", reason, expires, actor, now, store, changes)
        except (StorageError, LockHeld, Interrupted) as exc:
            if any(c["scope"] == "local" for c in changes):
                exc.message += " (local maintenance was cleared)"
            audit_problem = _finish(changes, audit_log, host_id, notify)
            if audit_problem:  # the storage failure is what the caller must hear about first
                exc.message += f"; and {audit_problem}"
            raise

    audit_problem = _finish(changes, audit_log, host_id, notify)
    if audit_problem:
        raise HectlError(f"maintenance changed, but {audit_problem}")
    return {
        "mode": mode,
        "changes": [
            dict(c, set_at=records.iso_time(c["set_at"]), expires_at=_iso_or_none(c["expires_at"]))  # type: ignore[arg-type]
            for c in changes
        ],
        "audit_log": audit_log,
    }


def _global_change(
    slot: records.Slot, want_on: bool, reason: str, expires: float | None, actor: str, now: float
) -> records.GlobalRecord | None:
    """The global record to write over ``slot`` (``None``: nothing to do); pure."""
    if slot.kind == records.SlotKind.TOO_NEW:
        raise StorageError(f"the global record was written by a newer hectl ({slot.problem}); refusing to overwrite it")
    old = slot.record if isinstance(slot.record, records.GlobalRecord) else records.GlobalRecord()
    if not (want_on or old.maintenance or slot.kind == records.SlotKind.CORRUPT):
        return None  # already off: nothing to write
    return records.GlobalRecord(
        seq=(old.seq + 1) % 2**64,
        maintenance=want_on,
        reason=reason if want_on else "",
        set_by=actor,
        set_at=now,
        expires_at=expires if want_on else None,
    )


def _set_global(
    want_on: bool,
    reason: str,
    expires: float | None,
    actor: str,
    now: float,
    store: Callable[[], MetadataStore],
    changes: list[dict[str, object]],
) -> None:
    """Read-modify-write slot 0 under the domain's update lock: concurrent commands queue, none is lost."""
    target = "global" if want_on else "none"

    def change(slot: records.Slot) -> records.GlobalRecord | None:
        return _global_change(slot, want_on, reason, expires, actor, now)

    def unknown(before: bytes) -> None:
        was = records.decode_slot(0, before).record
        was_on = isinstance(was, records.GlobalRecord) and was.maintenance_active(now)
        changes.append(dict(_change("global", None, was_on, want_on, reason, actor, now, expires), outcome="unknown"))

    try:
        result = store().update_global(change)
    except WriteUncertain as exc:
        # The write reached the storage (or timed out there) and may still land: the outcome is unknown.
        unknown(exc.before)
        exc.message = f"global maintenance may or may not have been set to '{target}' (outcome unknown): {exc.message}"
        exc.hint = "check with 'hectl vm-status' once the storage answers, and repeat the command if needed"
        raise
    except KeyboardInterrupt as exc:  # SIGINT, or SIGTERM/SIGHUP under errors.signals_interrupt
        stop = exc if isinstance(exc, Interrupted) else Interrupted()
        if not stop.write_started:
            stop.message = "global maintenance unchanged"
            raise stop from None
        unknown(stop.before)
        stop.message = f"global maintenance may or may not have been set to '{target}' (outcome unknown)"
        stop.hint = "check with 'hectl vm-status', and repeat the command if needed"
        raise stop from None
    except (StorageError, LockHeld) as exc:
        exc.message = f"global maintenance unchanged: {exc.message}"
        raise
    slot = records.decode_slot(0, result.data)
    new = change(slot)  # raises what the helper's run raised (a record too new to overwrite)
    if new is None or not result.written:
        return
    old = slot.record if isinstance(slot.record, records.GlobalRecord) else records.GlobalRecord()
    changes.append(_change("global", None, old.maintenance_active(now), want_on, reason, actor, now, new.expires_at))


def _finish(changes: list[dict[str, object]], audit_log: str, host_id: int, notify: Callable[..., None] | None) -> str:
    """Log and announce ``changes``; return what went wrong with the audit log ('' when nothing)."""
    problem = ""
    for change in changes:
        failed = _audit(audit_log, change, host_id)
        problem = problem or failed
        if notify is not None and change.get("outcome") != "unknown":
            notify(**{k: change[k] for k in _EVENT_KEYS})
    return problem


_EVENT_KEYS = ("scope", "host_id", "old_mode", "new_mode", "reason", "set_by", "expires_at")


def _iso_or_none(t: float | None) -> str | None:
    return records.iso_time(t) if t is not None else None


def _change(
    scope: str, host_id: int | None, was_on: bool, on: bool, reason: str, actor: str, now: float, expires: float | None
) -> dict[str, object]:
    return {
        "scope": scope,
        "host_id": host_id,
        "old_mode": scope if was_on else "none",
        "new_mode": scope if on else "none",
        "reason": reason if on else "",
        "set_by": actor,
        "set_at": now,
        "expires_at": expires,
    }


def _audit(path: str, change: dict[str, object], host_id: int) -> str:
    entry = dict(change, set_at=records.iso_time(change["set_at"]), expires_at=_iso_or_none(change["expires_at"]))  # type: ignore[arg-type]
    entry["from_host_id"] = host_id
    return audit.append(path, entry)
