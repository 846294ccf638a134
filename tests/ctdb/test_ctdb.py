"""The ctdb backend against a real CTDB cluster (three ctdbd with NFS-Ganesha each, in network namespaces):
storage check reports the holder, the fail-back setting and the takeover stall; local maintenance of the host
whose node holds the public address moves the address away (measured), and --mode none does not move it back."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hectl.context import AppContext
from hectl.storage.domain import init_domain
from tests.conftest import clear_dir, run_hectl

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture
def host(ctdb_cluster: Any, tmp_path: Path) -> Iterator[dict[str, Any]]:
    """This host is the CTDB node that holds the public address (its ctdbd socket), on a deployed domain."""
    clear_dir(ctdb_cluster.export)
    holder = ctdb_cluster.holder()
    assert holder >= 0
    config = tmp_path / "hectl.conf"
    config.write_text(
        f"[host]\nid = 1\nhostname = c1.example\n[storage]\ntype = ctdb\nconnection = {ctdb_cluster.connection}\n"
        f"mount_base = {ctdb_cluster.base}\nctdb_socket = {ctdb_cluster.socket(holder)}\ntimeout = 10\n"
        f"[paths]\nstate_dir = {tmp_path / 'state'}\n"
    )
    app = AppContext(config_path=str(config), environ={})
    init_domain(app.backend(), app.clock, 10.0)
    yield {"env": {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "HECTL_CONFIG": str(config)}, "pnn": holder}
    ctdb_cluster.ctdb(holder, "enable")


def test_storage_check_reports_the_holder_failback_and_takeover(host: dict[str, Any], ctdb_cluster: Any) -> None:
    res = run_hectl(["storage", "check", "--json"], env=host["env"])
    doc = json.loads(res.stdout)
    found = {f["check"]: f for f in doc["findings"]}
    assert found["ctdb-nodes"]["severity"] == "ok"
    assert found["ctdb-address"]["severity"] == "ok" and f"held by pnn {host['pnn']}" in found["ctdb-address"]["what"]
    assert found["ctdb-failback"]["severity"] == "ok" and found["ctdb-reclock"]["severity"] == "ok"
    assert {k: v for k, v in doc["stalls"][-1].items() if k in ("layer", "seconds")} == {"layer": "ctdb", "seconds": 5.0}
    assert doc["storage"]["type"] == "ctdb" and doc["storage"]["access"] == "libnfs"


def test_local_maintenance_hands_the_address_over_and_none_keeps_it_there(host: dict[str, Any], ctdb_cluster: Any) -> None:
    t0 = time.monotonic()
    res = run_hectl(["set-maintenance", "--mode", "local", "--reason", "patching", "--json"], env=host["env"])
    took = time.monotonic() - t0
    assert res.returncode == 0, res.stderr
    action = json.loads(res.stdout)["storage_action"]
    new = ctdb_cluster.holder()
    assert new not in (host["pnn"], -1) and f"moved to pnn {new}" in action
    print(f"\nCTDB hand-over on local maintenance: {action} (command {took:.2f} s)")
    status = run_hectl(["vm-status", "--json"], env=host["env"])  # the domain still answers through the address
    assert status.returncode == 0, status.stderr
    res = run_hectl(["set-maintenance", "--mode", "none", "--json"], env=host["env"])
    assert res.returncode == 0 and "enabled again" in json.loads(res.stdout)["storage_action"]
    time.sleep(3)  # NoIPFailback = 1: no fail-back to the re-enabled node
    assert ctdb_cluster.holder() == new
