"""``hectl explain``: why this host does what it does, in one place.

This host's state and why, its score term by term, the timers that are
running and what happens when each runs out (among them: hosts passed over
because they claimed without acting), who fenced whom, when and why, and for every host the records' view
(is its record changing?) next to sanlock's view of its host-id lease, and
why its score is ignored if it is one no host can publish.
"""

from __future__ import annotations

from hectl import localstate, status
from hectl.ha.fsm import ineligible

TYPE_CHECKING = False  # typing.TYPE_CHECKING would import typing (see hectl.frozen)
if TYPE_CHECKING:
    from hectl.context import AppContext


def explain(app: AppContext) -> dict[str, object]:
    cfg = app.config
    report = status.build(app, frozenset())
    view = localstate.read_agent_view(cfg.paths.state_dir)
    agent = status.agent_section(view, app.clock.monotonic(), localstate.boot_id(), cfg.timeouts.agent_silent_after)
    from hectl.vm.hypervisor import choose_accel

    accel, why = choose_accel(cfg.vm.accelerator)
    mine = next((h for h in report["hosts"] if h["this_host"]), None)  # type: ignore[attr-defined]
    hosts = []
    for h in report["hosts"]:  # type: ignore[attr-defined]
        if h["slot"] == "empty" and not h["this_host"]:
            continue
        hosts.append(
            {
                "host_id": h["host_id"],
                "hostname": h["hostname"],
                "state": h["state"],
                "score": h["score"],
                "record": "live" if h["live"] else h["stale_reason"],
                "record_age_s": h["age_s"],
                "sanlock": h.get("lease", "unknown"),
                "score_ignored": (ineligible(h["score"], cfg.score) or None) if isinstance(h["score"], int) else None,
            }
        )
    data: dict[str, object] = {
        "host_id": cfg.host.id,
        "hostname": cfg.host.hostname,
        "agent": dict(agent, reason=None, state_age_s=None),
        "score": None,
        "timers": [],
        "storage": None,
        "global_maintenance": report["global_maintenance"]["active"],  # type: ignore[index]
        "fencing": [f for h in report["hosts"] for f in h.get("fencing", ())],  # type: ignore[attr-defined]
        "liveness_window_s": cfg.timeouts.liveness_window,
        "hosts": hosts,
        "vm": {"engine": mine["engine"] if mine else None, "accelerator": accel, "accelerator_reason": why},
    }
    if agent["status"] == "running" and view is not None:
        age = float(agent["view_age_s"] or 0.0)  # type: ignore[arg-type]
        data["agent"] = dict(agent, reason=view.reason, state_age_s=round(view.state_age + age, 1))
        data["score"] = {"total": view.score, "terms": list(view.score_lines)}
        data["timers"] = [{"then": what, "in_s": round(max(0.0, left - age), 1)} for what, left in view.timers]
        data["storage"] = dict(view.storage)
    return data
