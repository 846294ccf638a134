#!/usr/bin/env python3
"""Chaos run on the three-host lab (lab/cluster.py): randomized fault sequences, the never-two-engines watcher
throughout, and after every fault an "engine healthy again within the bound" check.

Run it as root with the project's venv interpreter:

    /work/main/.venv/bin/python bench/chaos_lab.py [--count 10 | --minutes 30] [--seed N] [--json PATH]

Each round picks a fault and a host (the engine's host twice as often as another): power loss (the host comes
back after the failover), agent crash and restart, gateway loss, network cut (link back after the move), engine
guest hang, local maintenance (cleared after the move). The bound is host_dead_seconds + 120 s for a power loss
and 240 s otherwise. The run prints a timeline (seconds since the start: what happened, where the engine went)
and a summary; exit status 2 on a second engine or a missed bound.
"""

from __future__ import annotations

import argparse
import datetime
import json
import random
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from hectl.lease import host_dead_seconds  # noqa: E402
from lab import cluster as lab_cluster  # noqa: E402

RESULTS_DIR = REPO / "bench" / "results"
FAULTS = ("power-loss", "agent-restart", "gateway-loss", "network-cut", "engine-hang", "local-maintenance")


def engine(cluster: lab_cluster.Cluster, via: lab_cluster.Host) -> int:
    holders = cluster.engine_hosts()
    return holders[0] if len(holders) == 1 and cluster.healthy(via) else 0


def back_within(cluster: lab_cluster.Cluster, bound: float, avoid: int = 0) -> tuple[float, int]:
    t0 = time.monotonic()
    while time.monotonic() - t0 < bound:
        via = next(h for h in cluster.hosts if h.up and h.id != avoid)
        winner = engine(cluster, via)
        if winner and winner != avoid:
            return time.monotonic() - t0, winner
        time.sleep(0.5)
    return -1.0, 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--count", type=int, default=10, help="faults to inject")
    ap.add_argument("--minutes", type=float, help="run this long instead of --count faults")
    ap.add_argument("--seed", type=int, default=int(time.time()))
    ap.add_argument("--io-timeout", type=int, default=2)
    ap.add_argument("--json", help="write the timeline here")
    args = ap.parse_args()
    reason = lab_cluster.missing()
    if reason:
        print(f"cannot run: {reason}", file=sys.stderr)
        return 2
    rng = random.Random(args.seed)
    cluster = lab_cluster.Cluster(3, io_timeout=args.io_timeout)
    watcher = lab_cluster.NeverTwo(cluster)
    timeline: list[dict[str, object]] = []
    start = time.monotonic()
    missed = 0
    try:
        cluster.start()
        cluster.deploy()
        watcher.start()
        cluster.start_agents()
        took, where = back_within(cluster, 240)
        timeline.append({"t": round(time.monotonic() - start, 1), "event": "deployed", "engine": where})
        n = 0
        while (args.minutes is None and n < args.count) or (
            args.minutes is not None and time.monotonic() - start < args.minutes * 60
        ):
            n += 1
            current = cluster.hosts[where - 1]
            target = current if rng.random() < 2 / 3 else rng.choice([h for h in cluster.hosts if h is not current])
            fault = rng.choice(FAULTS)
            bound = host_dead_seconds(args.io_timeout) + 120 if fault == "power-loss" else 240.0
            t = round(time.monotonic() - start, 1)
            if fault == "power-loss":
                target.power_loss()
            elif fault == "agent-restart":
                target.restart_agent()
            elif fault == "gateway-loss":
                target.gateway(reachable=False)
            elif fault == "network-cut":
                target.cut(True)
            elif fault == "engine-hang":
                target.hang_engine()
            else:
                target.hectl("set-maintenance", "--mode", "local", "--reason", "chaos")
            moves = target is current and fault not in ("agent-restart",)
            took, new = back_within(cluster, bound, avoid=target.id if moves and fault != "engine-hang" else 0)
            if took < 0:
                missed += 1
            timeline.append({"t": t, "event": f"{fault} on host {target.id}", "engine_before": current.id,
                             "engine_after": new, "healthy_after_s": round(took, 1), "bound_s": bound})  # fmt: skip
            outcome = f"in {took:.1f} s" if took >= 0 else "MISSED the bound"
            print(f"{t:8.1f}  {fault:<18} host {target.id}  engine {current.id} -> {new or '?'}  {outcome}")
            # heal what stays broken, so that the next fault meets a whole cluster
            if fault == "power-loss":
                target.start()
                target.start_agent()
            elif fault == "gateway-loss":
                target.gateway(reachable=True)
            elif fault == "network-cut":
                target.cut(False)
            elif fault == "local-maintenance":
                target.hectl("set-maintenance", "--mode", "none")
            time.sleep(10)
            took, where = back_within(cluster, 240)
            if not where:
                missed += 1
                break
    finally:
        watcher.stop.set()
        watcher.join(10)
        cluster.close()
    summary = {"seed": args.seed, "faults": len(timeline) - 1, "missed_bounds": missed, "second_engines": len(watcher.violations),
               "watcher_polls": watcher.polls}  # fmt: skip
    print(json.dumps(summary))
    out = Path(args.json) if args.json else RESULTS_DIR / f"chaos_lab-{datetime.datetime.now():%Y%m%d-%H%M%S}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"summary": summary, "timeline": timeline, "violations": watcher.violations}, indent=1))
    return 2 if missed or watcher.violations else 0


if __name__ == "__main__":
    sys.exit(main())
