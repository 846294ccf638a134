"""Host-local state files under ``[paths] state_dir`` (never on shared storage).

- ``local-maintenance.json``: this host's local maintenance, set by the CLI and
  published by the agent in the host record;
- ``agent-view.json``: the local agent's view (who is live, as judged by record
  sequence changes on this host's monotonic clock), rewritten every agent cycle;
- ``completion-cache.json``: host ids and backend names last seen, for instant shell completion.

Writes are atomic (temporary file + rename); readers treat a missing or
unreadable file as absent and never raise. The files and the directory are
readable by every user whatever the umask (the agent's unit sets 0077): an
unprivileged ``vm-status --check`` and TAB completion read them; none holds a secret.
"""

from __future__ import annotations

import contextlib
import json
import os

from hectl import parse
from hectl.frozen import Frozen

LOCAL_MAINTENANCE = "local-maintenance.json"
AGENT_VIEW = "agent-view.json"
COMPLETION_CACHE = "completion-cache.json"


class LocalMaintenance(Frozen):
    active: bool = False
    reason: str = ""
    set_by: str = ""
    set_at: float = 0.0
    expires_at: float | None = None

    def in_force(self, now_wall: float) -> bool:
        return self.active and (self.expires_at is None or now_wall < self.expires_at)

    def expired(self, now_wall: float) -> bool:
        return self.active and self.expires_at is not None and now_wall >= self.expires_at


class HostView(Frozen):
    """The local agent's opinion of one host."""

    live: bool
    seq: int
    unchanged_for: float  # seconds since its sequence last changed, on the agent's monotonic clock
    lease: str = "unknown"  # sanlock's view of its host-id lease: live | fail | dead | free | unknown


class AgentView(Frozen):
    host_id: int
    state: str
    boot_id: str
    written_mono: float
    written_wall: float
    hosts: dict[int, HostView]
    reason: str = ""  # why the agent is in ``state``
    state_age: float = 0.0  # seconds in ``state``
    score: int = 0
    score_lines: tuple[str, ...] = ()  # the breakdown, one term per line
    timers: tuple[tuple[str, float], ...] = ()  # (what happens when it runs out, seconds left)
    storage: tuple[tuple[str, object], ...] = ()  # the agent's last metadata read and write: *_ok, *_ms, *_error, direct_io
    global_seq: int | None = None  # the global record whose maintenance TTL the agent counts ...
    global_left: float | None = None  # ... and the seconds it had left at ``written_mono`` (on the agent's monotonic clock)
    fencings: tuple[tuple[int, str, float], ...] = ()  # (host id, "fenced" | "fence-failed", wall time): what a
    # restarted agent must still remember (fsm.Memory.fenced, fence_failed)


def boot_id() -> str:
    """Identifies this boot: monotonic times from another boot are meaningless."""
    try:
        with open("/proc/sys/kernel/random/boot_id", encoding="ascii") as f:
            return f.read().strip()
    except OSError:
        return ""


def _ensure_dir(directory: str) -> None:
    """The state directory, made 0755 whatever the umask (vm-status reads it as any user)."""
    if not os.path.isdir(directory):
        os.makedirs(directory, exist_ok=True)
        os.chmod(directory, 0o755)


def write_atomic(path: str, text: str) -> None:
    directory = os.path.dirname(path)
    _ensure_dir(directory)
    tmp = f"{path}.{os.getpid()}.tmp"
    try:
        with open(tmp, "w", encoding="utf-8") as f:
            os.fchmod(f.fileno(), 0o644)
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def write_json(path: str, doc: object) -> None:
    """Replace ``path`` with ``doc`` as JSON, atomically (mode 0644)."""
    write_atomic(path, json.dumps(doc, indent=1, sort_keys=True) + "\n")


def read_json(path: str) -> dict[str, object] | None:
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def read_local_maintenance(state_dir: str) -> LocalMaintenance:
    data = read_json(os.path.join(state_dir, LOCAL_MAINTENANCE))
    if data is None:
        return LocalMaintenance()
    try:
        expires = data.get("expires_at")
        return LocalMaintenance(
            active=bool(data.get("active")),
            reason=str(data.get("reason", "")),
            set_by=str(data.get("set_by", "")),
            set_at=float(data.get("set_at", 0.0)),  # type: ignore[arg-type]
            expires_at=float(expires) if expires is not None else None,  # type: ignore[arg-type]
        )
    except (TypeError, ValueError):
        return LocalMaintenance()


