"""hectl metrics: valid OpenMetrics (checked with prometheus_client's parser), stable names, storage loss visible."""

from __future__ import annotations

import os
from pathlib import Path

from conftest import Domain, run_hectl
from prometheus_client.openmetrics.parser import text_string_to_metric_families

from hectl import metrics


def families(text: str) -> dict[str, list[tuple[dict[str, str], float]]]:
    return {f.name: [(s.labels, s.value) for s in f.samples] for f in text_string_to_metric_families(text)}


def test_metrics_of_a_domain(domain: Domain) -> None:
    domain.publish(1, vm="up", health="good", hostname='tricky"name\\x')
    domain.publish(2, score=1800)
    assert run_hectl(["set-maintenance", "--mode", "global", "--ttl", "1h"], env=domain.env).returncode == 0
    res = run_hectl(["metrics"], env=domain.env)
    assert res.returncode == 0 and res.stdout.endswith("# EOF\n")
    m = families(res.stdout)
    assert m["hectl_up"] == [({}, 1.0)] and m["hectl_global_maintenance"] == [({}, 1.0)]
    assert 3500 < m["hectl_global_maintenance_remaining_seconds"][0][1] <= 3600
    scores = {labels["host_id"]: value for labels, value in m["hectl_host_score"]}
    assert scores == {"1": 3400.0, "2": 1800.0}
    names = {labels["host_id"]: labels["hostname"] for labels, _ in m["hectl_host_live"]}
    assert names["1"] == 'tricky"name\\x'  # escaped and parsed back intact
    assert ({"host_id": "1", "hostname": 'tricky"name\\x'}, 1.0) in m["hectl_host_engine_up"]
    assert set(m) <= set(metrics.METRICS)


def test_unreachable_storage_still_gives_valid_metrics(domain: Domain) -> None:
    os.rename(domain.root, domain.root.with_name("gone"))
    res = run_hectl(["metrics"], env=domain.env)
    assert res.returncode == 4
    assert families(res.stdout) == {"hectl_up": [({}, 0.0)]}


def test_every_metric_is_documented() -> None:
    text = (Path(__file__).resolve().parent.parent / "docs" / "metrics.md").read_text()
    for name in metrics.METRICS:
        assert f"`{name}`" in text, name


def test_values_are_exact(domain: Domain) -> None:
    """Integers print exactly (a 6-digit %g made 2147483647 '2.14748e+09'), floats without loss."""
    domain.publish(1, score=2**31 - 1, seq=123456789)
    res = run_hectl(["metrics"], env=domain.env)
    assert res.returncode == 0, res.stderr
    assert f'hectl_host_score{{host_id="1",hostname="host1.example"}} {2**31 - 1}\n' in res.stdout
    assert families(res.stdout)["hectl_host_score"] == [({"host_id": "1", "hostname": "host1.example"}, 2**31 - 1)]


def test_floats_round_trip() -> None:
    host = {"slot": "valid", "hostname": "h", "live": True, "score": 3400, "state": "EngineUp", "engine": {"vm": "up"}}
    report = {
        "storage": {"read_ms": 1234.5678901234567},
        "global_maintenance": {"active": True, "remaining_s": 31622399.123456789},
        "local_agent": {"status": "running"},
        "summary": {"problem_slots": 0},
        "hosts": [{**host, "host_id": 7, "age_s": 1e-7}, {**host, "host_id": 8, "age_s": float("inf")}],
    }
    m = families(metrics.render(report))
    assert m["hectl_storage_read_seconds"][0][1] == 1234.5678901234567 / 1000.0
    assert m["hectl_global_maintenance_remaining_seconds"][0][1] == 31622399.123456789
    ages = {labels["host_id"]: value for labels, value in m["hectl_host_data_age_seconds"]}
    assert ages == {"7": 1e-7, "8": float("inf")}
