#!/usr/bin/env python3
"""Engine VM benchmark: real libvirtd + QEMU (TCG) + sanlock, with the test appliance as the engine.

Run it as root with the project's venv interpreter (it imports hectl and lab):

    /work/main/.venv/bin/python bench/bench_vm.py [--rounds 3] [--json PATH]

Every step is timed --rounds times, in this order:

1. The appliance (lab/appliance.py): a cold build into a fresh temporary cache
   directory that already holds the Debian packages (hard links to the .debs of
   the default cache, so nothing is downloaded; without them one extra build
   downloads them first and is reported on its own row), then the same call
   again, served from that cache.
2. A private libvirtd (lab/libvirtd.py) bound to a sanlock daemon, started and
   stopped, with the QEMU capabilities cache warm.
3. One host: a sanlock daemon joined to the lockspace (what ``hectl ha run``
   does; no agent runs), a libvirtd, a localfs domain with the engine VM
   (256 MiB, 1 vCPU, TCG). Per round, each command as a real process:
   ``vm-start --wait --healthy``, then ``vm-shutdown --wait`` (the guest powers
   itself off); ``vm-start`` without waiting, boot to healthy (from its return
   until the health page answers 200 "DB Up", probed as check-liveliness does,
   every 0.1 s with a 0.5 s timeout), then ``vm-poweroff``.

Reports min/median/max per step and writes every sample as JSON to
bench/results/bench_vm-<timestamp>.json or --json PATH. A command that answers
wrongly (exit status, JSON result, lease not released) stops the run with exit
status 2. Everything it starts is stopped and removed, also on Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench_cli import BenchError, git_head

from lab.signals import interrupted, no_interrupts

REPO = Path(__file__).resolve().parent.parent
HECTL = str(REPO / ".venv" / "bin" / "hectl")
RESULTS_DIR = REPO / "bench" / "results"
IO_TIMEOUT = 2  # sanlock io_timeout of the lockspace (the lab's; joining takes about 3 x io_timeout)
HEALTH_POLL = 0.1  # seconds between two probes of the health page
# Timeout of one probe. While the guest's network is not up, QEMU's user-networking port forward accepts the
# connection and then holds it until the probe times out: this bounds the resolution of "boot to healthy".
HEALTH_TIMEOUT = 0.5
# step -> what it is (one line); the table's order
STEPS = {
    "appliance_cold_download": "appliance build, cold, downloading the .debs",
    "appliance_cold": "appliance build, cold (.debs there)",
    "appliance_cached": "appliance build, cached",
    "libvirtd_start": "libvirtd start (capabilities cached)",
    "libvirtd_stop": "libvirtd stop",
    "vm_start_wait_healthy": "vm-start --wait --healthy",
    "vm_shutdown_wait": "vm-shutdown --wait",
    "vm_start": "vm-start (no wait)",
    "boot_to_healthy": "boot to healthy (vm-start return -> 200)",
    "vm_poweroff": "vm-poweroff",
}


# --- the appliance ------------------------------------------------------------------------------


def link_debs(source: Path, cache: Path) -> int:
    """Hard-link (or copy) the .debs of ``source`` into ``cache``/debs, where build() looks first; how many."""
    debs = cache / "debs"
    debs.mkdir(parents=True, exist_ok=True)
    found = sorted(source.glob("*.deb")) if source.is_dir() else []
    for deb in found:
        try:
            os.link(deb, debs / deb.name)
        except OSError:
            shutil.copy2(deb, debs / deb.name)
    return len(found)


def appliance_rounds(base: Path, rounds: int, samples: dict[str, list[float]]) -> dict[str, Any]:
    from lab import appliance as lab_appliance

    info: dict[str, Any] = {"build_seconds": []}  # lab.appliance's own figure: the build alone, no apt-cache lookup

    def build(cache: Path, cold: bool) -> float:
        t0 = time.perf_counter()
        got = lab_appliance.build(cache)
        took = time.perf_counter() - t0
        if bool(got.build_seconds) != cold or not got.kernel.is_file() or not got.initrd.is_file():
            raise BenchError(f"appliance in {cache}: expected a {'cold' if cold else 'cached'} build, got {got}")
        if cold:
            info["build_seconds"].append(got.build_seconds)
        return took

    debs = lab_appliance.default_cache_dir() / "debs"
    info["debs_from"] = str(debs)
    if not list(debs.glob("*.deb")):
        cache = base / "appliance-download"
        print("appliance: no .debs in the default cache: one cold build downloads them first")
        samples["appliance_cold_download"] = [build(cache, cold=True)]
        debs = cache / "debs"
        info["debs_from"] = "downloaded by the first build"
    for i in range(rounds):
        cache = base / f"appliance-{i}"
        info["debs"] = link_debs(debs, cache)
        samples["appliance_cold"].append(build(cache, cold=True))
        samples["appliance_cached"].append(build(cache, cold=False))
        shutil.rmtree(cache)
    return info


# --- the host -----------------------------------------------------------------------------------


class Host:
    """A sanlock daemon joined to the lockspace of a localfs domain, a private libvirtd, the engine VM defined."""

    def __init__(self, base: Path) -> None:
        from lab import libvirtd as lab_libvirtd
        from lab import sanlock as lab_sanlock

        self.base = base
        base.mkdir(mode=0o755)
        self.daemon = lab_sanlock.Daemon(base / "sanlock", lab_sanlock.build_shim(base))
        self.libvirtd = lab_libvirtd.Libvirtd(sanlock_run_dir=self.daemon.run_dir)
        self.root = base / "domain"
        self.vm_name = f"hectl-bench-{uuid.uuid4().hex[:8]}"  # machine cgroups are shared by concurrent libvirtds
        self.port = 0
        self.env: dict[str, str] = {}

    @property
    def health_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/ovirt-engine/services/health"

    def start(self) -> None:
        """Everything but the sanlock daemon (started first: the libvirtd rounds use it too)."""
        from hectl.context import AppContext
        from hectl.storage.backend import DomainPaths
        from hectl.storage.domain import init_domain
        from lab import appliance as lab_appliance
        from lab import sanlock as lab_sanlock

        appliance = lab_appliance.build()
        self.libvirtd.start()
        self.port = free_port()
        self.root.mkdir(mode=0o755)
        config = self.base / "hectl.conf"
        config.write_text(
            f"[host]\nid = 1\n[storage]\ntype = localfs\npath = {self.root}\n[paths]\nstate_dir = {self.base / 'state'}\n"
            f"[ha]\nio_timeout = {IO_TIMEOUT}\n[vm]\nuri = {self.libvirtd.uri}\naccelerator = tcg\nstart_timeout = 120\n"
            f"[engine]\nhealth_url = {self.health_url}\nhealth_timeout = 2\n"
        )
        app = AppContext(config_path=str(config), environ={})
        init_domain(app.backend(), app.clock, 5.0)
        lab_sanlock.initialize_domain_leases(self.root, self.daemon, IO_TIMEOUT)
        for src, name in ((appliance.kernel, "vmlinuz"), (appliance.initrd, "initrd.img")):
            shutil.copyfile(src, self.root / "images" / name)
            (self.root / "images" / name).chmod(0o644)  # QEMU runs as libvirt-qemu
        env = {k: v for k, v in os.environ.items() if not k.startswith("HECTL_")}
        self.env = dict(env, HECTL_CONFIG=str(config), **self.daemon.env)
        spec = [f"name={self.vm_name}", "memory_mib=256", "vcpus=1", "kernel=vmlinuz", "initrd=initrd.img"]
        self.hectl("vm-config", "set", *spec, f"cmdline={appliance.cmdline}", f"host_port={self.port}")
        lockspace = DomainPaths.under(str(self.root)).lockspace
        res = self.daemon.client("add_lockspace", "-o", str(IO_TIMEOUT), "-s", f"hectl:1:{lockspace}:0")
        if res.returncode != 0 or "done 0" not in res.stdout:
            raise BenchError(f"sanlock add_lockspace failed: {res.stdout}{res.stderr}")

    def hectl(self, *args: str, want: dict[str, object] | None = None) -> tuple[float, dict[str, Any]]:
        """Run ``hectl ARGS --json``: (wall seconds, its JSON); a wrong exit status or ``want`` not met is an error."""
        t0 = time.perf_counter()
        res = subprocess.run([HECTL, *args, "--json"], env=self.env, capture_output=True, text=True, timeout=300)
        took = time.perf_counter() - t0
        try:
            out = json.loads(res.stdout) if res.returncode == 0 else {}
        except ValueError:
            out = {}
        wrong = {k: out.get(k) for k, v in (want or {}).items() if out.get(k) != v}
        if res.returncode != 0 or wrong:
            raise BenchError(
                f"hectl {' '.join(args)}: exit status {res.returncode}, {wrong or 'no JSON'} (expected {want})\n"
                f"  stdout: {res.stdout.strip()[-600:]}\n  stderr: {res.stderr.strip()[-600:]}"
            )
        return took, out

    def lease_free(self) -> None:
        status = self.daemon.client("status").stdout
        if any(line.startswith("r hectl:engine:") for line in status.splitlines()):
            raise BenchError(f"the engine lease is still held after the VM stopped:\n{status}")

    def stop(self) -> None:
        self.libvirtd.stop()
        self.daemon.stop()


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_healthy(url: str, failures: dict[str, int], timeout: float = 120.0) -> float:
    """Seconds until ``url`` answers 200 "DB Up" (the probe of check-liveliness, every HEALTH_POLL s).

    ``failures`` counts the failed probes by their detail ("timed out after 0.5s", "connection reset"...).
    """
    from hectl.vm import liveliness

    t0 = time.perf_counter()
    while True:
        result = liveliness.check(url, HEALTH_TIMEOUT)
        if result.healthy:
            return time.perf_counter() - t0
        failures[result.detail] = failures.get(result.detail, 0) + 1
        if time.perf_counter() - t0 > timeout:
            raise BenchError(f"the engine's health page did not answer 200 within {timeout:.0f} s: {result.detail}")
        time.sleep(HEALTH_POLL)


def libvirtd_rounds(sanlock_run_dir: Path, rounds: int, samples: dict[str, list[float]]) -> dict[str, Any]:
    """Start and stop a private libvirtd ``rounds`` times (after one untimed start when its capabilities cache is empty)."""
    from lab import libvirtd as lab_libvirtd

    info: dict[str, Any] = {"cache_dir": str(lab_libvirtd.CACHE_DIR)}
    cold = not any(lab_libvirtd.CACHE_DIR.glob("qemu/capabilities/*.xml"))
    for i in range(rounds + cold):
        lv = lab_libvirtd.Libvirtd(sanlock_run_dir=sanlock_run_dir)
        t0 = time.perf_counter()
        try:
            lv.start()
            started = time.perf_counter()
        finally:
            with no_interrupts():
                lv.stop()
        stopped = time.perf_counter()
        if cold and i == 0:
            info["first_start_probing_qemu_s"] = round(started - t0, 3)
            print(f"libvirtd: the capabilities cache was empty: the first start probed QEMU in {started - t0:.1f} s")
            continue
        samples["libvirtd_start"].append(started - t0)
        samples["libvirtd_stop"].append(stopped - started)
    return info


def vm_rounds(host: Host, rounds: int, samples: dict[str, list[float]], progress: Callable[[str], None]) -> dict[str, Any]:
    first: dict[str, Any] = {}
    failures: dict[str, int] = {}
    for i in range(rounds):
        took, out = host.hectl("vm-start", "--wait", "120", "--healthy", want={"result": "started", "healthy": True})
        samples["vm_start_wait_healthy"].append(took)
        first = first or out
        took, _ = host.hectl("vm-shutdown", "--wait", "--timeout", "60", want={"result": "shut-down"})
        samples["vm_shutdown_wait"].append(took)
        host.lease_free()

        took, out = host.hectl("vm-start", want={"result": "started"})
        samples["vm_start"].append(took)
        samples["boot_to_healthy"].append(wait_healthy(host.health_url, failures))
        took, _ = host.hectl("vm-poweroff", want={"result": "powered-off"})
        samples["vm_poweroff"].append(took)
        host.lease_free()
        progress(f"round {i + 1}/{rounds}")
    return {"accel": first.get("accel"), "accel_reason": first.get("accel_reason"), "failed_health_probes": failures}


# --- main ---------------------------------------------------------------------------------------


def stats(values: list[float]) -> dict[str, Any]:
    return {
        "n": len(values),
        "min_s": round(min(values), 3),
        "median_s": round(statistics.median(values), 3),
        "max_s": round(max(values), 3),
        "samples_s": [round(v, 3) for v in values],
    }


def versions() -> dict[str, str]:
    def first_line(*argv: str) -> str:
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            return subprocess.run(argv, capture_output=True, text=True, timeout=30).stdout.splitlines()[0].strip()
        return ""

    return {
        "qemu": first_line("/usr/bin/qemu-system-x86_64", "--version"),
        "libvirtd": first_line("/usr/sbin/libvirtd", "--version"),
        "sanlock": first_line("sanlock", "version"),
    }


def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description="Engine VM benchmark on real libvirtd + QEMU (TCG) + sanlock (see bench/README.md).")
    ap.add_argument("--rounds", type=int, default=3, help="rounds of every step (default 3)")
    ap.add_argument("--json", metavar="PATH", help="write the results here (default bench/results/bench_vm-<timestamp>.json)")
    args = ap.parse_args()
    if args.rounds < 1:
        ap.error("--rounds must be >= 1")
    return args


def main() -> int:
    args = parse_args()
    from lab import appliance as lab_appliance
    from lab import libvirtd as lab_libvirtd
    from lab import sanlock as lab_sanlock

    reason = lab_libvirtd.missing() or lab_appliance.missing()  # libvirtd's includes sanlock's
    if reason:
        print(f"bench_vm: cannot run here: {reason}", file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, interrupted)
    base = lab_sanlock.shared_dir("hectl-bench-vm-")
    host = None
    try:
        host = Host(base / "host")
        return run(args, base, host)
    except BenchError as exc:
        print(f"\nbench_vm: FAILED: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\nbench_vm: interrupted", file=sys.stderr)
        return 130
    finally:
        with no_interrupts():
            if host is not None:
                host.stop()
            shutil.rmtree(base, ignore_errors=True)


def run(args: argparse.Namespace, base: Path, host: Host) -> int:
    started = datetime.datetime.now()
    load_before = os.getloadavg()
    print(f"hectl engine VM benchmark: {args.rounds} rounds, {os.cpu_count()} CPUs, load {load_before[0]:.2f}")
    samples: dict[str, list[float]] = {k: [] for k in STEPS}

    def progress(what: str) -> None:
        print(f"  {what} ({time.perf_counter() - t:.0f} s)", flush=True)

    t = time.perf_counter()
    appliance = appliance_rounds(base, args.rounds, samples)
    progress("appliance builds done")
    host.daemon.start()
    libvirtd = libvirtd_rounds(host.daemon.run_dir, args.rounds, samples)
    progress("libvirtd starts done")
    host.start()
    progress(f"host ready: sanlock joined (io_timeout {IO_TIMEOUT} s), libvirtd, engine VM {host.vm_name}")
    vm = vm_rounds(host, args.rounds, samples, progress)
    elapsed = time.perf_counter() - t
    load_after = os.getloadavg()
    print(f"timed: {args.rounds} rounds in {elapsed:.0f} s; load {load_after[0]:.2f}; accelerator {vm['accel']}")

    results = {name: stats(values) for name, values in samples.items() if values}
    print(f"\n  {'step':<44}{'min':>8}{'median':>8}{'max':>8}")
    for name, what in STEPS.items():
        if name in results:
            s = results[name]
            print(f"  {what:<44}{s['min_s']:>8.2f}{s['median_s']:>8.2f}{s['max_s']:>8.2f}")
    print("  (seconds of wall time; hectl commands as processes, each answer checked)")

    result = {
        "meta": {
            "started": started.isoformat(timespec="seconds"),
            "host": platform.node(),
            "platform": platform.platform(),
            "git_head": git_head(),
            "cpus": os.cpu_count(),
            "loadavg_before": load_before,
            "loadavg_after": load_after,
            "rounds": args.rounds,
            "elapsed_s": round(elapsed, 1),
            "io_timeout": IO_TIMEOUT,
            "health_probe": {"every_s": HEALTH_POLL, "timeout_s": HEALTH_TIMEOUT},
            "vm": {"memory_mib": 256, "vcpus": 1, **vm},
            "appliance": appliance,
            "libvirtd": libvirtd,
            "versions": versions(),
        },
        "steps": {name: dict(what=STEPS.get(name, name), **s) for name, s in results.items()},
    }
    out = Path(args.json) if args.json else RESULTS_DIR / f"bench_vm-{started.strftime('%Y%m%d-%H%M%S')}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"\nresults: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
