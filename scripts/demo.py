"""hectl demo on the embedded default backend (localfs).

The main demo (the default) is the real thing: three hosts in the lab (lab/cluster.py: network namespaces, each
with its own sanlock daemon, libvirtd and ``hectl ha run``), built with ``hectl deploy`` and ``deploy --join``;
the engine (the test appliance under QEMU, TCG) runs under its sanlock lease; the demo cuts the power of the
engine's host, narrates the failover as it happens (who saw what, when the lease came free, when the engine was
healthy again) and ends with the timings, each next to its floor.

``--short`` is the quick look, in three parts:

1. Creates a storage domain in a local directory, publishes the records of three
   hosts through hectl's public Python API, and drives the real ``hectl`` CLI:
   vm-status before, during and after global maintenance.
2. Starts three real HA agents (``hectl ha run``), each with its own sanlock
   daemon as if on its own host, shows them live, then cuts the power of one
   (SIGKILL of its agent and its sanlock daemon) and shows the others noticing.
3. The engine VM: builds the test appliance (a kernel + busybox initramfs that
   serves the engine health page), starts a sanlock daemon and a private
   libvirtd, defines the engine VM on a new domain and starts one agent, which
   boots the engine under its sanlock lease (QEMU, TCG); shows vm-status,
   check-liveliness and explain, then stops the agent and shuts the engine down.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hectl.context import AppContext
from hectl.lease import host_dead_seconds
from hectl.storage.domain import init_domain
from hectl.storage.records import EngineStatus, HostRecord, host_details
from hectl.vm import liveliness
from lab.signals import interrupted, no_interrupts

HECTL = str(Path(sys.executable).with_name("hectl"))
HOSTS = [
    (1, "alpha.example.org", "EngineUp", 3400, EngineStatus("up", "good", "running", "")),
    (2, "bravo.example.org", "EngineDown", 3400, EngineStatus("down", "unknown", "", "engine runs on host 1")),
    (3, "charlie.example.org", "EngineDown", 1800, EngineStatus("down", "unknown", "", "gateway unreachable")),
]


def sh(*args: str, env: dict[str, str]) -> int:
    print(f"\n$ hectl {shlex.join(args)}", flush=True)
    return subprocess.run([HECTL, *args], env=env).returncode


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--short", action="store_true", help="the quick look (parts 1-3) instead of the failover")
    parser.add_argument("--io-timeout", type=int, default=2, help="the lab's sanlock io_timeout (default 2; hectl's own: 10)")
    demo_dir = os.environ.get("HECTL_DEMO_DIR", "/tmp/hectl-demo")
    parser.add_argument("--dir", default=demo_dir, help="--short: work directory (wiped)")
    args = parser.parse_args()
    return short(Path(args.dir)) if args.short else failover(args.io_timeout)


def failover(io_timeout: int) -> int:
    """Three hosts deployed in the lab; the engine's host loses power; the failover, narrated and timed."""
    from lab import cluster as lab_cluster
    from lab.probe import HealthProbe

    reason = lab_cluster.missing()
    if reason:
        print(f"== cannot build the lab here: {reason}")
        return 1
    began = time.monotonic()
    dead_after = host_dead_seconds(io_timeout)
    cluster = lab_cluster.Cluster(3, io_timeout=io_timeout)
    watcher = lab_cluster.NeverTwo(cluster)
    print(f"== hectl demo: three hosts in the lab, shared storage localfs, sanlock io_timeout {io_timeout} s "
          f"(host_dead_seconds {dead_after:.0f} s)")  # fmt: skip
    try:
        cluster.start()
        net = cluster.segment
        print(f"== hosts 1-3: network namespaces {net.netns(1)}..{net.netns(3)} on {net.address(0)}/28 (TEST-NET-3),"
              f" each with its own sanlock daemon and libvirtd ({cluster.timings['hosts_start_s']:.1f} s)")  # fmt: skip
        print("== host 1: hectl deploy --answers ... (storage domain, leases, engine image, lockspace, engine VM);"
              " hosts 2 and 3: hectl deploy --join")  # fmt: skip
        cluster.deploy()
        t = cluster.timings
        print(f"== deployed: host 1 in {t['deploy_s']:.1f} s (engine running, healthy), host 2 joined in "
              f"{t['join_2_s']:.1f} s, host 3 in {t['join_3_s']:.1f} s")  # fmt: skip
        watcher.start()
        cluster.start_agents()
        h2 = cluster.hosts[1]
        if not wait("all three hosts live", lambda: all(r["live"] for r in h2.status()["hosts"]), 60 + 10 * io_timeout):
            return 1
        if not wait("one healthy engine", lambda: cluster.one_engine(h2) == 1, 120):
            return 1
        # each agent scores itself once it has watched the cluster for [ha] history (6 s here)
        wait("every host scored", lambda: all(r["score"] > 0 for r in h2.status()["hosts"]), 60)
        print(f"== agents running on the three hosts; the engine runs on host 1 at {cluster.engine_ip}")
        show(h2, "vm-status")
        dead = cluster.hosts[0]
        print("\n== power loss of host 1: every process of the host SIGKILLed at once (agent, sanlock, libvirtd, QEMU);"
              "\n   the never-two-engines watcher reads every host's QEMU processes and libvirt's run state")  # fmt: skip
        phases = cluster.failover(dead, dead_after + 180, lambda t, text: print(f"   +{t:5.1f} s  {text}", flush=True))
        winner = cluster.one_engine(h2) or cluster.engine_hosts()[0]
        print(f"== the engine runs again, on host {winner}")
        show(cluster.hosts[winner - 1], "vm-status")
        show(cluster.hosts[winner - 1], "explain")
        floors = {
            "peers_see_stale": ("the survivors see host 1 stale", "liveness window 8 s"),
            "lease_free": ("sanlock: host 1's leases free", f"host_dead_seconds {dead_after:.0f} s"),
            "vm_started": ("QEMU started on the new host", "(paused until the lease is held)"),
            "lease_taken": ("the engine lease taken", f"host_dead_seconds {dead_after:.0f} s"),
            "healthy": ("the engine's health page green", f"host_dead_seconds {dead_after:.0f} s + the guest's boot"),
        }
        print("\n== failover timings, seconds from the power loss:")
        for key, (what, floor) in floors.items():
            print(f"   {what:<34} {phases.get(key, float('nan')):6.1f} s   floor: {floor}")
        survivor = next(h for h in cluster.hosts if h.up and h.id != winner)
        print(f"\n== a planned move: the engine live-migrated from host {winner} to host {survivor.id} (its lease moves"
              f"\n   with it), the health page probed every 100 ms from host {survivor.id}")  # fmt: skip
        with HealthProbe(survivor.netns, cluster.health_url) as probe:
            moved = show(cluster.hosts[winner - 1], "vm-migrate", "--to", str(survivor.id), "--wait").returncode == 0
            time.sleep(1)
        lost = sum(1 for _, answered in probe.samples if not answered)
        where = " and ".join(str(i) for i in cluster.engine_hosts()) or "none"
        print(f"== {len(probe.samples)} probes, {lost} unanswered; the engine runs on host {where}")
        ok = moved and not watcher.violations and watcher.polls > 0
        print(f"== never two engines: {watcher.polls} polls of every host, {len(watcher.violations)} intervals with two")
        print(f"== demo {'finished' if ok else 'FAILED'} in {time.monotonic() - began:.0f} s")
        return 0 if ok else 1
    except (RuntimeError, TimeoutError) as exc:
        print(f"== demo FAILED: {exc}")
        return 1
    finally:
        with no_interrupts():
            watcher.stop.set()
            watcher.join(10)
            cluster.close()


