"""The cluster configuration on the domain: shared keys set once, merged on every host, never disagreeing."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from hectl.storage import cluster, clusterkey, sealed
from hectl.storage.backend import DomainPaths
from tests.conftest import Domain, run_hectl


def key_of(domain: Domain) -> clusterkey.ClusterKey:
    key = clusterkey.load(str(domain.config.parent / "cluster.key"))
    assert key is not None
    return key


def signed(domain: Domain, body: dict[str, object], key: clusterkey.ClusterKey | None = None) -> bytes:
    """A document as a holder of ``key`` (default: the domain's) would write it."""
    return sealed.seal("cluster", body, cluster.CLUSTER_SIZE, key or key_of(domain))


def doc_path(domain: Domain) -> Path:
    return domain.root / "config" / cluster.CLUSTER_FILE


def other_host(domain: Domain, host_id: int, key_dir: Path) -> Path:
    """Host ``host_id``'s configuration, with its own state directory and its own cluster key file in ``key_dir``."""
    key_dir.mkdir(exist_ok=True)
    path = key_dir / "hectl.conf"
    text = domain.config.read_text().replace(f"id = {domain.host_id}\n", f"id = {host_id}\n")
    path.write_text(text.replace(str(domain.state_dir), str(key_dir / "state")))
    return path


def env_for(domain: Domain, config: Path) -> dict[str, str]:
    return dict(domain.env, HECTL_CONFIG=str(config))


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
    # a well-sealed document, signed with the cluster key, with a bad value is refused as well
    path.write_bytes(signed(domain, {"version": 5, "sections": {"score": {"base": "-1"}}}))
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


def test_the_first_set_makes_the_key_and_signs_with_it(domain: Domain) -> None:
    res = run_hectl(["cluster-config", "set", "score.base=3000", "--json"], env=domain.env)
    assert res.returncode == 0, res.stderr
    key_file = domain.config.parent / "cluster.key"
    assert oct(key_file.stat().st_mode & 0o777) == "0o600"
    key = key_of(domain)
    assert json.loads(res.stdout)["key_id"] == key.id and key.id in res.stderr and key_file.read_text() not in res.stderr
    doc = json.loads(doc_path(domain).read_bytes())
    assert doc["key_id"] == key.id and len(doc["hmac_sha256"]) == 64
    assert key.secret.hex() not in doc_path(domain).read_text()  # the key never reaches the domain


def test_a_document_signed_with_another_key_is_refused_on_every_host_and_the_last_good_copy_used(
    domain: Domain, tmp_path: Path
) -> None:
    assert run_hectl(["cluster-config", "set", "score.base=3000", "fencing.dead_after=30"], env=domain.env).returncode == 0
    second = other_host(domain, 2, tmp_path / "h2")
    (tmp_path / "h2" / "cluster.key").write_bytes((domain.config.parent / "cluster.key").read_bytes())
    os.chmod(tmp_path / "h2" / "cluster.key", 0o600)
    hosts = [domain.config, second]
    for config in hosts:
        assert domain.app(config_path=str(config)).config.score.base == 3000  # each host keeps its copy
    domain.publish(1, vm="up", health="good")  # all is well but the document
    assert run_hectl(["vm-status", "--check"], env=domain.env).returncode == 0
    attacker = clusterkey.generate()
    body = {"version": 9, "sections": {"score": {"base": "1"}, "fencing": {"dead_after": "1"}}}
    for forged, why in (
        (signed(domain, body, attacker), "signed with cluster key"),
        (sealed.seal("cluster", body, cluster.CLUSTER_SIZE), "not signed with a cluster key"),  # the checksum alone
    ):
        doc_path(domain).write_bytes(forged)
        for config in hosts:
            app = domain.app(config_path=str(config))
            assert app.config.score.base == 3000 and app.config.fencing.dead_after == 30
            assert why in app.cluster_problem and "copy of version 1" in app.cluster_problem
            res = run_hectl(["vm-status", "--check"], env=env_for(domain, config))
            assert res.returncode == 1 and "cluster configuration:" in res.stdout and why in res.stdout, res.stdout
            res = run_hectl(["vm-status", "--json"], env=env_for(domain, config))
            report = json.loads(res.stdout)["cluster_config"]
            assert report["version"] == 1 and why in report["problem"]
            assert "!! cluster configuration:" in run_hectl(["vm-status"], env=env_for(domain, config)).stdout
        res = run_hectl(["cluster-config", "show"], env=domain.env)
        assert res.returncode == 4 and why in res.stderr
        assert run_hectl(["cluster-config", "set", "score.base=10"], env=domain.env).returncode == 4  # never merged into


def test_an_older_or_removed_document_is_refused(domain: Domain) -> None:
    run_hectl(["cluster-config", "set", "score.base=3000"], env=domain.env)
    old = doc_path(domain).read_bytes()
    run_hectl(["cluster-config", "set", "score.base=2000"], env=domain.env)
    assert domain.app().config.score.base == 2000
    doc_path(domain).write_bytes(old)  # a genuine, signed, older document put back
    app = domain.app()
    assert app.config.score.base == 2000 and "version 1 is older than version 2" in app.cluster_problem
    doc_path(domain).unlink()
    app = domain.app()
    assert app.config.score.base == 2000 and "the domain has none" in app.cluster_problem
    res = run_hectl(["cluster-config", "set", "score.base=2500", "--json"], env=domain.env)
    assert json.loads(res.stdout)["version"] == 3  # above the version this host used: every host takes it
    assert domain.app().config.score.base == 2500 and not domain.app().cluster_problem


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["score.cpu_min=0.95", "score.cpu_max=0.9"], "cpu_min (0.95) must not exceed cpu_max (0.9)"),
        (["fencing.enabled=yes"], "needs a device"),
        (["fencing.enabled=yes", "fencing.host2=fence_ipmilan ip=192.0.2.2", "fencing.dead_after=5", "ha.loop=5"],
         "dead_after (5 s) must be longer than [ha] loop (5 s)"),
        (["notify.username=alerts", "notify.starttls=yes"], "username and password_file go together"),
        (["notify.starttls=yes", "notify.implicit_tls=yes"], "starttls and implicit_tls exclude each other"),
    ],
)  # fmt: skip
def test_keys_that_conflict_are_refused_at_set_and_nothing_is_written(domain: Domain, args: list[str], named: str) -> None:
    assert run_hectl(["cluster-config", "set", "score.base=3000"], env=domain.env).returncode == 0
    before = doc_path(domain).read_bytes()
    res = run_hectl(["cluster-config", "set", *args], env=domain.env)
    assert res.returncode == 2, res.stderr
    assert named in res.stderr and "the new cluster configuration" in res.stderr and "Traceback" not in res.stderr
    assert doc_path(domain).read_bytes() == before


