"""``vm-status``: read the domain and the local state, build the report (shared by CLI and fast path)."""

from __future__ import annotations

from hectl import localstate, status
from hectl.output import Output

TYPE_CHECKING = False  # typing.TYPE_CHECKING would import typing (see hectl.frozen)
if TYPE_CHECKING:
    from hectl.clock import Clock
    from hectl.config import Config
    from hectl.context import AppContext
    from hectl.metadata import MetadataSnapshot


def vm_status(app: AppContext, *, fmt: str, check: bool, host_filter: frozenset[int]) -> Output:
    """The status report (or, with ``check``, the Nagios verdict) as an ``Output``."""
    if check:
        try:
            report = build(app, host_filter)
        except Exception as exc:  # a monitoring check answers in its own codes, always
            return _check_failure(exc, fmt)
        code, line = status.check(report)
        return Output("check", {"status": status.CHECK_NAMES[code], "code": code, "line": line}, fmt, code)
    return Output("vm-status", build(app, host_filter), fmt)


def build(app: AppContext, host_filter: frozenset[int]) -> dict[str, object]:
    """The vm-status report (reads the domain and the local state)."""
    cfg = app.config
    backend = app.backend()
    snapshot = app.store().read_all()
    agent_view = localstate.read_agent_view(cfg.paths.state_dir)
    report = report_for(cfg, snapshot, app.clock, agent_view, backend.describe(), host_filter)
    hosts = [[h["host_id"], h["hostname"] or ""] for h in report["hosts"] if h["slot"] == "valid"]  # type: ignore[attr-defined]
    localstate.update_completion_cache(cfg.paths.state_dir, hosts=hosts)
    return report


def report_for(
    cfg: Config,
    snapshot: MetadataSnapshot,
    clock: Clock,
    agent_view: localstate.AgentView | None,
    storage: dict[str, object],
    host_filter: frozenset[int] = frozenset(),
) -> dict[str, object]:
    """The report for ``snapshot`` as this host's configuration sees it now."""
    return status.build_report(
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
    )


def _check_failure(exc: Exception, fmt: str) -> Output:
    from hectl.errors import ConfigError, HectlError, StorageError

    if isinstance(exc, StorageError):
        code, what = status.CRITICAL, "storage unreachable"
    elif isinstance(exc, ConfigError):
        code, what = status.UNKNOWN, "configuration problem"
    else:
        code, what = status.UNKNOWN, "check failed"
    message = exc.message if isinstance(exc, HectlError) else f"{type(exc).__name__}: {exc}"
    line = f"HECTL {status.CHECK_NAMES[code]} - {what}: {message}"
    return Output("check", {"status": status.CHECK_NAMES[code], "code": code, "line": line}, fmt, code)