def show(host: Any, *args: str) -> subprocess.CompletedProcess[str]:
    """``hectl ARGS`` on a lab host, echoed with its output."""
    print(f"\n$ hectl {shlex.join(args)}        # on host {host.id}", flush=True)
    res = host.hectl(*args)
    print(res.stderr + res.stdout, end="", flush=True)  # progress and warnings came first
    return res  # type: ignore[no-any-return]


def short(base: Path) -> int:
    """Parts 1-3: records and maintenance, three agents and a power loss, one host with the engine VM."""
    began = time.monotonic()
    shutil.rmtree(base, ignore_errors=True)
    (base / "domain").mkdir(parents=True)
    config = base / "hectl.conf"
    config.write_text(
        "[host]\nid = 1\nhostname = alpha.example.org\n\n"
        f"[storage]\ntype = localfs\npath = {base / 'domain'}\n\n[paths]\nstate_dir = {base / 'state'}\n"
    )
    env = dict(os.environ, HECTL_CONFIG=str(config))
    print(f"== hectl demo in {base} (configuration: {config})")

    app = AppContext(config_path=str(config), environ=env)
    identity = init_domain(app.backend(), app.clock, app.timeout)
    print(f"== created localfs storage domain {identity['uuid']} at {app.backend().root()}")

    store = app.store()
    for host_id, name, state, score, engine in HOSTS:
        rec = HostRecord(host_id, store.next_seq(host_id), app.clock.wall(), score, state, engine, name)
        store.write_host(rec._replace(details=host_details(rec)))
    print(f"== published the records of {len(HOSTS)} hosts through hectl.storage.metadata.MetadataStore")

    codes = [
        sh("vm-status", env=env),
        sh("set-maintenance", "--mode", "global", "--reason", "demo: planned upgrade", "--ttl", "30m", env=env),
        sh("vm-status", env=env),
        sh("vm-status", "--check", env=env),
        sh("set-maintenance", "--mode", "none", env=env),
        sh("vm-status", "--check", env=env),
    ]
    print(f"\n== audit log: {app.config.audit_log}")
    print(Path(app.config.audit_log).read_text(), end="")
    # --check exits 1 (WARNING) under global maintenance and 0 (OK) after it: that is the demo working.
    ok = codes == [0, 0, 0, 1, 0, 0] and agents(base, config, env) and engine_vm()
    print(f"\n== demo {'finished' if ok else 'FAILED'} in {time.monotonic() - began:.0f} s (part 1 exit codes {codes})")
    return 0 if ok else 1


