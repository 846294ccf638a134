#!/usr/bin/env python3
"""Chaos run on the three-host lab (lab/cluster.py): randomized fault sequences, the never-two-engines watcher
throughout, and after every fault an "engine healthy again within the bound" check.

Run it as root with the project's venv interpreter:

    /work/main/.venv/bin/python bench/chaos_lab.py [--count 100 | --minutes 30] [--seed N] [--storage glusterfs]
        [--fencing DEAD_AFTER] [--json PATH]

Each round picks a fault from FAULTS and a host (the engine's host twice as often as another), injects it,
waits for one healthy engine (away from the host when the fault moves the engine), heals what stays broken
(the host powered on again, the link or gateway back, maintenance cleared, ...) and waits for one healthy
engine again. A fault that must not move the engine (agent restart, a short storage stall, a libvirtd hang,
any fault on another host) is also checked for an engine restart. The domain can stall (localfs through
lab/stallfs.py; on Gluster every brick stopped), so storage stalls shorter and longer than sanlock's renewal
budget are among the faults, and so are live migrations: by hand (vm-migrate), through local maintenance, and
with the source or the target losing power in the middle. With ``--fencing`` every host has a BMC (lab/bmc.py),
the agents fence, a power loss of the engine's host must end in the fast path's bound, and the fence faults join
in (drawn half the time): a power loss whose BMC does not answer or keeps the host on (the normal path), a BMC
that stops answering for a while (nothing moves), an admin's ``hectl fence off`` of a host, a storage stall just
under ``dead_after`` (nobody fenced, nothing restarts). The run prints a timeline (seconds since the start:
what happened, where the engine went) and a summary, and writes both as JSON; exit status 2 on a second engine,
a missed bound or an engine restart that should not have happened.
"""

from __future__ import annotations

import argparse
import datetime
import json
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from hectl.lease import host_dead_seconds, renewal_fail_seconds  # noqa: E402
from lab import bmc as lab_bmc  # noqa: E402
from lab import cluster as lab_cluster  # noqa: E402

RESULTS_DIR = REPO / "bench" / "results"
Act = Callable[[lab_cluster.Cluster, lab_cluster.Host], None]


def _nothing(cluster: lab_cluster.Cluster, host: lab_cluster.Host) -> None:
    pass


def _stall(seconds: Callable[[int], float]) -> Act:
    def act(cluster: lab_cluster.Cluster, host: lab_cluster.Host) -> None:
        cluster.stall_storage(True)
        try:
            time.sleep(seconds(cluster.io_timeout))
        finally:
            cluster.stall_storage(False)

    return act


def _hang_libvirtd(cluster: lab_cluster.Cluster, host: lab_cluster.Host) -> None:
    host.hang_libvirtd(True)
    try:
        time.sleep(30)
    finally:
        host.hang_libvirtd(False)


def _power_on(cluster: lab_cluster.Cluster, host: lab_cluster.Host) -> None:
    host.start()
    host.start_agent()


