"""Engine VM spec and its libvirt XML: validation, on-storage encoding, snapshots, libvirt's own schema."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from hectl.errors import ConfigError, NotDeployed, StorageError
from hectl.storage.backend import DomainPaths
from hectl.vm import spec as vmspec
from hectl.vm import xml as vmxml

SNAPSHOTS = Path(__file__).parent / "data" / "vmxml"
UUID = "8c8c2f0e-1d7e-4a39-9a3b-2a4f5e6d7c8b"
PATHS = DomainPaths.under("/srv/hectl-domain")
APPLIANCE = {"uuid": UUID, "name": "engine", "memory_mib": "256", "vcpus": "1", "kernel": "vmlinuz", "initrd": "initrd.img"}

CASES = {
    "user-net-kernel-tcg": (dict(APPLIANCE, cmdline="console=ttyS0 panic=-1", host_port="28080"), "tcg"),
    "bridge-disk-kvm-spice": (
        {"uuid": UUID, "disk": "engine.qcow2", "network": "bridge", "bridge": "ovirtmgmt", "graphics": "spice"},
        "kvm",
    ),
    "no-net-no-graphics-raw": (
        {"uuid": UUID, "disk": "engine.img", "disk_format": "raw", "network": "none", "graphics": "none"},
        "tcg",
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_domain_xml_matches_snapshot(case: str) -> None:
    values, accel = CASES[case]
    xml = vmxml.domain_xml(
        vmspec.build(values), PATHS, accel=accel, console_log="/var/lib/hectl/engine-console.log", console_lock="LOCKED"
    )
    snap = SNAPSHOTS / f"{case}.xml"
    if os.environ.get("HECTL_UPDATE_GOLDEN") == "1":
        snap.write_text(xml)
    assert xml == snap.read_text()


@pytest.mark.parametrize("case", sorted(CASES))
def test_domain_xml_validates_with_libvirts_schema(case: str, tmp_path: Path) -> None:
    if shutil.which("virt-xml-validate") is None:
        pytest.skip("virt-xml-validate is not installed (libvirt-clients)")
    values, accel = CASES[case]
    doc = tmp_path / "domain.xml"
    doc.write_text(
        vmxml.domain_xml(vmspec.build(values), PATHS, accel=accel, console_log="/tmp/console.log", console_lock="LOCKED")
    )
    proc = subprocess.run(["virt-xml-validate", str(doc), "domain"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_hostile_text_is_escaped_not_injected() -> None:
    spec = vmspec.build(dict(APPLIANCE, host_port="1", cmdline="a'b\"c<d>&e"))
    xml = vmxml.domain_xml(spec, DomainPaths.under("/srv/a&b"), accel="tcg", console_log="/tmp/x<y>.log", console_lock="'<&")
    assert "<cmdline>a'b\"c&lt;d&gt;&amp;e</cmdline>" in xml
    assert 'file="/tmp/x&lt;y&gt;.log"' in xml
    assert "/srv/a&amp;b/images/vmlinuz" in xml
    assert 'passwd="\'&lt;&amp;"' in xml


def test_console_password_device_escapes_the_password() -> None:
    device = vmxml.graphics_xml("vnc", "127.0.0.1", 5900, "p'\"<&>", "2026-11-24T10:00:00")
    assert 'passwd="p\'&quot;&lt;&amp;&gt;"' in device
    assert 'passwdValidTo="2026-11-24T10:00:00"' in device


@pytest.mark.parametrize(
    ("key", "value", "why"),
    [
        ("name", "../etc", "letters"),
        ("name", "a b", "letters"),
        ("kernel", "../../etc/shadow", "relative"),
        ("kernel", "/boot/vmlinuz", "relative"),
        ("memory_mib", "12", "64"),
        ("vcpus", "x", "must be an integer from 1 to 512"),
        ("vcpus", "1_0", "must be an integer from 1 to 512"),
        ("bridge", "br0;reboot", "bridge name"),
        ("mac", "52:54:00:AA:bb:cc", "MAC"),
        ("network", "tap", "one of"),
        ("graphics_listen", "0.0.0.0.1", "IP address"),
        ("cmdline", "console=ttyS0\nrm", "printable"),
        ("uuid", "nope", "UUID"),
        ("colour", "red", "unknown key"),
    ],
)
def test_bad_values_are_refused_with_the_reason(key: str, value: str, why: str) -> None:
    with pytest.raises(ValueError, match=why):
        vmspec.parse_value(key, value)


@pytest.mark.parametrize(
    ("values", "why"),
    [
        ({"host_port": "1"}, r"set kernel \(with initrd\) or disk"),
        ({"kernel": "k", "host_port": "1"}, "initrd"),
        ({"disk": "d", "network": "bridge"}, "needs a bridge"),
        ({"disk": "d"}, "host_port"),
    ],
)
def test_inconsistent_specs_are_refused(values: dict[str, str], why: str) -> None:
    with pytest.raises(ConfigError, match=why):
        vmspec.build(values)


def test_mac_is_derived_from_the_uuid_unless_set() -> None:
    spec = vmspec.build(dict(APPLIANCE, host_port="1"))
    assert spec.mac_address == "52:54:00:6d:7c:8b"
    assert spec._replace(mac="52:54:00:01:02:03").mac_address == "52:54:00:01:02:03"


def test_encoding_round_trips_and_detects_corruption() -> None:
    spec = vmspec.build(dict(APPLIANCE, host_port="28080", version=3))
    data = vmspec.encode(spec)
    assert len(data) == vmspec.SPEC_SIZE
    assert vmspec.decode(data, "f") == spec
    assert vmspec.decode(bytes(vmspec.SPEC_SIZE), "f") is None
    tampered = data.replace(b'"memory_mib": 256', b'"memory_mib": 999')
    assert tampered != data
    with pytest.raises(StorageError, match="corrupt"):
        vmspec.decode(tampered, "f")
    with pytest.raises(StorageError, match="corrupt"):
        vmspec.decode(data[:100], "f")


def test_spec_on_a_real_domain(domain) -> None:  # type: ignore[no-untyped-def]
    backend = domain.app().backend()
    with pytest.raises(NotDeployed, match="not defined"):
        vmspec.read(backend, 5)
    first = vmspec.update(backend, dict(APPLIANCE, host_port="28080"), 5)
    assert first.version == 1
    second = vmspec.update(backend, {"memory_mib": "512"}, 5)
    assert (second.version, second.memory_mib, second.uuid) == (2, 512, UUID)
    assert vmspec.read(backend, 5) == second
    with pytest.raises(ConfigError, match="unknown key"):
        vmspec.update(backend, {"colour": "red"}, 5)
    with pytest.raises(ConfigError, match="needs a bridge"):
        vmspec.update(backend, {"network": "bridge"}, 5)
    assert vmspec.read(backend, 5) == second  # refused changes leave the stored spec alone


def test_accelerator_choice(tmp_path: Path) -> None:
    from hectl.vm.hypervisor import choose_accel

    kvm = tmp_path / "kvm"
    kvm.write_text("")
    with_vmx, without = tmp_path / "cpuinfo-vmx", tmp_path / "cpuinfo"
    with_vmx.write_text("processor\t: 0\nflags\t\t: fpu vme vmx sse\n")
    without.write_text("processor\t: 0\nflags\t\t: fpu vme sse\n")
    assert choose_accel("tcg", str(kvm), str(with_vmx)) == ("tcg", "set in [vm] accelerator")
    assert choose_accel("kvm", str(tmp_path / "none"), str(without))[0] == "kvm"
    assert choose_accel("auto", str(kvm), str(with_vmx))[0] == "kvm"
    accel, why = choose_accel("auto", str(kvm), str(without))
    assert accel == "tcg" and "no vmx/svm" in why
    accel, why = choose_accel("auto", str(tmp_path / "none"), str(with_vmx))
    assert accel == "tcg" and "not usable" in why
