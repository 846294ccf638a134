"""The lab's engine appliance booted by a private libvirtd whose sanlock lock driver uses a lab sanlock daemon.

TCG guest (the host's KVM cannot boot a stock kernel), direct kernel boot, SLIRP port forward to the guest's :80.
One sanlock daemon and one libvirtd for the whole module.
"""

from __future__ import annotations

import contextlib
import dataclasses
import http.client
import shutil
import socket
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING
from xml.sax.saxutils import escape

import pytest

from lab import appliance, libvirtd
from lab import sanlock as lab_sanlock

if TYPE_CHECKING:
    import libvirt

HEALTH_PATH = "/ovirt-engine/services/health"
BOOT_TIMEOUT = 60.0

DOMAIN_XML = """\
<domain type='qemu' xmlns:qemu='http://libvirt.org/schemas/domain/qemu/1.0'>
  <name>{name}</name>
  <memory unit='MiB'>256</memory>
  <vcpu>1</vcpu>
  <os>
    <type arch='x86_64' machine='q35'>hvm</type>
    <kernel>{kernel}</kernel>
    <initrd>{initrd}</initrd>
    <cmdline>{cmdline}</cmdline>
  </os>
  <features><acpi/></features>
  <on_poweroff>destroy</on_poweroff>
  <on_reboot>destroy</on_reboot>
  <on_crash>destroy</on_crash>
  <devices>
    <emulator>/usr/bin/qemu-system-x86_64</emulator>
    <serial type='pty'><log file='{console}' append='off'/><target port='0'/></serial>
    <console type='pty'><target type='serial' port='0'/></console>
    <controller type='usb' model='none'/>
    <memballoon model='none'/>
  </devices>
  <qemu:commandline>
    <qemu:arg value='-netdev'/>
    <qemu:arg value='user,id=hostnet9,restrict=on,hostfwd=tcp:127.0.0.1:{port}-:80'/>
    <qemu:arg value='-device'/>
    <qemu:arg value='virtio-net-pci,netdev=hostnet9,bus=pcie.0,addr=0x10'/>
  </qemu:commandline>
</domain>
"""


@dataclasses.dataclass
class Lab:
    appliance: appliance.Appliance
    sanlock: lab_sanlock.Daemon
    libvirtd: libvirtd.Libvirtd
    conn: libvirt.virConnect
    base: Path


