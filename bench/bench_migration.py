#!/usr/bin/env python3
"""Planned-move benchmark on the three-host lab (lab/cluster.py): the engine moved live (``vm-migrate``, and local
maintenance through the agent) next to the cold move it replaces (``vm-shutdown --wait`` on the engine's host,
then ``vm-start --wait --healthy`` on the target, under global maintenance), measured in the same run, with the
engine's health page probed every 100 ms from the third host throughout.

Run it as root with the project's venv interpreter:

    /work/main/.venv/bin/python bench/bench_migration.py [--rounds 3] [--tls] [--json PATH]

Each round moves the engine three times, in turn: live by hand, cold by hand (the baseline), live through local
maintenance (``--mode local`` until the engine runs elsewhere, then ``--mode none``). For each: the command's or
the move's wall time, libvirt's downtime of the guest (live only), and the health page's outage as the probe
saw it (from the first unanswered probe to the first answered one; 0 when none failed; a probe gives up after
0.5 s, so one lost probe reads as a 0.5 s outage however short the pause was). The ratios are each
live move's median outage to the cold move's, taken in the same run. The never-two-engines watcher polls every
50 ms throughout; a second engine is exit status 2. Samples go to bench/results/bench_migration-<timestamp>.json.
"""

from __future__ import annotations

import argparse
import datetime
import json
import re
import statistics
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench_cli import git_head  # noqa: E402

from lab import cluster as lab_cluster  # noqa: E402
from lab.probe import HealthProbe  # noqa: E402

RESULTS_DIR = REPO / "bench" / "results"
KINDS = ("live_vm_migrate", "cold_shutdown_start", "live_local_maintenance")


def settled(cluster: lab_cluster.Cluster) -> None:
    """Every host live, EngineUp or EngineDown, scoring; the engine healthy."""
    via = cluster.hosts[0]

    def ok() -> bool:
        rows = via.status()["hosts"]
        return all(r["live"] and r["score"] and r["state"] in ("EngineUp", "EngineDown") for r in rows) and cluster.healthy(via)

    lab_cluster.wait_for(ok, 240, "the cluster settled")


def check(res: Any, what: str) -> Any:
    if res.returncode != 0:
        raise RuntimeError(f"{what}: exit {res.returncode}: {res.stderr.strip()[-500:]}")
    return res