def _power_loss_mid_migration(cluster: lab_cluster.Cluster, host: lab_cluster.Host) -> None:
    """The engine migrating, slowed to 4 MiB/s (~20 s of copying), from ``host`` (the engine's) to the best host,
    or from the engine's host to ``host``; ``host`` loses power 4 s into it."""
    source = cluster.engine_on()
    if source is not None:
        to = [] if host is source else ["--to", str(host.id)]
        argv = ["ip", "netns", "exec", source.netns, lab_cluster.HECTL, "vm-migrate", "--bandwidth", "4", *to]
        proc = subprocess.Popen(argv, env=source.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(4)
    host.power_loss()
    if source is not None:
        try:
            proc.wait(120)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(30)


def _bmc(host: lab_cluster.Host) -> lab_bmc.BMC:
    assert host.bmc is not None, "the lab runs without fencing"
    return host.bmc


def _power_loss_fence_fails(fault: Callable[[lab_bmc.BMC, bool], None]) -> tuple[Act, Act]:
    """A power loss while the host's BMC has ``fault``: the fencing fails, sanlock's host_dead_seconds decide."""

    def inject(cluster: lab_cluster.Cluster, host: lab_cluster.Host) -> None:
        fault(_bmc(host), True)
        host.power_loss()

    def heal(cluster: lab_cluster.Cluster, host: lab_cluster.Host) -> None:
        fault(_bmc(host), False)
        _power_on(cluster, host)

    return inject, heal


def _bmc_down_for_a_while(cluster: lab_cluster.Cluster, host: lab_cluster.Host) -> None:
    _bmc(host).down(True)
    try:
        time.sleep(30)
    finally:
        _bmc(host).down(False)


def _fence_by_hand(cluster: lab_cluster.Cluster, host: lab_cluster.Host) -> None:
    """An admin on another host runs ``hectl fence off`` against ``host``."""
    admin = next(h for h in cluster.hosts if h.up and h is not host)
    res = admin.hectl("fence", "off", "--host-id", str(host.id), "--yes")
    if res.returncode != 0:
        raise RuntimeError(f"hectl fence off --host-id {host.id} failed ({res.returncode}): {res.stderr.strip()}")
    host.power_loss()  # what the BMC did; this only brings the lab's bookkeeping along


def _stall_under(dead_after: float) -> Act:
    """A storage stall 3 s shorter than ``dead_after`` (and than sanlock's renewal budget): nobody may be fenced."""
    return _stall(lambda io: min(dead_after, renewal_fail_seconds(io)) - 3)


@dataclass(frozen=True)
class Fault:
    """One fault: how to inject it, what heals it afterwards, and what it does to an engine on the host."""

    name: str
    inject: Act
    heal: Act = _nothing
    moves: bool = True  # on the engine's host: the engine must end up on another host
    restarts: bool = True  # on the engine's host: the engine may restart (where it is, or elsewhere)
    power: bool = False  # the bound is host_dead_seconds + 120 s rather than 240 s (fenced: FENCED_BOUND)
    fenced: bool = False  # with fencing: a power loss the fast path must handle
    shared: bool = False  # hits the shared storage, so the engine wherever it runs, whatever the host picked


FAULTS = (
    Fault("power-loss", lambda c, h: h.power_loss(), _power_on, power=True, fenced=True),
    Fault("agent-restart", lambda c, h: h.restart_agent(), moves=False, restarts=False),
    Fault("gateway-loss", lambda c, h: h.gateway(reachable=False), lambda c, h: h.gateway(reachable=True)),
    Fault("network-cut", lambda c, h: h.cut(True), lambda c, h: h.cut(False)),
    Fault("engine-hang", lambda c, h: h.hang_engine(), moves=False),
    Fault(
        "local-maintenance",
        lambda c, h: h.hectl("set-maintenance", "--mode", "local", "--reason", "chaos"),
        lambda c, h: h.hectl("set-maintenance", "--mode", "none"),
    ),
    Fault("storage-stall-short", _stall(lambda io: renewal_fail_seconds(io) / 2), moves=False, restarts=False, shared=True),
    Fault("storage-stall-long", _stall(lambda io: renewal_fail_seconds(io) + 10), moves=False, shared=True),
    Fault("libvirtd-hang", _hang_libvirtd, moves=False, restarts=False),
    Fault("vm-migrate", lambda c, h: h.hectl("vm-migrate")),  # by hand; refused (exit 6) on another host
    Fault("power-loss-mid-migration", _power_loss_mid_migration, _power_on, power=True),
)


def fence_faults(dead_after: float) -> tuple[Fault, ...]:
    return (
        Fault("power-loss-bmc-down", *_power_loss_fence_fails(lambda b, on: b.down(on)), power=True),
        Fault("power-loss-fence-keeps-on", *_power_loss_fence_fails(lambda b, on: b.stay_on(on)), power=True),
        Fault("bmc-down", _bmc_down_for_a_while, moves=False, restarts=False),
        Fault("fence-off-by-hand", _fence_by_hand, _power_on, power=True, fenced=True),
        Fault("storage-stall-under-dead-after", _stall_under(dead_after), moves=False, restarts=False, shared=True),
    )


FENCED_BOUND = 60.0  # seconds past dead_after for a fenced power loss (measured: 17-19 s at dead_after 8)


def engine(cluster: lab_cluster.Cluster, via: lab_cluster.Host) -> tuple[int, list[int]]:
    """(the host running the one healthy engine, its QEMU pids), or (0, []) while there is not exactly one."""
    where = cluster.one_engine(via)
    return (where, cluster.hosts[where - 1].engine_pids()) if where else (0, [])


def back_within(cluster: lab_cluster.Cluster, bound: float, avoid: int = 0, faulted: int = 0) -> tuple[float, int, list[int]]:
    """Seconds until one healthy engine runs (not on ``avoid``), its host and pids; -1 when not within ``bound``.
    The health page is probed from a host other than ``faulted`` (a host cut off cannot reach it)."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < bound:
        via = next(h for h in cluster.hosts if h.up and h.id not in (avoid, faulted))
        where, pids = engine(cluster, via)
        if where and where != avoid:
            return time.monotonic() - t0, where, pids
        time.sleep(0.5)
    return -1.0, 0, []


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--count", type=int, default=10, help="faults to inject")
    ap.add_argument("--minutes", type=float, help="run this long instead of --count faults")
    ap.add_argument("--seed", type=int, default=int(time.time()))
    ap.add_argument("--io-timeout", type=int, default=2)
    ap.add_argument("--storage", choices=("localfs", "glusterfs"), default="localfs", help="the lab's shared storage")
    ap.add_argument("--fencing", type=float, metavar="DEAD_AFTER", help="BMCs, fencing and fence faults")
    ap.add_argument("--json", help="write the timeline here")
    args = ap.parse_args()
    stallable = args.storage == "localfs"
    fencing = args.fencing is not None
    reason = lab_cluster.missing(stallable=stallable, storage=args.storage, fencing=fencing)
    if reason:
        print(f"cannot run: {reason}", file=sys.stderr)
        return 2
    rng = random.Random(args.seed)

    def interrupted(signum: int, frame: object) -> None:
        raise KeyboardInterrupt  # SIGTERM, or SIGINT even when started in the background: the lab is closed

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, interrupted)
    cluster = lab_cluster.Cluster(3, io_timeout=args.io_timeout, stallable=stallable, storage=args.storage, fencing=args.fencing)
    extra = fence_faults(args.fencing) if args.fencing is not None else ()
    watcher = lab_cluster.NeverTwo(cluster)
    timeline: list[dict[str, object]] = []
    start = time.monotonic()
    missed = restarted = 0
    powered_on: dict[int, float] = {}  # host id -> when the run last powered it on
    try:
        cluster.start()
        cluster.deploy()
        watcher.start()
        cluster.start_agents()
        took, where, pids = back_within(cluster, 240)
        timeline.append({"t": round(time.monotonic() - start, 1), "event": "deployed", "engine": where})
        print(f"seed {args.seed}; deployed, engine on host {where}", flush=True)
        while where and (
            (args.minutes is None and len(timeline) <= args.count)
            or (args.minutes is not None and time.monotonic() - start < args.minutes * 60)
        ):
            current = cluster.hosts[where - 1]
            target = current if rng.random() < 2 / 3 else rng.choice([h for h in cluster.hosts if h is not current])
            fault = rng.choice(extra if extra and rng.random() < 0.5 else FAULTS)
            on_engine = target is current or fault.shared
            bound = host_dead_seconds(args.io_timeout) + 120 if fault.power else 240.0
            since = time.monotonic()
            rejoining = [
                i for i, t in powered_on.items() if i != target.id and since - t < host_dead_seconds(args.io_timeout) + 10
            ]
            if fault.fenced and args.fencing is not None and not rejoining:
                bound = args.fencing + FENCED_BOUND  # (a survivor powered on lately may wait out its old host id)
            t = time.monotonic() - start
            fault.inject(cluster, target)
            avoid = target.id if on_engine and fault.moves else 0
            took, new, new_pids = back_within(cluster, bound, avoid, faulted=target.id)
            restart = new_pids != pids and (not on_engine or not fault.restarts)
            missed += took < 0
            restarted += restart
            timeline.append({"t": round(t, 1), "fault": fault.name, "host": target.id, "engine_before": current.id,
                             "engine_after": new, "healthy_after_s": round(took, 1), "bound_s": bound,
                             "unexpected_restart": restart})  # fmt: skip
            outcome = f"healthy in {took:.1f} s" if took >= 0 else "MISSED the bound"
            print(f"{t:8.1f}  #{len(timeline) - 1:<3} {fault.name:<20} host {target.id}  engine {current.id} -> "
                  f"{new or '?'}  {outcome}{'  UNEXPECTED RESTART' if restart else ''}", flush=True)  # fmt: skip
            fault.heal(cluster, target)  # so that the next fault meets a whole cluster
            if fault.power:
                powered_on[target.id] = time.monotonic()
            time.sleep(10)
            took, where, pids = back_within(cluster, 240)
            if not where:
                missed += 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
    finally:
        watcher.stop.set()
        watcher.join(10)
        cluster.close()
    summary = {
        "seed": args.seed, "storage": args.storage, "io_timeout": args.io_timeout, "fencing": args.fencing,
        "faults": len(timeline) - 1,
        "by_fault": dict(Counter(str(e["fault"]) for e in timeline[1:])), "missed_bounds": missed,
        "unexpected_restarts": restarted, "second_engines": len(watcher.violations), "watcher_polls": watcher.polls,
        "minutes": round((time.monotonic() - start) / 60, 1), "leftovers": cluster.leftovers(),
    }  # fmt: skip
    print(json.dumps(summary))
    out = Path(args.json) if args.json else RESULTS_DIR / f"chaos_lab-{datetime.datetime.now():%Y%m%d-%H%M%S}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"summary": summary, "timeline": timeline, "violations": watcher.violations}, indent=1))
    return 2 if missed or restarted or watcher.violations else 0


if __name__ == "__main__":
    sys.exit(main())
