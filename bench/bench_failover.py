#!/usr/bin/env python3
"""Failover benchmark on the three-host lab (lab/cluster.py): power loss of the engine's host -> engine healthy
on another host, end to end and by phase, next to sanlock's host_dead_seconds for the same io_timeout; and the
planned move (local maintenance of the engine's host), measured in the same run.

Run it as root with the project's venv interpreter:

    /work/main/.venv/bin/python bench/bench_failover.py [--io-timeout 10 --io-timeout 2] [--storage glusterfs] [--json PATH]

For each io_timeout a fresh lab is deployed (hectl deploy + deploy --join, agents running, loop 2 s), then:
the planned move (``set-maintenance --mode local`` on the engine host until the engine is healthy elsewhere,
then ``--mode none``), then a power loss of the engine's host (every process SIGKILLed at once) with fencing
(each host has a BMC, ``[fencing] dead_after`` --dead-after: the survivors fence it and take over at once), the
fenced host back, and the same power loss with that host's BMC silent: the normal path. Phases of the
failover, each from the power loss (lab.cluster.Cluster.failover): the survivors' vm-status shows the host not
live; a survivor's sanlock has seen no renewal for host_dead_seconds (the lease is free); a QEMU of the engine
starts on a survivor (paused while libvirt waits for the lease); the survivor's sanlock holds the engine lease;
the health page is green. The never-two-engines watcher runs throughout; a second engine is exit status 2.
Samples go to bench/results/bench_failover-<timestamp>.json or --json PATH.
"""

from __future__ import annotations

import argparse
import datetime
import json
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench_cli import git_head  # noqa: E402

from hectl.lease import host_dead_seconds  # noqa: E402
from lab import cluster as lab_cluster  # noqa: E402

RESULTS_DIR = REPO / "bench" / "results"


def run_one(io_timeout: int, storage: str, dead_after: float) -> dict[str, Any]:
    cluster = lab_cluster.Cluster(3, io_timeout=io_timeout, storage=storage, fencing=dead_after)
    watcher = lab_cluster.NeverTwo(cluster)
    result: dict[str, Any] = {"io_timeout": io_timeout, "storage": storage, "host_dead_seconds": host_dead_seconds(io_timeout)}
    try:
        cluster.start()
        cluster.deploy()
        watcher.start()
        cluster.start_agents()
        result["lab"] = dict(cluster.timings)
        first = cluster.hosts[1]
        lab_cluster.wait_for(lambda: all(r["live"] for r in first.status()["hosts"]), 120 + 10 * io_timeout, "all hosts live")
        # the planned move
        old = cluster.engine_on()
        assert old is not None
        via = next(h for h in cluster.hosts if h is not old)
        t0 = time.monotonic()
        old.hectl("set-maintenance", "--mode", "local", "--reason", "bench")
        lab_cluster.wait_for(
            lambda: (e := cluster.engine_on()) is not None and e is not old and cluster.healthy(via), 600, "planned move"
        )
        result["planned_move_s"] = round(time.monotonic() - t0, 2)
        old.hectl("set-maintenance", "--mode", "none")
        # a power loss with fencing: the engine's host is judged dead, fenced through its BMC, its lease taken at once
        dead = cluster.engine_on()
        assert dead is not None and dead.bmc is not None
        events: list[str] = []
        phases = cluster.failover(dead, host_dead_seconds(io_timeout) + 180, lambda t, what: events.append(f"{t:.1f} {what}"))
        result["fenced_failover_s"] = {k: round(v, 2) for k, v in phases.items()}
        result["fenced_events"] = events
        dead.start()
        dead.start_agent()
        lab_cluster.wait_for(lambda: dead.agent_state() == "EngineDown", 300, "the fenced host back")
        # the same power loss with the engine host's BMC silent: the normal path, sanlock's host_dead_seconds
        dead = cluster.engine_on()
        assert dead is not None and dead.bmc is not None
        dead.bmc.down(True)
        try:
            phases = cluster.failover(dead, host_dead_seconds(io_timeout) + 180)
        finally:
            dead.bmc.down(False)
        result["failover_s"] = {k: round(v, 2) for k, v in phases.items()}
        result["violations"] = watcher.violations
    finally:
        watcher.stop.set()
        watcher.join(10)
        result["agent_logs"] = {h.id: h.log.read_text().splitlines()[-40:] for h in cluster.hosts if h.log.exists()}
        cluster.close()
    return result


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--io-timeout", type=int, action="append", help="sanlock io_timeout (repeatable; default 10 and 2)")
    ap.add_argument("--storage", choices=("localfs", "glusterfs"), default="localfs", help="the lab's shared storage")
    ap.add_argument("--dead-after", type=float, default=15.0, help="[fencing] dead_after (default 15)")
    ap.add_argument("--json", help="write the results here")
    args = ap.parse_args()
    reason = lab_cluster.missing(storage=args.storage, fencing=True)
    if reason:
        print(f"cannot run: {reason}", file=sys.stderr)
        return 2
    results = [run_one(io, args.storage, args.dead_after) for io in args.io_timeout or [10, 2]]
    cols = ("stale", "free", "vm", "lease")
    head = f"{'io_timeout':>10} {'path':>8} {'dead_s':>7} {'planned':>8} "
    print(head + " ".join(f"{c:>7}" for c in cols) + f" {'healthy':>8}")
    for r in results:
        for path, key in (("sanlock", "failover_s"), ("fenced", "fenced_failover_s")):
            f = r[key]
            cells = [f.get(k, float("nan")) for k in ("peers_see_stale", "lease_free", "vm_started", "lease_taken", "healthy")]
            row = f"{r['io_timeout']:>10} {path:>8} {r['host_dead_seconds']:>7.0f} {r['planned_move_s']:>8.1f} "
            print(row + " ".join(f"{c:>7.1f}" for c in cells))
        ratio = r["fenced_failover_s"]["healthy"] / r["failover_s"]["healthy"]
        print(f"{'':>10} fenced/sanlock time to a healthy engine: {ratio:.3f}")
    out = Path(args.json) if args.json else RESULTS_DIR / f"bench_failover-{datetime.datetime.now():%Y%m%d-%H%M%S}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"git_head": git_head(), "results": results}, indent=1))
    print(f"results: {out}")
    return 2 if any(r["violations"] for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