def test_a_signed_document_with_conflicting_keys_falls_back_and_names_the_document(domain: Domain) -> None:
    run_hectl(["cluster-config", "set", "score.base=3000"], env=domain.env)
    body = {"version": 2, "sections": {"score": {"cpu_min": "0.95", "cpu_max": "0.9"}}}
    doc_path(domain).write_bytes(signed(domain, body))  # e.g. written by an older hectl that did not check
    app = domain.app()
    assert app.config.score.base == 3000
    assert app.cluster_problem.startswith("cluster configuration v2: [score] cpu_min (0.95) must not exceed")
    assert str(domain.config) not in app.cluster_problem  # not blamed on the local file
    for args in (["vm-status", "--json"], ["explain", "--json"], ["metrics"], ["set-maintenance", "--mode", "none"]):
        res = run_hectl(args, env=domain.env)
        assert res.returncode == 0, (args, res.stderr)


def test_replace_repairs_a_torn_document(domain: Domain) -> None:
    run_hectl(["cluster-config", "set", "score.base=3000"], env=domain.env)
    doc_path(domain).write_bytes(doc_path(domain).read_bytes()[:40])
    assert run_hectl(["cluster-config", "set", "score.base=10"], env=domain.env).returncode == 4
    res = run_hectl(["cluster-config", "set", "--replace", "score.base=2000", "--json"], env=domain.env)
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["version"] == 2  # above the copy this host kept (version 1)
    assert domain.app().config.score.base == 2000 and not domain.app().cluster_problem


