"""``hectl storage check|connect|disconnect``: the doctor's pure pieces, then the commands as real processes.

The commands run on real localfs domains, and on a test backend plugin
(tests/data/stall_plugin) installed as a distribution on PYTHONPATH, whose
storage layer reports a stall of a configured length (the timing budget's
warn and fail thresholds) and whose connect/disconnect change a flag file.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
from pathlib import Path

import pytest
from conftest import REPO, Domain, run_hectl

from hectl.backends.localfs.backend import LocalFSBackend
from hectl.config import HAConfig
from hectl.errors import StorageError, StorageTimeout
from hectl.storage import doctor, records
from hectl.storage.doctor import FAIL, OK, WARN, Limits, Stall
from hectl.storage.metadata import MetadataSnapshot, MetadataStore


def test_sanlock_limits_follow_io_timeout() -> None:
    assert Limits.of(10) == Limits(10, 20, 60, 80, 140)
    assert Limits.of(2) == Limits(2, 4, 12, 16, 76)


@pytest.mark.parametrize(("seconds", "severity"), [(59.9, OK), (60, WARN), (79.9, WARN), (80, FAIL), (120, FAIL)])
def test_a_stall_is_weighed_against_6x_and_8x_io_timeout(seconds: float, severity: str) -> None:
    (f,) = doctor.stall_findings([Stall("gluster", seconds, "network.ping-timeout")], Limits.of(10))
    assert f.check == "stall:gluster" and f.severity == severity
    assert f"{seconds:g} s (network.ping-timeout)" in f.what
    if severity != OK:
        assert f.why and "below 60 s" in f.fix


def test_failover_window_is_lease_expiry_after_the_last_renewal_plus_two_loops() -> None:
    # The simulator measures 131-150 s (with an 8 s boot) at io_timeout 10, loop 10 (bench/bench_ha.py).
    assert doctor.failover(Limits.of(10), 10, 300) == {"min_s": 120, "max_s": 160, "boot_limit_s": 300}


@pytest.mark.parametrize(("ms", "severity"), [(2499, OK), (2500, WARN), (9999, WARN), (10000, FAIL)])
def test_latency_against_io_timeout(ms: float, severity: str) -> None:
    assert doctor.latency_finding("read-latency", "a read", ms, 10).severity == severity


def test_status_is_the_worst_finding() -> None:
    ok, warn, fail = (doctor.Finding("x", s, "") for s in (OK, WARN, FAIL))
    assert [doctor.status_of(fs) for fs in ([], [ok], [ok, warn], [warn, fail, ok])] == [OK, OK, WARN, FAIL]


def test_buffered_fallback_is_a_warning() -> None:
    snap = MetadataSnapshot({}, records.METADATA_SIZE, False, 1.0, 0.0, 0.0)
    found = {f.check: f for f in doctor.metadata_findings(snap, "/d/ha/metadata", 10)}
    assert found["direct-io"].severity == WARN and "O_DIRECT" in found["direct-io"].what
    assert found["metadata-size"].severity == OK and found["read-latency"].severity == OK


class FailingChecks(LocalFSBackend):
    def checks(self, timeout: float, io_timeout: float) -> list[doctor.Finding]:
        raise StorageTimeout("stat /x: no answer from storage within 1 s")

    def stall_budget(self, timeout: float) -> list[Stall]:
        raise StorageError("gluster volume get: no answer")


def test_a_backend_whose_own_checks_fail_gives_failed_findings_with_a_fix(domain: Domain) -> None:
    app = domain.app()
    backend = FailingChecks({"path": str(domain.root)}, app.clock)
    report = doctor.run(backend, MetadataStore(backend, app.clock, 5.0).read_all, HAConfig(), 5.0)
    assert report["status"] == FAIL and report["code"] == 2
    got = {f["check"]: f for f in report["findings"]}  # type: ignore[attr-defined]
    assert got["backend"]["severity"] == FAIL and "no answer" in got["backend"]["what"] and got["backend"]["fix"] == doctor.RETRY
    assert got["stall-budget"]["severity"] == FAIL and got["deployed"]["severity"] == OK


def check(env: dict[str, str], *args: str) -> tuple[int, dict[str, object]]:
    res = run_hectl(["storage", "check", "--json", *args], env=env)
    return res.returncode, json.loads(res.stdout)


def findings(doc: dict[str, object]) -> dict[str, dict[str, str]]:
    return {f["check"]: f for f in doc["findings"]}  # type: ignore[attr-defined]


def add_lease_files(domain: Domain) -> None:
    for name in ("lockspace", "engine.lease"):
        (domain.root / "ha" / name).write_bytes(bytes(1024 * 1024))


def test_a_complete_localfs_domain_is_all_good(domain: Domain) -> None:
    add_lease_files(domain)
    code, doc = check(domain.env)
    assert code == 0 and doc["status"] == "ok", doc
    assert set(findings(doc)) == {
        "deployed", "metadata-size", "direct-io", "read-latency", "lockspace", "engine-lease", "free-space", "write-latency"
    }  # fmt: skip
    assert all(f["severity"] == OK for f in doc["findings"])  # type: ignore[attr-defined]
    assert doc["sanlock"] == {"io_timeout": 10, "renew": 20, "warn": 60, "kill": 80, "dead": 140}
    assert doc["stalls"] == [] and doc["failover"] == {"min_s": 120, "max_s": 160, "boot_limit_s": 300}
    text = run_hectl(["storage", "check"], env=domain.env)
    assert text.returncode == 0 and text.stdout.startswith(f"storage localfs at {domain.root}: OK\n")
    assert "kills the engine VM after 80 s" in text.stdout and "starts elsewhere after 120-160 s" in text.stdout


def test_missing_lease_files_fail_with_the_fix(domain: Domain) -> None:
    code, doc = check(domain.env)
    assert code == 2 and doc["status"] == FAIL
    lease = findings(doc)["lockspace"]
    assert lease["severity"] == FAIL and "missing" in lease["what"] and lease["why"] and lease["fix"].startswith("hectl deploy")
    text = run_hectl(["storage", "check"], env=domain.env).stdout
    assert "[FAIL] " in text and "why: sanlock keeps" in text and "fix: hectl deploy" in text


def test_a_truncated_metadata_file_fails_and_its_fix_command_repairs_it(domain: Domain) -> None:
    add_lease_files(domain)
    metadata = domain.root / "ha" / "metadata"
    os.truncate(metadata, 4096 * 10)
    code, doc = check(domain.env)
    size = findings(doc)["metadata-size"]
    assert code == 2 and size["severity"] == FAIL and "40960 bytes" in size["what"]
    subprocess.run(shlex.split(size["fix"].split("   ")[0]), check=True)  # the exact command the finding gives
    assert check(domain.env)[0] == 0


def test_a_directory_that_is_not_deployed_fails(tmp_path: Path, domain: Domain) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    domain.config.write_text(domain.config.read_text().replace(f"path = {domain.root}", f"path = {empty}"))
    code, doc = check(domain.env)
    assert code == 2 and findings(doc)["deployed"]["severity"] == FAIL and findings(doc)["deployed"]["fix"] == "hectl deploy"


def test_unreachable_storage_exits_4_with_a_finding(tmp_path: Path, domain: Domain) -> None:
    domain.config.write_text(domain.config.read_text().replace(f"path = {domain.root}", f"path = {tmp_path / 'gone'}"))
    code, doc = check(domain.env)
    assert code == 4 and doc["status"] == "unreachable" and doc["code"] == 4
    assert findings(doc)["reachable"]["severity"] == FAIL and "does not exist" in findings(doc)["reachable"]["what"]
    res = run_hectl(["storage", "check"], env=domain.env)
    assert res.returncode == 4 and ": UNREACHABLE\n" in res.stdout


def install_stall_plugin(site: Path) -> None:
    """The test plugin as an installed distribution: its module and a dist-info with the entry point."""
    site.mkdir()
    (site / "hectl_stall.py").write_text((REPO / "tests" / "data" / "stall_plugin" / "hectl_stall.py").read_text())
    info = site / "hectl_stall-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: hectl-stall\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[hectl]\nstall = hectl_stall\n")


@pytest.fixture
def stall_env(tmp_path: Path, domain: Domain) -> tuple[dict[str, str], Domain, Path]:
    add_lease_files(domain)
    install_stall_plugin(tmp_path / "site")
    flag = tmp_path / "mounted"
    text = domain.config.read_text().replace("type = localfs\n", f"type = stall\nflag = {flag}\nstall = 0\n")
    domain.config.write_text(text)
    return dict(domain.env, PYTHONPATH=str(tmp_path / "site")), domain, flag


@pytest.mark.parametrize(("stall", "code", "severity"), [(30, 0, OK), (60, 1, WARN), (80, 2, FAIL)])
def test_a_plugin_backends_stall_is_weighed(
    stall_env: tuple[dict[str, str], Domain, Path], stall: int, code: int, severity: str
) -> None:
    env, domain, _ = stall_env
    domain.config.write_text(domain.config.read_text().replace("stall = 0\n", f"stall = {stall}\n"))
    got, doc = check(env)
    assert got == code, doc
    fix = "set [storage] stall = 30"
    assert doc["stalls"] == [{"layer": "test layer", "seconds": stall, "source": "[storage] stall", "fix": fix}]
    f = findings(doc)["stall:test layer"]
    assert f["severity"] == severity and doc["status"] == severity
    assert f["fix"] == (fix if severity != OK else "")  # the backend's own command
    assert findings(doc)["lockspace"]["severity"] == OK  # the localfs checks it inherits ran too


def test_connect_and_disconnect_are_idempotent_and_say_what_they_did(stall_env: tuple[dict[str, str], Domain, Path]) -> None:
    env, _, flag = stall_env

    def run(action: str) -> dict[str, object]:
        res = run_hectl(["storage", action, "--json"], env=env)
        assert res.returncode == 0, res.stderr
        return json.loads(res.stdout)  # type: ignore[no-any-return]

    assert run("connect")["changed"] is True and flag.exists()
    again = run("connect")
    assert again["changed"] is False and again["connected"] is True and again["action"] == "connect"
    assert run("disconnect")["changed"] is True and not flag.exists()
    assert run("disconnect") == {**again, "action": "disconnect", "connected": False}
    text = run_hectl(["storage", "connect"], env=env)
    assert text.returncode == 0 and text.stdout.startswith("connected stall at ")


def test_connect_to_a_missing_localfs_directory_exits_4(tmp_path: Path, domain: Domain) -> None:
    domain.config.write_text(domain.config.read_text().replace(f"path = {domain.root}", f"path = {tmp_path / 'gone'}"))
    res = run_hectl(["storage", "connect"], env=domain.env)
    assert res.returncode == 4 and "does not exist" in res.stderr
    ok = run_hectl(["storage", "disconnect"], env=domain.env)
    assert ok.returncode == 0 and "nothing to do" in ok.stdout
