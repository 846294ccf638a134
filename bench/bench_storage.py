#!/usr/bin/env python3
"""Storage-access benchmark: ``vm-status --json`` through each way hectl reaches a domain, against real servers.

Run it as root with the project's venv interpreter (it imports hectl and lab):

    /work/main/.venv/bin/python bench/bench_storage.py [--runs 15] [--hosts 50] [--json PATH]

It starts a glusterd with a replica-3 virt volume (lab/gluster.py) and NFS-Ganesha in a network namespace
(lab/nfs.py), deploys one domain on each and one on a local directory, and publishes ``--hosts`` records into
each. Then, in one loop of shuffled rounds (machine noise hits every variant alike), it times as real processes:

| variant | what |
|---|---|
| bare | the venv's interpreter, ``-c pass``: the baseline |
| localfs | ``vm-status --json`` on the local directory (direct I/O in a bounded child) |
| glusterfs-fuse | the same on the Gluster domain while it is mounted (I/O through the FUSE mount) |
| glusterfs-gfapi | the same while it is not mounted (libgfapi in a bounded child: no mount) |
| nfs-libnfs | the same on the NFS domain (libnfs in a bounded child: this kernel has no NFS client) |

Every answer is checked (exit 0, ``--hosts`` hosts, the access path the variant claims); a wrong answer stops the
run with exit status 2. It reports min/median/max wall times and each median as a ratio to the bare interpreter's,
and writes every sample to bench/results/bench_storage-<timestamp>.json or --json PATH. Everything it starts is
stopped and removed at the end.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench_cli import BenchError, git_head

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from hectl.context import AppContext  # noqa: E402
from hectl.storage import records  # noqa: E402
from hectl.storage.domain import init_domain  # noqa: E402
from lab import gluster, nfs  # noqa: E402

HECTL = str(REPO / ".venv" / "bin" / "hectl")
PYTHON = str(REPO / ".venv" / "bin" / "python")
RESULTS_DIR = REPO / "bench" / "results"


def config(path: Path, state: Path, storage: str) -> Path:
    path.write_text(f"[host]\nid = 1\nhostname = h1.example\n[storage]\n{storage}timeout = 10\n"
                    f"[paths]\nstate_dir = {state}\n[timeouts]\nliveness_window = 86400\n")  # fmt: skip
    return path


def populate(cfg: Path, hosts: int) -> None:
    app = AppContext(config_path=str(cfg), environ={})
    init_domain(app.backend(), app.clock, 30.0)
    store = app.store()
    now = time.time()
    for i in range(1, hosts + 1):
        store.write_host(records.HostRecord(i, 1, now, 3400 - i, "EngineDown", records.EngineStatus("down"), f"h{i}.example"))


def timed(argv: list[str], env: dict[str, str]) -> tuple[float, subprocess.CompletedProcess[str]]:
    t0 = time.perf_counter()
    res = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120)
    return time.perf_counter() - t0, res


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=15, help="recorded rounds (after 2 warm-up rounds)")
    ap.add_argument("--hosts", type=int, default=50, help="host records in each domain")
    ap.add_argument("--json", help="write the samples here")
    args = ap.parse_args()
    for why in (gluster.missing(), nfs.missing()):
        if why:
            print(f"cannot run: {why}", file=sys.stderr)
            return 2
    base = Path(tempfile.mkdtemp(prefix="hectl-bench-storage-", dir="/tmp"))
    base.chmod(0o755)
    server = None
    env0 = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}
    try:
        with gluster.running() as daemon:
            volume = gluster.Volume(daemon, "bench")
            volume.create(virt=True, owner=(0, 0))
            server = nfs.running()
            (base / "local").mkdir()
            gl = f"type = glusterfs\nconnection = {volume.connection}\nmount_base = {base / 'mnt'}\n"
            cfgs = {
                "localfs": config(base / "local.conf", base / "s1", f"type = localfs\npath = {base / 'local'}\n"),
                "glusterfs-fuse": config(base / "gl.conf", base / "s2", gl),
                "nfs-libnfs": config(
                    base / "nfs.conf", base / "s3", f"type = nfs\nconnection = {server.connection}\nmount_base = {server.base}\n"
                ),
            }
            for cfg in cfgs.values():
                populate(cfg, args.hosts)
            # the same Gluster domain, unmounted: a second "host" that never mounts it (vm-status does not mount)
            cfgs["glusterfs-gfapi"] = config(base / "gl2.conf", base / "s4", gl.replace(str(base / "mnt"), str(base / "mnt2")))
            variants: dict[str, tuple[list[str], dict[str, str], str]] = {
                "bare": ([PYTHON, "-c", "pass"], env0, ""),
                **{
                    name: ([HECTL, "vm-status", "--json"], {**env0, "HECTL_CONFIG": str(cfg)}, name.split("-")[-1])
                    for name, cfg in cfgs.items()
                },
            }
            samples: dict[str, list[float]] = {name: [] for name in variants}
            try:
                for rnd in range(args.runs + 2):
                    order = list(variants)
                    random.shuffle(order)
                    for name in order:
                        argv, env, access = variants[name]
                        took, res = timed(argv, env)
                        if name != "bare":
                            check(name, res, args.hosts, access)
                        if rnd >= 2:
                            samples[name].append(took)
            finally:  # the backend's FUSE mount goes before its glusterd
                subprocess.run([HECTL, "storage", "disconnect"], env={**env0, "HECTL_CONFIG": str(cfgs["glusterfs-fuse"])},
                               capture_output=True, timeout=60)  # fmt: skip
            volume_info = {"bricks": 3, "virt": True}
    except BenchError as exc:
        print(f"wrong answer: {exc}", file=sys.stderr)
        return 2
    finally:
        if server is not None:
            server.close()
        shutil.rmtree(base, ignore_errors=True)
    bare = statistics.median(samples["bare"])
    rows = []
    print(f"{'variant':<18} {'min ms':>8} {'median ms':>10} {'max ms':>8} {'x bare':>7}")
    for name, values in samples.items():
        med = statistics.median(values)
        rows.append({"variant": name, "min_s": min(values), "median_s": med, "max_s": max(values), "ratio": med / bare})
        print(f"{name:<18} {min(values) * 1000:8.1f} {med * 1000:10.1f} {max(values) * 1000:8.1f} {med / bare:7.2f}")
    out = Path(args.json) if args.json else RESULTS_DIR / f"bench_storage-{datetime.datetime.now():%Y%m%d-%H%M%S}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"git_head": git_head(), "hosts": args.hosts, "runs": args.runs, "volume": volume_info,
                               "load": os.getloadavg(), "rows": rows, "samples": samples}, indent=1))  # fmt: skip
    print(f"samples: {out}")
    return 0


def check(name: str, res: subprocess.CompletedProcess[str], hosts: int, access: str) -> None:
    if res.returncode != 0:
        raise BenchError(f"{name}: exit {res.returncode}: {res.stderr.strip()[:300]}")
    doc: dict[str, Any] = json.loads(res.stdout)
    if len([h for h in doc["hosts"] if h["slot"] == "valid"]) != hosts:
        raise BenchError(f"{name}: {len(doc['hosts'])} hosts, not {hosts}")
    seen = doc["storage"].get("access", "local")
    if access in ("fuse", "gfapi", "libnfs") and seen != access:
        raise BenchError(f"{name}: read through {seen}, not {access}")


if __name__ == "__main__":
    sys.exit(main())
