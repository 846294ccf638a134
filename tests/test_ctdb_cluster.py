"""CTDB's outputs parsed (real samples from ctdb 4.17, shared/reference/components/ctdb-samples/) and what
storage check makes of them: node health, the address holder, the cut-off node's hazard, lock and fail-back."""

from __future__ import annotations

from pathlib import Path

import pytest

from hectl.backends.ctdb import cluster
from hectl.storage import doctor

SAMPLES = Path(__file__).parent / "data" / "ctdb"
PUBLIC = "198.51.100.100"
TUNED = {"NoIPFailback": 1, "KeepaliveInterval": 1, "KeepaliveLimit": 3}


def sample(name: str) -> str:
    return (SAMPLES / f"{name}.txt").read_text()


def view(
    status: str, ip: str = "healthy-ip-X", reclock: str = "!/usr/libexec/ctdb/helper /shared/lock", **tun: int
) -> cluster.View:
    return cluster.View(
        nodes=cluster.nodes(sample(status)), addresses=cluster.addresses(sample(ip)), reclock=reclock,
        tunables={**TUNED, **tun},
    )  # fmt: skip


def by_check(found: list[doctor.Finding]) -> dict[str, doctor.Finding]:
    return {f.check: f for f in found}


def test_tables_and_tunables_parse() -> None:
    nodes = cluster.nodes(sample("healthy-status-X"))
    assert [(n.pnn, n.ip, n.flags, n.this) for n in nodes] == [
        (0, "198.51.100.11", (), True), (1, "198.51.100.12", (), False), (2, "198.51.100.13", (), False)
    ]  # fmt: skip
    assert cluster.addresses(sample("healthy-ip-X")) == {PUBLIC: 0}
    assert cluster.tunable(sample("healthy-getvar-X")) == 5
    with pytest.raises(ValueError):
        cluster.tunable("garbage")
    stopped = cluster.nodes(sample("stopped-status-X"))
    assert stopped[1].flags == ("Stopped", "Inactive")


def test_a_healthy_cluster_passes_and_names_the_holder() -> None:
    found = by_check(cluster.findings(view("healthy-status-X"), PUBLIC))
    assert {f.severity for f in found.values()} == {doctor.OK}
    assert "held by pnn 0 (198.51.100.11)" in found["ctdb-address"].what
    assert "NoIPFailback = 1" in found["ctdb-failback"].what


@pytest.mark.parametrize("status", ["disabled-status-X", "down-status-X", "stopped-status-X"])
def test_sick_nodes_warn(status: str) -> None:
    found = by_check(cluster.findings(view(status, "down-ip-X"), PUBLIC))
    assert found["ctdb-nodes"].severity == doctor.WARN and found["ctdb-nodes"].fix


def test_the_cut_off_node_that_keeps_the_address_fails() -> None:
    found = by_check(cluster.findings(view("linkcut-isolated-node-status-X", "linkcut-isolated-node-ip-X"), PUBLIC))
    assert found["ctdb-nodes"].severity == doctor.FAIL
    assert found["ctdb-cutoff"].severity == doctor.FAIL and "still holds 198.51.100.100" in found["ctdb-cutoff"].what


def test_failback_no_lock_and_a_foreign_address() -> None:
    found = by_check(cluster.findings(view("healthy-status-X", reclock="", NoIPFailback=0), "192.0.2.7"))
    assert found["ctdb-failback"].severity == doctor.WARN and "two client outages" in found["ctdb-failback"].why
    assert found["ctdb-reclock"].severity == doctor.FAIL
    assert found["ctdb-address"].severity == doctor.FAIL and "not a CTDB public address" in found["ctdb-address"].what


def test_takeover_stall_follows_the_keepalive_tunables() -> None:
    assert cluster.stall(view("healthy-status-X")).seconds == 1 * (3 + 1) + 1
    assert cluster.stall(view("healthy-status-X", KeepaliveInterval=5, KeepaliveLimit=5)).seconds == 31
