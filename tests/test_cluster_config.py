"""The cluster configuration on the domain: shared keys set once, merged on every host, never disagreeing."""

from __future__ import annotations

import json
import os

from hectl.storage import cluster
from hectl.storage.backend import DomainPaths
from tests.conftest import Domain, run_hectl


def test_set_is_seen_by_every_host_and_versioned(domain: Domain) -> None:
    other = domain.config_for(2)
    res = run_hectl(["cluster-config", "set", "score.base=3000", "ha.loop=2", "--json"], env=domain.env)
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["version"] == 1
    assert domain.app().config.score.base == 3000
    assert domain.app(config_path=str(other)).config.score.base == 3000  # the other host reads the same
    assert domain.app().config.ha.loop == 2
    res = run_hectl(["cluster-config", "set", "score.base=", "--json"], env=domain.env)  # empty: back to the default
    doc = json.loads(res.stdout)
    assert doc["version"] == 2 and doc["sections"] == {"ha": {"loop": "2"}}
    assert domain.app().config.score.base == 3400


def test_replace_drops_the_keys_not_given(domain: Domain) -> None:
    run_hectl(["cluster-config", "set", "score.base=3000", "ha.loop=2"], env=domain.env)
    res = run_hectl(["cluster-config", "set", "--replace", "timeouts.liveness_window=20", "--json"], env=domain.env)
    assert json.loads(res.stdout)["sections"] == {"timeouts": {"liveness_window": "20"}}
    res = run_hectl(["cluster-config", "show"], env=domain.env)
    assert "timeouts.liveness_window" in res.stdout and "version 2" in res.stdout


def test_a_local_file_setting_a_shared_key_is_refused_once_the_domain_has_one(domain: Domain) -> None:
    with domain.config.open("a") as f:
        f.write("[score]\nbase = 100\n")
    assert domain.app().config.score.base == 100  # no cluster configuration yet: the local file rules
    assert run_hectl(["cluster-config", "set", "score.network_penalty=10"], env=domain.env).returncode == 3
    os.rename(domain.config, domain.config.with_suffix(".bak"))
    domain.config.write_text(domain.config.with_suffix(".bak").read_text().replace("[score]\nbase = 100\n", ""))
    assert run_hectl(["cluster-config", "set", "score.network_penalty=10"], env=domain.env).returncode == 0
    domain.config.write_text(domain.config.read_text() + "[score]\nbase = 100\n")
    res = run_hectl(["vm-status"], env=domain.env)
    assert res.returncode == 3
    assert "[score] base is shared by every host" in res.stderr and "cluster-config set score.base" in res.stderr


def test_bad_keys_and_values_are_usage_errors(domain: Domain) -> None:
    for arg in ("score.base=abc", "host.id=3", "ha.metrics_port=9000", "nokey=1", "score.nosuch=1"):
        res = run_hectl(["cluster-config", "set", arg], env=domain.env)
        assert res.returncode == 2, (arg, res.stderr)
        assert "Traceback" not in res.stderr
    assert not (domain.root / "config" / cluster.CLUSTER_FILE).exists()


def test_a_forged_or_torn_document_is_refused_and_the_last_good_copy_used(domain: Domain) -> None:
    run_hectl(["cluster-config", "set", "score.base=3000"], env=domain.env)
    assert domain.app().config.score.base == 3000  # and this host keeps a copy
    path = domain.root / "config" / cluster.CLUSTER_FILE
    good = path.read_bytes()
    forged = good.replace(b'"3000"', b'"9e99"')  # checksum no longer matches
    path.write_bytes(forged)
    app = domain.app()
    assert app.config.score.base == 3000 and "unusable" in app.cluster_problem
    # a well-sealed document with a bad value is refused as well
    from hectl.storage import sealed

    path.write_bytes(sealed.seal("cluster", {"version": 5, "sections": {"score": {"base": "-1"}}}, cluster.CLUSTER_SIZE))
    app = domain.app()
    assert app.config.score.base == 3000 and "score.base" in app.cluster_problem
    res = run_hectl(["cluster-config", "show"], env=domain.env)
    assert res.returncode == 4 and "score.base" in res.stderr


def test_a_link_planted_in_place_of_the_document_is_not_followed(domain: Domain, tmp_path) -> None:  # type: ignore[no-untyped-def]
    outside = tmp_path / "outside.json"
    outside.write_text("{}")
    os.symlink(outside, DomainPaths.under(str(domain.root)).config_dir + "/" + cluster.CLUSTER_FILE)
    res = run_hectl(["cluster-config", "show"], env=domain.env)
    assert res.returncode == 4 and "Traceback" not in res.stderr
    assert outside.read_text() == "{}"
