"""``hectl metrics``: the cluster status as OpenMetrics text, for node_exporter's textfile collector.

Names and labels are public API (docs/metrics.md). Built from the same report
as ``vm-status``, so it reads storage once, with the same hard timeout.
"""

from __future__ import annotations

from hectl.text import escape

TYPE_CHECKING = False  # typing.TYPE_CHECKING would import typing (see hectl.frozen)
if TYPE_CHECKING:
    from typing import Any

# name -> help
METRICS = {
    "hectl_up": "1: hectl read the shared storage",
    "hectl_storage_read_seconds": "time to read the metadata file",
    "hectl_global_maintenance": "1 while global maintenance is in force",
    "hectl_global_maintenance_remaining_seconds": "seconds until global maintenance expires (absent: no expiry)",
    "hectl_local_agent_running": "1 while this host's agent publishes its view",
    "hectl_host_live": "1 while the host's record keeps changing",
    "hectl_host_score": "the host's published score",
    "hectl_host_data_age_seconds": "seconds since the host's record last changed",
    "hectl_host_state": "1 for the host's published agent state",
    "hectl_host_engine_up": "1 when the host reports the engine VM up",
    "hectl_host_lease": "1 for sanlock's view of the host's host-id lease (from this host's agent)",
    "hectl_slot_problems": "slots that are corrupt, too new or hold another host's record",
}


def _labels(**labels: object) -> str:
    def esc(v: object) -> str:  # control and bidi characters made visible (hectl.text), then OpenMetrics escaping
        return escape(str(v)).replace("\\", "\\\\").replace('"', '\\"')

    return "{" + ",".join(f'{k}="{esc(v)}"' for k, v in labels.items()) + "}" if labels else ""


def _number(value: float) -> str:
    """An OpenMetrics value: integers exactly, floats as their shortest exact form (repr), NaN and +-Inf spelled out."""
    if isinstance(value, int):
        return str(int(value))  # bool too: 0 or 1
    if value != value:
        return "NaN"
    if value in (float("inf"), float("-inf")):
        return "+Inf" if value > 0 else "-Inf"
    return repr(value)


def render(report: dict[str, Any] | None) -> str:
    """OpenMetrics exposition of ``report`` (``None``: storage could not be read)."""
    samples: dict[str, list[str]] = {name: [] for name in METRICS}

    def add(name: str, value: float, **labels: object) -> None:
        samples[name].append(f"{name}{_labels(**labels)} {_number(value)}")

    add("hectl_up", 0 if report is None else 1)
    if report is not None:
        g = report["global_maintenance"]
        add("hectl_storage_read_seconds", report["storage"]["read_ms"] / 1000.0)
        add("hectl_global_maintenance", int(bool(g["active"])))
        if g["remaining_s"] is not None:
            add("hectl_global_maintenance_remaining_seconds", g["remaining_s"])
        add("hectl_local_agent_running", int(report["local_agent"]["status"] == "running"))
        add("hectl_slot_problems", report["summary"]["problem_slots"])
        for h in report["hosts"]:
            if h["slot"] != "valid":
                continue
            ids = {"host_id": h["host_id"], "hostname": h["hostname"]}
            add("hectl_host_live", int(h["live"]), **ids)
            add("hectl_host_score", h["score"], **ids)
            if h["age_s"] is not None:
                add("hectl_host_data_age_seconds", h["age_s"], **ids)
            add("hectl_host_state", 1, state=h["state"], **ids)
            add("hectl_host_engine_up", int(h["engine"]["vm"] == "up"), **ids)
            if "lease" in h:
                add("hectl_host_lease", 1, lease=h["lease"], **ids)
    lines = []
    for name, helptext in METRICS.items():
        if samples[name]:
            lines += [f"# TYPE {name} gauge", f"# HELP {name} {helptext}", *samples[name]]
    return "\n".join([*lines, "# EOF"]) + "\n"