def live_hosts(env: dict[str, str]) -> set[int]:
    out = subprocess.run([HECTL, "vm-status", "--json"], env=env, capture_output=True, text=True, check=True).stdout
    return {h["host_id"] for h in json.loads(out)["hosts"] if h["live"]}


def wait(what: str, check: Callable[[], bool], timeout: float, log: Path | None = None) -> bool:
    """Poll ``check`` until true; False (saying so, with the tail of ``log``) after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            print(f"== {what}: not within {timeout:.0f} s")
            if log is not None:
                lines = log.read_text(errors="replace").splitlines()[-25:] if log.exists() else []
                print(f"== last lines of {log}:", *(f"   {line}" for line in lines), sep="\n")
            return False
        time.sleep(0.5)
    return True


def agents(base: Path, config: Path, env: dict[str, str]) -> bool:
    """Three real agents with three real sanlock daemons; then host 3 loses power."""
    from lab import sanlock as lab

    if lab.missing():
        print(f"\n== skipping the agents part: {lab.missing()}")
        return False
    print("\n== part 2: three HA agents, each with its own sanlock daemon (fast demo timings: io_timeout 2 s)")
    shared = lab.shared_dir("hectl-demo-")
    shim = lab.build_shim(shared)
    daemons = [lab.Daemon(shared / f"sanlock{i}", shim) for i in (1, 2, 3)]
    procs: list[subprocess.Popen[bytes]] = []
    root = shared / "domain"
    root.mkdir()
    root.chmod(0o755)
    try:
        for d in daemons:
            d.start()
        configs = []
        for i in (1, 2, 3):
            cfg = shared / f"hectl-{i}.conf"
            cfg.write_text(
                f"[host]\nid = {i}\nhostname = {HOSTS[i - 1][1]}\n[storage]\ntype = localfs\npath = {root}\n"
                f"[paths]\nstate_dir = {shared / f'state{i}'}\n[timeouts]\nliveness_window = 8\nagent_silent_after = 10\n"
                "[ha]\nio_timeout = 2\nloop = 2\nhistory = 8\n"
            )
            configs.append(cfg)
        app = AppContext(config_path=str(configs[0]), environ={})
        init_domain(app.backend(), app.clock, app.timeout)
        lab.initialize_domain_leases(root, daemons[0], 2)
        print(f"== domain {root}; lockspace initialised with io_timeout 2 s")
        for i, (d, cfg) in enumerate(zip(daemons, configs, strict=True), 1):
            log = open(shared / f"agent{i}.log", "wb")  # noqa: SIM115 - lives as long as the agent
            procs.append(
                subprocess.Popen(
                    [HECTL, "ha", "run"], env=dict(os.environ, HECTL_CONFIG=str(cfg), **d.env), stdout=log, stderr=log
                )
            )
        env1 = dict(os.environ, HECTL_CONFIG=str(configs[0]))
        if not wait("all three agents live", lambda: live_hosts(env1) == {1, 2, 3}, 60):
            return False
        sh("vm-status", env=env1)
        print("\n== power loss of host 3: SIGKILL of its agent and its sanlock daemon")
        procs[2].kill()
        daemons[2].kill()
        if not wait("host 3 seen stale", lambda: 3 not in live_hosts(env1), 30):
            return False
        sh("vm-status", env=env1)
        sh("explain", env=env1)
        return True
    finally:
        with no_interrupts():
            for p in procs:
                stop_agent(p)
            for d in daemons:
                d.stop()
            shutil.rmtree(shared, ignore_errors=True)


def stop_agent(proc: subprocess.Popen[bytes]) -> int | None:
    """SIGTERM, and SIGKILL if it has not stopped after 30 s; its exit status."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return proc.returncode