def move(cluster: lab_cluster.Cluster, kind: str) -> dict[str, Any]:
    settled(cluster)
    source = cluster.engine_on()
    assert source is not None
    target, third = (h for h in cluster.hosts if h is not source)
    sample: dict[str, Any] = {"from": source.id}
    mark = source.log.stat().st_size  # the source agent's log from here on
    with HealthProbe(third.netns, cluster.health_url) as probe:
        time.sleep(1)
        t0 = time.monotonic()
        if kind == "live_vm_migrate":
            data = json.loads(check(source.hectl("vm-migrate", "--to", str(target.id), "--wait", "--json"), kind).stdout)
            sample.update(to=target.id, migration_s=data["migration_s"], downtime_ms=data["downtime_ms"])
        elif kind == "cold_shutdown_start":
            check(source.hectl("set-maintenance", "--mode", "global", "--reason", "bench"), kind)
            lab_cluster.wait_for(
                lambda: source.agent_state() == "GlobalMaintenance" and target.agent_state() == "GlobalMaintenance",
                60,
                "hands off",
            )
            t0 = time.monotonic()
            check(source.hectl("vm-shutdown", "--wait", "--force-after", "60"), kind)
            # vm-start on the target trusts the records: the source's agent publishes the VM down within a loop
            lab_cluster.wait_for(lambda: source.row()["engine"]["vm"] != "up", 30, "its record: the VM down")
            check(target.hectl("vm-start", "--wait", "120", "--healthy"), kind)
            sample["to"] = target.id
        else:
            check(source.hectl("set-maintenance", "--mode", "local", "--reason", "bench"), kind)
            lab_cluster.wait_for(
                lambda: (e := cluster.engine_on()) is not None and e is not source and cluster.healthy(third), 300, kind
            )
            sample["to"] = cluster.engine_on().id  # type: ignore[union-attr]  (the wait saw it)
        sample["move_s"] = round(time.monotonic() - t0, 2)
        time.sleep(2)
    gaps = probe.outages(since=t0)
    failed = sum(1 for t, ok in probe.samples if t >= t0 and not ok)
    outages = [round(g[1], 2) for g in gaps]
    sample.update(probes=len(probe.samples), failed_probes=failed, outages_s=outages, outage_s=round(sum(g[1] for g in gaps), 2))
    if kind == "cold_shutdown_start":
        check(source.hectl("set-maintenance", "--mode", "none"), kind)
    if kind == "live_local_maintenance":
        lab_cluster.wait_for(lambda: source.agent_state() == "LocalMaintenance", 60, "local maintenance")
        with source.log.open("rb") as log:  # the agent's migration: its log says how long libvirt paused the guest
            log.seek(mark)
            logged = re.findall(r"engine VM migrated to host \d+ .* paused (\d+) ms", log.read().decode(errors="replace"))
        sample["downtime_ms"] = int(logged[-1]) if logged else None
        check(source.hectl("set-maintenance", "--mode", "none"), kind)
    return sample


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=3, help="rounds of the three moves (default 3)")
    ap.add_argument("--tls", action="store_true", help="migrate over qemu+tls:// with TLS streams (lab CA)")
    ap.add_argument("--json", help="write the results here")
    args = ap.parse_args()
    reason = lab_cluster.missing(tls=args.tls)
    if reason:
        print(f"cannot run: {reason}", file=sys.stderr)
        return 2
    cluster = lab_cluster.Cluster(3, tls=args.tls)
    watcher = lab_cluster.NeverTwo(cluster, every=0.05)
    samples: dict[str, list[dict[str, Any]]] = {k: [] for k in KINDS}
    try:
        cluster.start()
        cluster.deploy()
        watcher.start()
        cluster.start_agents()
        for _ in range(args.rounds):
            for kind in KINDS:
                samples[kind].append(move(cluster, kind))
    finally:
        watcher.stop.set()
        watcher.join(10)
        cluster.close()
    base = statistics.median(s["outage_s"] for s in samples["cold_shutdown_start"])
    summary = {}
    head = f"{'move':<24} {'move_s':>7} {'outage_s':>9} {'failed':>7} {'downtime_ms':>12} {'ratio':>6}"
    print(f"{head}   (medians of {args.rounds})")
    for kind in KINDS:
        rows = samples[kind]
        outage = statistics.median(s["outage_s"] for s in rows)
        downtime = [s["downtime_ms"] for s in rows if s.get("downtime_ms") is not None]
        summary[kind] = {
            "move_s": statistics.median(s["move_s"] for s in rows),
            "outage_s": outage,
            "failed_probes": statistics.median(s["failed_probes"] for s in rows),
            "downtime_ms": statistics.median(downtime) if downtime else None,
            "outage_ratio_to_cold": round(outage / base, 3) if base else None,
        }
        m = summary[kind]
        dt = "-" if m["downtime_ms"] is None else f"{m['downtime_ms']:.0f}"
        ratio = "-" if m["outage_ratio_to_cold"] is None else f"{m['outage_ratio_to_cold']:.3f}"
        print(f"{kind:<24} {m['move_s']:>7.1f} {outage:>9.2f} {m['failed_probes']:>7.0f} {dt:>12} {ratio:>6}")
    print(f"never-two watcher: {watcher.polls} polls, {len(watcher.violations)} with two engines")
    out = Path(args.json) if args.json else RESULTS_DIR / f"bench_migration-{datetime.datetime.now():%Y%m%d-%H%M%S}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    doc = {"git_head": git_head(), "tls": args.tls, "summary": summary, "samples": samples,
           "watcher": {"polls": watcher.polls, "violations": watcher.violations, "why": watcher.why}}  # fmt: skip
    out.write_text(json.dumps(doc, indent=1))
    print(f"results: {out}")
    return 2 if watcher.violations else 0


if __name__ == "__main__":
    sys.exit(main())
