"""hectl demo on the embedded default backend (localfs).

Creates a storage domain in a local directory, publishes the records of three hosts
through hectl's public Python API (as their HA agents will), and drives the real
``hectl`` CLI: vm-status before, during and after global maintenance.
"""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import subprocess
import sys
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
    ok = codes == [0, 0, 0, 1, 0, 0]
    print(f"\n== demo {'finished' if ok else 'FAILED'} (exit codes {codes})")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