def engine_vm() -> bool:
    """One host with the real engine stack: sanlock + libvirtd + QEMU (TCG), the appliance as the engine."""
    from lab import appliance as lab_appliance
    from lab import libvirtd as lab_libvirtd
    from lab import sanlock as lab

    reason = lab.missing() or lab_libvirtd.missing() or lab_appliance.missing()
    if reason:
        print(f"\n== skipping the engine VM part: {reason}")
        return False
    began = time.monotonic()
    print("\n== part 3: the engine VM (one host: sanlock daemon, private libvirtd, QEMU with TCG)")
    print("== the engine appliance: a Debian kernel + busybox initramfs serving the engine health page")
    appliance = lab_appliance.build()
    built = f"built in {appliance.build_seconds:.1f} s" if appliance.build_seconds else "cached"
    print(f"== appliance {built}: {appliance.kernel.parent}")
    shared = lab.shared_dir("hectl-demo-vm-")
    daemon = lab.Daemon(shared / "sanlock", lab.build_shim(shared))
    libvirtd = lab_libvirtd.Libvirtd(sanlock_run_dir=daemon.run_dir)
    root, log = shared / "domain", shared / "agent.log"
    agent: subprocess.Popen[bytes] | None = None
    try:
        daemon.start()
        t0 = time.monotonic()
        libvirtd.start()
        print(f"== sanlock daemon and libvirtd (lock_manager = sanlock) up; libvirtd answered in {time.monotonic() - t0:.1f} s")
        port = free_port()
        cfg = shared / "hectl.conf"
        cfg.write_text(
            f"[host]\nid = 1\nhostname = {HOSTS[0][1]}\n[storage]\ntype = localfs\npath = {root}\n"
            f"[paths]\nstate_dir = {shared / 'state'}\n[timeouts]\nliveness_window = 8\nagent_silent_after = 8\n"
            "[ha]\nio_timeout = 2\nloop = 2\nhistory = 6\n"
            f"[vm]\nuri = {libvirtd.uri}\naccelerator = tcg\nstart_timeout = 60\n"
            f"[engine]\nhealth_url = http://127.0.0.1:{port}/ovirt-engine/services/health\nhealth_timeout = 2\n"
        )
        root.mkdir(mode=0o755)
        app = AppContext(config_path=str(cfg), environ={})
        init_domain(app.backend(), app.clock, app.timeout)
        lab.initialize_domain_leases(root, daemon, 2)
        for src, name in ((appliance.kernel, "vmlinuz"), (appliance.initrd, "initrd.img")):
            shutil.copyfile(src, root / "images" / name)
            (root / "images" / name).chmod(0o644)  # QEMU runs as libvirt-qemu
        print(f"== domain {root} with the appliance in images/; the engine's health page will be on 127.0.0.1:{port}")
        env = dict(os.environ, HECTL_CONFIG=str(cfg), **daemon.env)
        spec = ("memory_mib=256", "vcpus=1", "kernel=vmlinuz", "initrd=initrd.img", f"cmdline={appliance.cmdline}")
        codes = [sh("vm-config", "set", *spec, f"host_port={port}", env=env)]
        if codes[0] != 0:
            return False

        print("\n== starting the HA agent of host 1 (hectl ha run); it joins the lockspace and starts the engine")
        with open(log, "wb") as out:
            agent = subprocess.Popen([HECTL, "ha", "run"], env=env, stdout=out, stderr=out)
        start = time.monotonic()
        url = f"http://127.0.0.1:{port}/ovirt-engine/services/health"
        seen: list[tuple[str, str, str]] = []
        page_up = 0.0  # CLOCK_BOOTTIME when the health page first answered 200 "DB Up" (what check-liveliness probes)

        def healthy() -> bool:
            nonlocal page_up
            if not page_up and liveliness.check(url, 0.5).healthy:
                page_up = time.clock_gettime(time.CLOCK_BOOTTIME)
            row = host_row(env, 1)
            if not row or not row["state"]:
                return False  # no record of this host's agent yet
            engine = row["engine"] or {}
            now = row["state"], engine.get("vm", "-"), engine.get("health", "-")
            if not seen or seen[-1] != now:
                seen.append(now)
                print(f"   {time.monotonic() - start:5.1f} s  {now[0]:<16} engine vm {now[1]}, health {now[2]}")
            done = now == ("EngineUp", "up", "good")
            if done and not page_up:  # the agent's probe saw it first: up no later than now
                page_up = time.clock_gettime(time.CLOCK_BOOTTIME)
            return done

        if not wait("the engine up and healthy", healthy, 120, log):
            return False
        took = time.monotonic() - start
        qemu = started_at(libvirtd.run_dir / "qemu" / "HostedEngine.pid")
        boot = f"; boot to healthy (QEMU started -> health page 200): {page_up - qemu:.1f} s" if qemu and page_up else ""
        print(f"== the agent started the engine; EngineUp and healthy {took:.1f} s after the agent's start{boot}")
        codes += [sh("vm-status", env=env), sh("check-liveliness", env=env), sh("explain", env=env)]

        print(
            "\n== stopping the agent (SIGTERM): the engine keeps running under its lease. Then a graceful shutdown"
            "\n   (vm-shutdown warns that agents would start the engine again; no agent is left here)"
        )
        stopped = stop_agent(agent)
        console = shared / "state" / "engine-console.log"
        offset = console.stat().st_size if console.exists() else 0
        codes.append(sh("vm-shutdown", "--wait", "--timeout", "60", env=env))
        with contextlib.suppress(OSError), open(console, "rb") as f:
            f.seek(offset)
            lines = [ln for ln in f.read().decode(errors="replace").splitlines() if "appliance:" in ln or "reboot:" in ln]
            print("== the guest's serial console meanwhile:", *(f"   {line.strip()}" for line in lines), sep="\n")
        ok = codes == [0, 0, 0, 0, 0] and stopped == 0
        print(f"== part 3 {'done' if ok else 'FAILED'} in {time.monotonic() - began:.0f} s (exit codes {codes}, agent {stopped})")
        return ok
    finally:
        with no_interrupts():
            if agent is not None:
                stop_agent(agent)
            libvirtd.stop()
            daemon.stop()
            shutil.rmtree(shared, ignore_errors=True)


def host_row(env: dict[str, str], host_id: int) -> dict[str, Any] | None:
    res = subprocess.run([HECTL, "vm-status", "--json"], env=env, capture_output=True, text=True)
    if res.returncode != 0:
        return None
    return next((h for h in json.loads(res.stdout)["hosts"] if h["host_id"] == host_id), None)


def started_at(pidfile: Path) -> float:
    """When the process in ``pidfile`` started, on CLOCK_BOOTTIME (0.0 if unknown)."""
    from lab import reaper

    try:
        ticks = reaper.started(int(pidfile.read_text().split()[0]))
    except (OSError, ValueError, IndexError):
        return 0.0
    return int(ticks) / os.sysconf("SC_CLK_TCK") if ticks else 0.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, interrupted)
    signal.signal(signal.SIGINT, signal.default_int_handler)  # also when started in the background
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("\n== interrupted; everything it started is stopped and removed", file=sys.stderr)
        sys.exit(130)
