"""Volume checks from the gluster CLI's XML: real samples (components/glusterfs-xml) and the real volume."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from hectl.backends.glusterfs import checks
from hectl.backends.glusterfs.backend import GlusterFSBackend
from hectl.clock import SystemClock
from hectl.errors import ConfigError, StorageError
from hectl.storage import doctor
from hectl.storage.domain import init_domain
from lab import gluster
from tests.conftest import Domain, run_hectl

DATA = Path(__file__).resolve().parent.parent / "data" / "gluster"


def sample(name: str):  # type: ignore[no-untyped-def]
    return checks.parse((DATA / name).read_text(), name)


def by_check(found: list[doctor.Finding]) -> dict[str, str]:
    assert all(f.severity in doctor.SEVERITIES and f.what for f in found)
    assert all(f.why and f.fix for f in found if f.severity != doctor.OK)  # what, why, how to fix
    return {f.check: f.severity for f in found}


def test_virt_volume_on_three_hosts_is_all_ok() -> None:
    found = by_check(checks.findings(sample("volume-info-virt-3nodes.xml"), sample("volume-status.xml")))
    assert found["virt-options"] == found["replica"] == found["brick-hosts"] == found["bricks-online"] == "ok"
    assert found["sharding"] == found["quorum"] == "ok"


def test_default_volume_fails_the_virt_options_and_warns_on_one_host() -> None:
    found = checks.findings(sample("volume-info-default.xml"), sample("volume-status.xml"), owner=(36, 36))
    severities = by_check(found)
    assert severities["virt-options"] == "fail" and severities["brick-hosts"] == "warn"
    assert severities["sharding"] == "warn" and severities["owner"] == "fail"
    virt = next(f for f in found if f.check == "virt-options")
    assert "group virt" in virt.fix and "strict-o-direct = (default)" in virt.what


def test_bricks_offline_and_ping_timeout_against_sanlock() -> None:
    info = sample("volume-info-virt.xml")
    assert by_check(checks.findings(info, sample("volume-status-one-brick-down.xml")))["bricks-online"] == "warn"
    assert by_check(checks.findings(info, sample("volume-status-two-bricks-down.xml")))["bricks-online"] == "fail"
    assert checks.stall(info).seconds == 15.0  # ping-timeout 10 + up to 5 s
    assert checks.stall(sample("volume-info-default.xml")).seconds == 47.0  # the default 42


def test_cli_errors_come_from_opret_not_the_exit_code() -> None:
    with pytest.raises(StorageError, match="Volume nosuchvol does not exist"):
        sample("error-volume-status-nosuchvol.xml")


def test_real_volumes_with_and_without_the_virt_group(glusterd: gluster.Glusterd, gluster_volume: gluster.Volume) -> None:
    def findings(volume: str) -> dict[str, str]:
        backend = GlusterFSBackend({"connection": f"{gluster.HOST}:/{volume}"}, SystemClock())
        return by_check(backend.volume_findings(10.0, owner=(0, 0)))

    good = findings(gluster_volume.name)
    assert good["volume-started"] == good["replica"] == good["bricks-online"] == good["virt-options"] == "ok"
    assert good["owner"] == "ok" and good["brick-hosts"] == "warn"  # one lab host
    plain = gluster.Volume(glusterd, "plain")
    plain.create(virt=False, ping_timeout=42)
    bad = findings("plain")
    assert bad["virt-options"] == "fail" and bad["owner"] == "fail"
    glusterd.cli("volume", "stop", "plain")
    assert findings("plain")["volume-started"] == "fail"
    with pytest.raises(StorageError, match="does not exist"):
        findings("nosuchvolume")
    with pytest.raises(StorageError):  # no glusterd there (TEST-NET-1): unreachable or timed out, never hung
        GlusterFSBackend({"connection": "192.0.2.1:/x"}, SystemClock()).volume_findings(1.0)


def test_storage_check_fails_a_volume_without_the_virt_options_and_passes_one_with_them(
    gdomain: Domain, glusterd: gluster.Glusterd, tmp_path: Path
) -> None:
    gdomain.app().backend(connect=False).disconnect(5.0)
    done = run_hectl(["storage", "check", "--json"], env=gdomain.env)
    report = json.loads(done.stdout)
    found = {f["check"]: f["severity"] for f in report["findings"]}
    assert found["virt-options"] == "ok" and found["bricks-online"] == "ok", done.stdout
    assert found["brick-hosts"] == "warn" and report["status"] == "warn" and done.returncode == 1  # one lab host
    assert [s["layer"] for s in report["stalls"]] == ["gluster"] and report["stalls"][0]["seconds"] == 15
    assert not gdomain.app().backend(connect=False).is_connected()  # read through gfapi: nothing mounted

    novirt = gluster.Volume(glusterd, "novirt")
    novirt.create(virt=False)
    init = gdomain.config.read_text().replace(":/hectl\n", ":/novirt\n")
    config = tmp_path / "novirt.conf"
    config.write_text(init)
    env = dict(gdomain.env, HECTL_CONFIG=str(config))
    dom = Domain(gdomain.root, config, gdomain.state_dir, 1)
    init_domain(dom.app().backend(), dom.app().clock, 5.0)
    done = run_hectl(["storage", "check", "--json"], env=env)
    report = json.loads(done.stdout)
    found = {f["check"]: f["severity"] for f in report["findings"]}
    assert found["virt-options"] == "fail" and report["status"] == "fail" and done.returncode == 2, done.stdout
    assert report["stalls"][0]["seconds"] == 15  # ping-timeout 10 set by the lab
    dom.app().backend(connect=False).disconnect(10.0)


def test_heal_backlog_from_the_summary_and_from_info() -> None:
    assert checks.heal(sample("heal-info-summary.xml"), "v").severity == doctor.OK
    pending = checks.heal(sample("heal-info-pending.xml"), "v")
    assert pending.severity == doctor.WARN and "8 entries waiting to heal" in pending.what
    doc = ET.fromstring(
        "<cliOutput><healInfo><bricks><brick><name>h:/b1</name><numberOfEntriesInHealPending>0</numberOfEntriesInHealPending>"
        "<numberOfEntriesInSplitBrain>2</numberOfEntriesInSplitBrain></brick></bricks></healInfo><opRet>0</opRet></cliOutput>"
    )
    split = checks.heal(doc, "v")
    assert split.severity == doctor.FAIL and "2 entries in split brain" in split.what and "split-brain" in split.fix


def test_replica_1_fails_unless_explicitly_allowed() -> None:
    info = sample("volume-info-virt.xml")
    count = info.find(".//replicaCount")
    assert count is not None
    count.text = "1"
    assert by_check(checks.findings(info, None))["replica"] == doctor.FAIL
    assert by_check(checks.findings(info, None, allow_replica1=True))["replica"] == doctor.WARN
    with pytest.raises(ConfigError, match="allow_replica1"):
        GlusterFSBackend({"connection": "h:/v", "allow_replica1": "maybe"}, SystemClock())