@dataclasses.dataclass
class Engine:
    """A running appliance domain."""

    dom: libvirt.virDomain
    name: str
    port: int
    console: Path

    def health(self) -> tuple[int, str] | None:
        """(HTTP status, body) of the health page, None while nothing answers."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
        try:
            conn.request("GET", HEALTH_PATH)
            resp = conn.getresponse()
            return resp.status, resp.read().decode()
        except (OSError, http.client.HTTPException):
            return None
        finally:
            conn.close()

    def console_text(self) -> str:
        return self.console.read_text(errors="replace") if self.console.exists() else ""

    def active(self) -> bool:
        try:
            return bool(self.dom.isActive())
        except Exception:  # libvirtError: the transient domain is gone
            return False

    def wait_console(self, text: str, timeout: float = 10.0) -> str:
        """The console log once it contains ``text`` (virtlogd writes it a little after the guest prints)."""
        deadline = time.monotonic() + timeout
        while text not in (console := self.console_text()) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert text in console, f"{text!r} not on {self.name}'s console:\n{console[-3000:]}"
        return console

    def wait_healthy(self, timeout: float = BOOT_TIMEOUT) -> tuple[int, str]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if (answer := self.health()) is not None:
                return answer
            assert self.active(), f"{self.name} stopped while booting; console:\n{self.console_text()[-3000:]}"
            time.sleep(0.2)
        raise AssertionError(f"{self.name}: no health page after {timeout:.0f} s; console:\n{self.console_text()[-3000:]}")

    def wait_gone(self, timeout: float = BOOT_TIMEOUT) -> float:
        start = time.monotonic()
        while self.active():
            assert time.monotonic() - start < timeout, f"{self.name} still running; console:\n{self.console_text()[-3000:]}"
            time.sleep(0.05)
        return time.monotonic() - start


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    reason = libvirtd.missing() or appliance.missing()
    if reason:
        pytest.skip(reason)
    built = appliance.build()
    base = lab_sanlock.shared_dir("hectl-virt-")
    with contextlib.ExitStack() as stack:
        stack.callback(shutil.rmtree, base, True)
        daemon = lab_sanlock.Daemon(base / "sanlock", lab_sanlock.build_shim(base))
        stack.callback(daemon.stop)
        daemon.start()
        virt = stack.enter_context(libvirtd.Libvirtd(daemon.run_dir))
        conn = virt.connect()
        stack.callback(conn.close)
        yield Lab(built, daemon, virt, conn, base)


def boot(lab: Lab, label: str, extra_cmdline: str = "") -> Engine:
    name = f"hectl-lab-{label}-{uuid.uuid4().hex[:8]}"  # unique: guest cgroups are machine/<name>.libvirt-qemu
    port, console = free_port(), lab.base / f"{name}.console"
    xml = DOMAIN_XML.format(
        name=name,
        kernel=escape(str(lab.appliance.kernel)),
        initrd=escape(str(lab.appliance.initrd)),
        cmdline=escape(f"{lab.appliance.cmdline} {extra_cmdline}".strip()),
        console=escape(str(console), {"'": "&apos;"}),
        port=port,
    )
    return Engine(lab.conn.createXML(xml, 0), name, port, console)


@pytest.fixture(scope="module")
def engines(lab: Lab) -> dict[str, Engine]:
    """Two appliances booted side by side (one TCG guest per host CPU): "up" takes DHCP; "down" has a static
    address (10.0.2.15, SLIRP's port-forward target) and an unhealthy engine. The lab's libvirtd.stop() destroys them."""
    booted = {
        "up": boot(lab, "up"),
        "down": boot(lab, "down", "hectl.health=down hectl.ip=10.0.2.15/24 hectl.gw=10.0.2.2"),
    }
    for eng in booted.values():
        eng.wait_healthy()
    return booted


def test_cache_key_follows_guest_files(tmp_path: Path) -> None:
    guest = tmp_path / "guest"
    shutil.copytree(appliance.GUEST, guest)
    before = appliance.guest_digest(guest)
    assert before == appliance.guest_digest()
    (guest / "rcS").write_text((guest / "rcS").read_text() + "# edited\n")
    after = appliance.guest_digest(guest)
    assert after != before
    key = appliance.cache_key("linux-image-6.1.0-56-amd64_6.1.192-2", "1:1.35.0-4", before)
    assert key == appliance.cache_key("linux-image-6.1.0-56-amd64_6.1.192-2", "1:1.35.0-4", before)
    assert key != appliance.cache_key("linux-image-6.1.0-56-amd64_6.1.192-2", "1:1.35.0-4", after)
    assert key != appliance.cache_key("linux-image-6.1.0-57-amd64_6.1.193-1", "1:1.35.0-4", before)
    assert "/" not in key and ":" not in key


@pytest.mark.integration
def test_appliance_cache_is_reused(lab: Lab) -> None:
    again = appliance.build()
    assert again.build_seconds == 0
    assert (again.kernel, again.initrd, again.cmdline) == (lab.appliance.kernel, lab.appliance.initrd, lab.appliance.cmdline)
    for path in (again.kernel, again.initrd):
        assert path.stat().st_mode & 0o004, f"{path} must be readable by libvirt-qemu"


@pytest.mark.integration
@pytest.mark.slow
def test_engine_serves_health_page(lab: Lab, engines: dict[str, Engine]) -> None:
    engine = engines["up"]
    assert engine.health() == (200, appliance.HEALTH_BODY)
    engine.wait_console("appliance: HEALTHY")
    # libvirt registered QEMU with *our* sanlock daemon: SANLOCK_RUN_DIR in libvirtd's environment is honoured
    status = lab.sanlock.client("status").stdout.splitlines()
    assert any(line.startswith("p ") and line.endswith(f" {engine.name}") for line in status), status


@pytest.mark.integration
@pytest.mark.slow
def test_health_down_from_kernel_cmdline(engines: dict[str, Engine]) -> None:
    engine = engines["down"]
    assert engine.health() == (200, "DB Down!Welcome to Health Status!")
    console = engine.wait_console("appliance: UNHEALTHY")
    assert "appliance: eth0 10.0.2.15/24" in console


@pytest.mark.integration
@pytest.mark.slow
def test_acpi_power_button_powers_guest_off(engines: dict[str, Engine]) -> None:
    import libvirt

    engine = engines["up"]
    engine.dom.shutdownFlags(libvirt.VIR_DOMAIN_SHUTDOWN_ACPI_POWER_BTN)
    engine.wait_gone()
    console = engine.wait_console("reboot: Power down")
    assert "appliance: ACPI power button pressed -> poweroff" in console
