"""The guarded repair tools refuse outside global maintenance and under live agents, show before they act,
act only with --yes, and write the audit log (against real sanlock for the lockspace)."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from hectl import audit
from lab import sanlock as lab_sanlock
from tests.conftest import Domain, make_domain, run_hectl


def set_global(dom: Domain, env: dict[str, str], mode: str = "global") -> None:
    res = run_hectl(["set-maintenance", "--mode", mode, "--reason", "repair test"], env=env)
    assert res.returncode == 0, res.stderr


def test_clean_metadata_is_guarded_and_audited(domain: Domain) -> None:
    domain.publish(2, age=600)
    args = ["clean-metadata", "--host-id", "2", "--json"]
    res = run_hectl(args, env=domain.env)
    assert res.returncode == 1 and "outside global maintenance" in res.stderr
    set_global(domain, domain.env)
    shown = run_hectl(args, env=domain.env)
    assert shown.returncode == 0, shown.stderr
    doc = json.loads(shown.stdout)
    assert doc["done"] is False and doc["hostname"] == "host2.example" and doc["slot"] == "valid"
    assert domain.store().read_slot(2).kind == "valid"  # shown, not done
    done = run_hectl([*args, "--yes"], env=domain.env)
    assert done.returncode == 0 and json.loads(done.stdout)["done"] is True
    assert domain.store().read_slot(2).kind == "empty"
    entries = [e for e in audit.read(domain.app().config.audit_log) if e.get("action") == "clean-metadata"]
    assert len(entries) == 1 and entries[0]["host_id"] == 2 and entries[0]["hostname"] == "host2.example"


def test_clean_metadata_refuses_a_live_host(domain: Domain) -> None:
    set_global(domain, domain.env)
    domain.publish(3, age=1)
    res = run_hectl(["clean-metadata", "--host-id", "3", "--yes"], env=domain.env)
    assert res.returncode == 5 and "host 3 is live" in res.stderr
    assert domain.store().read_slot(3).kind == "valid"


@pytest.fixture
def sanlock_domain() -> Iterator[tuple[Domain, lab_sanlock.Daemon]]:
    reason = lab_sanlock.missing()
    if reason:
        pytest.skip(reason)
    base = lab_sanlock.shared_dir("hectl-repair-")
    daemon = lab_sanlock.Daemon(base / "sanlock", lab_sanlock.build_shim(base))
    try:
        daemon.start()
        dom = make_domain(base / "host")
        (base / "host").chmod(0o755)
        dom.root.chmod(0o755)
        with open(dom.config, "a") as f:
            f.write("[ha]\nio_timeout = 2\n")
        lab_sanlock.initialize_domain_leases(dom.root, daemon, 2)
        yield dom, daemon
    finally:
        daemon.stop()
        shutil.rmtree(base, ignore_errors=True)


@pytest.mark.integration
def test_reinitialize_lockspace_is_guarded_and_rewrites_it(sanlock_domain: tuple[Domain, lab_sanlock.Daemon]) -> None:
    dom, daemon = sanlock_domain
    env = dict(dom.env, **daemon.env)
    lockspace = Path(dom.root) / "ha" / "lockspace"
    res = run_hectl(["reinitialize-lockspace", "--yes"], env=env)
    assert res.returncode == 1 and "outside global maintenance" in res.stderr
    set_global(dom, env)
    dom.publish(2, age=1)  # a live agent
    res = run_hectl(["reinitialize-lockspace", "--yes"], env=env)
    assert res.returncode == 5 and "agents are live" in res.stderr
    dom.publish(2, age=1, stopped=True)  # it stopped cleanly
    lockspace.write_bytes(b"\0" * lockspace.stat().st_size)  # the damage to repair: sanlock cannot read it
    shown = run_hectl(["reinitialize-lockspace", "--json"], env=env)
    assert shown.returncode == 0 and json.loads(shown.stdout)["done"] is False
    done = run_hectl(["reinitialize-lockspace", "--json", "--yes"], env=env)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["done"] is True
    joined = daemon.client("add_lockspace", "-o", "2", "-s", f"hectl:1:{lockspace}:0")  # usable again
    assert joined.returncode == 0 and "done 0" in joined.stdout, joined.stdout + joined.stderr
    entries = [e for e in audit.read(dom.app().config.audit_log) if e.get("action") == "reinitialize-lockspace"]
    assert len(entries) == 1 and entries[0]["lockspace"] == str(lockspace)
