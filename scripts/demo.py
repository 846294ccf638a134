"""hectl demo on the embedded default backend (localfs).

1. Creates a storage domain in a local directory, publishes the records of three
   hosts through hectl's public Python API, and drives the real ``hectl`` CLI:
   vm-status before, during and after global maintenance.
2. Starts three real HA agents (``hectl ha run``), each with its own sanlock
   daemon as if on its own host, shows them live, then cuts the power of one
   (SIGKILL of its agent and its sanlock daemon) and shows the others noticing.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from hectl.context import AppContext
from hectl.domain import init_domain
from hectl.records import EngineStatus, HostRecord, host_details

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
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dir", default=os.environ.get("HECTL_DEMO_DIR", "/tmp/hectl-demo"), help="work directory (wiped)")
    base = Path(parser.parse_args().dir)
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
    print(f"== published the records of {len(HOSTS)} hosts through hectl.metadata.MetadataStore")

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
    ok = codes == [0, 0, 0, 1, 0, 0] and agents(base, config, env)
    print(f"\n== demo {'finished' if ok else 'FAILED'} (exit codes {codes})")
    return 0 if ok else 1


def live_hosts(env: dict[str, str]) -> set[int]:
    out = subprocess.run([HECTL, "vm-status", "--json"], env=env, capture_output=True, text=True, check=True).stdout
    return {h["host_id"] for h in json.loads(out)["hosts"] if h["live"]}


def wait(what: str, check: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            print(f"== {what}: not within {timeout:.0f} s")
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
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
                p.wait(30)
        for d in daemons:
            d.stop()
        shutil.rmtree(shared, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