def test_one_key_per_host_device(domain: Domain) -> None:
    for alias in ("host01", "host0001", "host+1"):
        res = run_hectl(["cluster-config", "set", f"fencing.{alias}=fence_ipmilan ip=192.0.2.1"], env=domain.env)
        assert res.returncode == 2 and "not a shared key" in res.stderr, (alias, res.stderr)
    with domain.config.open("a") as f:
        f.write("[fencing]\nhost01 = fence_ipmilan ip=192.0.2.1\n")
    res = run_hectl(["vm-status"], env=domain.env)
    assert res.returncode == 3 and "unknown key 'host01'" in res.stderr


def test_rotation_and_installing_the_key_on_another_host(domain: Domain, tmp_path: Path) -> None:
    run_hectl(["cluster-config", "set", "score.base=3000"], env=domain.env)
    old_key = (domain.config.parent / "cluster.key").read_bytes()
    second = other_host(domain, 2, tmp_path / "h2")
    env2 = env_for(domain, second)
    # a host without the key uses nothing from the domain and says why
    app = domain.app(config_path=str(second))
    assert app.config.score.base == 3400 and "this host has no cluster key" in app.cluster_problem
    assert run_hectl(["cluster-config", "show"], env=env2).returncode == 3
    # install-key: from a root-only file (never argv), verified against the domain's document
    copy = tmp_path / "key-copy"
    copy.write_bytes(old_key)
    copy.chmod(0o644)
    res = run_hectl(["cluster-config", "install-key", "--key-file", str(copy)], env=env2)
    assert res.returncode == 3 and "lets others read" in res.stderr
    copy.chmod(0o600)
    wrong = tmp_path / "wrong-key"
    wrong.write_bytes(clusterkey.generate().text())
    wrong.chmod(0o600)
    res = run_hectl(["cluster-config", "install-key", "--key-file", str(wrong)], env=env2)
    assert res.returncode == 3 and "is not the one" in res.stderr and not (tmp_path / "h2" / "cluster.key").exists()
    res = run_hectl(["cluster-config", "install-key", "--key-file", str(copy), "--json"], env=env2)
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["version"] == 1 and domain.app(config_path=str(second)).config.score.base == 3000
    # rotate on host 1: host 2 keeps running on its copy, loudly, until it gets the new key
    assert run_hectl(["cluster-config", "rotate-key"], env=domain.env).returncode == 2  # --yes
    res = run_hectl(["cluster-config", "rotate-key", "--yes", "--json"], env=domain.env)
    assert res.returncode == 0, res.stderr
    new = key_of(domain)
    assert json.loads(res.stdout)["key_id"] == new.id and new.text() != old_key
    assert json.loads(res.stdout)["version"] == 2 and not (domain.config.parent / "cluster.key.new").exists()
    assert domain.app().config.score.base == 3000 and not domain.app().cluster_problem
    app = domain.app(config_path=str(second))
    assert app.config.score.base == 3000 and f"signed with cluster key {new.id}" in app.cluster_problem
    copy.write_bytes(new.text())
    assert run_hectl(["cluster-config", "install-key", "--key-file", str(copy)], env=env2).returncode == 0
    app = domain.app(config_path=str(second))
    assert app.config.score.base == 3000 and app.cluster_version == 2 and not app.cluster_problem


def test_an_unsafe_key_file_is_refused(domain: Domain) -> None:
    run_hectl(["cluster-config", "set", "score.base=3000"], env=domain.env)
    key_file = domain.config.parent / "cluster.key"
    key_file.chmod(0o644)
    res = run_hectl(["vm-status"], env=domain.env)
    assert res.returncode == 3 and "lets others read" in res.stderr
    key_file.chmod(0o600)
    key_file.write_text("secret-ish text\n")
    res = run_hectl(["vm-status"], env=domain.env)
    assert res.returncode == 3 and "not a cluster key" in res.stderr and "secret-ish" not in res.stderr