def write_local_maintenance(state_dir: str, value: LocalMaintenance) -> None:
    write_atomic(os.path.join(state_dir, LOCAL_MAINTENANCE), json.dumps(value._asdict()) + "\n")


def read_agent_view(state_dir: str) -> AgentView | None:
    data = read_json(os.path.join(state_dir, AGENT_VIEW))
    if data is None:
        return None
    try:
        hosts = {
            parse.host_id(k): HostView(bool(v["live"]), int(v["seq"]), float(v["unchanged_for"]), str(v.get("lease", "unknown")))
            for k, v in data["hosts"].items()  # type: ignore[attr-defined]
        }
        return AgentView(
            host_id=parse.host_id(str(data["host_id"])),
            state=str(data["state"]),
            boot_id=str(data["boot_id"]),
            written_mono=float(data["written_mono"]),  # type: ignore[arg-type]
            written_wall=float(data["written_wall"]),  # type: ignore[arg-type]
            hosts=hosts,
            reason=str(data.get("reason", "")),
            state_age=float(data.get("state_age", 0.0)),  # type: ignore[arg-type]
            score=int(data.get("score", 0)),  # type: ignore[call-overload]
            score_lines=tuple(str(x) for x in data.get("score_lines", ())),  # type: ignore[attr-defined]
            timers=tuple((str(n), float(s)) for n, s in data.get("timers", ())),  # type: ignore[attr-defined]
            storage=tuple((str(k), v) for k, v in data.get("storage", ())),  # type: ignore[attr-defined]
            global_seq=_int_or_none(data.get("global_seq")),
            global_left=_float_or_none(data.get("global_left")),
            fencings=tuple((parse.host_id(str(h)), str(k), float(w)) for h, k, w in data.get("fencings", ())),  # type: ignore[attr-defined]
        )
    except (KeyError, TypeError, ValueError, AttributeError):
        return None


def _int_or_none(value: object) -> int | None:
    return None if value is None else int(value)  # type: ignore[call-overload]


def _float_or_none(value: object) -> float | None:
    return None if value is None else float(value)  # type: ignore[arg-type]


def write_agent_view(state_dir: str, view: AgentView) -> None:
    data = view._asdict()
    data["hosts"] = {str(k): v._asdict() for k, v in view.hosts.items()}
    write_atomic(os.path.join(state_dir, AGENT_VIEW), json.dumps(data) + "\n")


def read_completion_cache(state_dir: str) -> dict[str, object]:
    """What completion may offer without touching storage: ``hosts`` [[id, name]], ``backends`` [name]."""
    return read_json(os.path.join(state_dir, COMPLETION_CACHE)) or {}


def update_completion_cache(state_dir: str, **values: object) -> bool:
    """Merge ``values`` into the completion cache; write only on change; never raise. Return whether written."""
    path = os.path.join(state_dir, COMPLETION_CACHE)
    old = read_json(path) or {}
    new = dict(old, **values)
    if new == old:
        return False
    try:
        write_atomic(path, json.dumps(new, sort_keys=True) + "\n")
    except OSError:
        return False
    return True


LOCK_DIR = "/run/hectl"  # local, never on storage that may hang: forked children close a copy of the lock's fd


def _agent_lock(state_dir: str) -> str:
    import hashlib

    digest = hashlib.sha256(os.path.realpath(state_dir).encode()).hexdigest()[:16]
    return os.path.join(LOCK_DIR, f"agent-{digest}.lock")


def lock_agent(state_dir: str) -> int:
    """Hold the agent lock of the host whose state lives in ``state_dir`` for the life of the process (its
    descriptor); ``LockHeld`` when an agent already runs. The kernel releases it however the agent ends."""
    import fcntl

    from hectl.errors import LockHeld

    _ensure_dir(LOCK_DIR)
    path = _agent_lock(state_dir)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise LockHeld(f"an HA agent already runs for state directory {state_dir} (it holds {path})") from None
    return fd


def agent_running(state_dir: str) -> bool:
    """Whether an agent holds the agent lock of ``state_dir``."""
    import fcntl

    try:
        fd = os.open(_agent_lock(state_dir), os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        return False
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
