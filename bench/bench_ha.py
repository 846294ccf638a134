"""HA engine benchmark: simulated failover time, randomized safety/liveness schedules, decision cost.

    .venv/bin/python bench/bench_ha.py [--schedules 10000] [--json PATH]

All figures come from the simulator (virtual clock: seconds are simulated
seconds) except the decision cost, which is measured wall time per call.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

from hectl.config import HAConfig, ScoreConfig
from hectl.ha import chaos, fsm, scenario
from hectl.ha.score import HostHealth

REPO = Path(__file__).resolve().parent.parent
CONFIGS = [dict(hosts=3, faults=8), dict(hosts=2, faults=14), dict(hosts=4, faults=16), dict(hosts=5, faults=25)]


def failover(name: str = "engine-host-power-loss") -> dict[str, object]:
    """Engine-host power loss in scenario ``name`` (default timings, io_timeout 10), at every phase of the 20 s
    renewal cycle; "fence-power-loss" is the same with fencing ([fencing] dead_after 15, a working device)."""
    base = scenario.load(str(REPO / "tests" / "ha" / "scenarios" / f"{name}.toml"))
    times = []
    for phase in range(20):
        at = 120.0 + phase
        sc = base._replace(events=(scenario.Event(at, "power-off", 1),), duration=at + 400)
        result = scenario.run(sc)
        up = [e.t for e in result.timeline if e.what == "EngineStarting -> EngineUp" and e.t > at]
        assert up and not result.violations, result.lines()
        times.append(up[0] - at)
    return {"runs": len(times), "min_s": min(times), "median_s": statistics.median(times), "max_s": max(times)}


def schedules(total: int, fencing: bool = False) -> dict[str, object]:
    start = time.perf_counter()
    per = total // len(CONFIGS)
    bad = []
    recoveries = []
    fenced = failed = 0
    for config in CONFIGS:
        for seed in range(per):
            outcome = chaos.check(seed, fencing=fencing, **config)
            if not outcome.ok:
                bad.append({"config": config, "seed": seed, "violations": list(outcome.violations)})
            if outcome.recovered_after is not None:
                recoveries.append(outcome.recovered_after)
            fenced, failed = fenced + outcome.fencings[0], failed + outcome.fencings[1]
    out: dict[str, object] = {
        "schedules": per * len(CONFIGS),
        "configs": CONFIGS,
        "violations": bad,
        "max_recovery_after_faults_s": max(recoveries),
        "seconds": round(time.perf_counter() - start, 1),
    }
    if fencing:
        out |= {"fencings_confirmed": fenced, "fencings_failed": failed}
    return out


def decision_cost(hosts: int = 2000, repeat: int = 200) -> dict[str, object]:
    """Wall time of one ``fsm.step`` seeing ``hosts - 1`` remote hosts (the worst case: EngineDown, an election)."""
    others = tuple(
        fsm.RemoteHost(i, live=True, lease="live", state=fsm.S.DOWN, score=3000 + i % 400) for i in range(2, hosts + 1)
    )
    health = HostHealth(network_ok=5, network_probes=5, bridge_up=True, mem_free_mib=16384, cpu_load=0.1)
    obs = fsm.Observations(now=1000.0, host_id=1, history=600, vm=fsm.LocalVM(), health=health, engine_mem_mib=4096, hosts=others)
    mem = fsm.Memory(fsm.S.DOWN, 900.0)
    cfg, t = ScoreConfig(), HAConfig()
    fsm.step(mem, obs, cfg, t)
    start = time.perf_counter()
    for _ in range(repeat):
        fsm.step(mem, obs, cfg, t)
    per = (time.perf_counter() - start) / repeat
    return {"hosts": hosts, "per_step_ms": round(per * 1000, 3)}


def agent_cost(cycles: int = 30) -> dict[str, object]:
    """CPU time per cycle and resident memory of a real ``hectl ha run`` (own sanlock daemon, loop 1 s, 250-host domain)."""
    import os
    import shutil
    import signal
    import subprocess

    from hectl.context import AppContext
    from hectl.storage.domain import init_domain
    from hectl.storage.records import EngineStatus, HostRecord
    from lab import sanlock as lab

    if lab.missing():
        return {"skipped": lab.missing()}
    base = lab.shared_dir("hectl-bench-")
    daemon = lab.Daemon(base / "run", lab.build_shim(base))
    agent = None
    try:
        daemon.start()
        root = base / "domain"
        root.mkdir()
        root.chmod(0o755)
        cfg = base / "hectl.conf"
        cfg.write_text(
            f"[host]\nid = 1\n[storage]\npath = {root}\n[paths]\nstate_dir = {base / 'state'}\n[ha]\nio_timeout = 2\nloop = 1\n"
        )
        app = AppContext(config_path=str(cfg), environ={})
        init_domain(app.backend(), app.clock, 5)
        store = app.store()
        for i in range(2, 251):
            store.write_host(HostRecord(i, 1, app.clock.wall(), 3400, "EngineDown", EngineStatus("down"), f"h{i}"))
        lab.initialize_domain_leases(root, daemon, 2)
        env = dict(os.environ, HECTL_CONFIG=str(cfg), **daemon.env)
        agent = subprocess.Popen([sys.executable, "-m", "hectl", "ha", "run"], env=env, stderr=subprocess.DEVNULL)
        time.sleep(10)  # joined, warmed up

        def cpu() -> float:
            with open(f"/proc/{agent.pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

        start_cpu, start = cpu(), time.monotonic()
        time.sleep(cycles)
        used, elapsed = cpu() - start_cpu, time.monotonic() - start
        with open(f"/proc/{agent.pid}/status") as f:
            rss = next(int(line.split()[1]) for line in f if line.startswith("VmRSS:")) / 1024
        return {"cycles": round(elapsed), "cpu_ms_per_cycle": round(used / elapsed * 1000, 1), "rss_mib": round(rss, 1)}
    finally:
        if agent is not None:
            agent.send_signal(signal.SIGTERM)
            agent.wait(30)
        daemon.stop()
        shutil.rmtree(base, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--schedules", type=int, default=10_000)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    results = {
        "failover": failover(),
        "fenced_failover": failover("fence-power-loss"),
        "decision_cost": decision_cost(),
        "agent": agent_cost(),
        "schedules": schedules(args.schedules),
        "fencing_schedules": schedules(args.schedules, fencing=True),
    }
    f, d, s, a = results["failover"], results["decision_cost"], results["schedules"], results["agent"]
    print(
        f"failover after engine-host power loss (io_timeout 10, {f['runs']} phases): "
        f"min {f['min_s']:.1f} s, median {f['median_s']:.1f} s, max {f['max_s']:.1f} s (target <= 160 s)"
    )
    ff = results["fenced_failover"]
    print(
        f"... with fencing (dead_after 15, a working device): min {ff['min_s']:.1f} s, median {ff['median_s']:.1f} s, "
        f"max {ff['max_s']:.1f} s (target < 30 s)"
    )
    print(f"decision cost with {d['hosts']} hosts: {d['per_step_ms']} ms per step")
    print(f"hectl ha run (loop 1 s, 250 hosts, real sanlock): {a}")
    print(
        f"randomized schedules: {s['schedules']} run, {len(s['violations'])} with a violation, "
        f"worst recovery after the last fault {s['max_recovery_after_faults_s']:.1f} s, {s['seconds']} s wall"
    )
    fs = results["fencing_schedules"]
    print(
        f"randomized schedules with fencing and device faults: {fs['schedules']} run, {len(fs['violations'])} with a "
        f"violation, {fs['fencings_confirmed']} fencings confirmed, {fs['fencings_failed']} failed, worst recovery after "
        f"the last fault {fs['max_recovery_after_faults_s']:.1f} s, {fs['seconds']} s wall"
    )
    out = args.json or REPO / "bench" / "results" / f"bench_ha-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"results: {out}")
    return 1 if s["violations"] or fs["violations"] else 0


if __name__ == "__main__":
    sys.exit(main())
