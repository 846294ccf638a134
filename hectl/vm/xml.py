"""libvirt domain XML for the engine VM: pure functions of the spec and this host's settings.

Every host builds the same document from the shared spec; only local paths (the
domain's mount point, the console log) and the accelerator differ. The
document carries the engine lease (sanlock resource ``engine`` in lockspace
``hectl``) so that QEMU cannot run on two hosts at once, and a ``<metadata>``
element with the spec version it was built from. Text goes through
ElementTree, which escapes it; values were validated by ``hectl.vm.spec``.
"""

from __future__ import annotations

import os
import secrets
import xml.etree.ElementTree as ET

from hectl.storage.backend import ENGINE_LEASE_NAME, LOCKSPACE_NAME

TYPE_CHECKING = False  # typing.TYPE_CHECKING would import typing (see hectl.frozen)
if TYPE_CHECKING:
    from hectl.storage.backend import DomainPaths
    from hectl.vm.spec import EngineSpec

QEMU_NS = "http://libvirt.org/schemas/domain/qemu/1.0"
HECTL_NS = "https://hectl.dev/xmlns/engine/1"
USER_NET_ID = "hectlnet0"

ET.register_namespace("qemu", QEMU_NS)
ET.register_namespace("hectl", HECTL_NS)


def _sub(parent: ET.Element, tag: str, text: str | None = None, **attrs: str) -> ET.Element:
    el = ET.SubElement(parent, tag, attrs)
    if text is not None:
        el.text = text
    return el


def domain_xml(spec: EngineSpec, paths: DomainPaths, *, accel: str, console_log: str, console_lock: str) -> str:
    """The libvirt domain document (``accel``: ``kvm`` or ``tcg``).

    ``console_lock`` is a throw-away password, expired from the start: the
    graphical console refuses everyone until ``add-console-password`` sets a
    real one (QEMU accepts runtime passwords only on a console started with one).
    """
    dom = ET.Element("domain", {"type": "kvm" if accel == "kvm" else "qemu"})
    _sub(dom, "name", spec.name)
    _sub(dom, "uuid", spec.uuid)
    meta = _sub(dom, "metadata")
    _sub(meta, f"{{{HECTL_NS}}}engine", version=str(spec.version))
    _sub(dom, "memory", str(spec.memory_mib), unit="MiB")
    _sub(dom, "vcpu", str(spec.vcpus))
    os_el = _sub(dom, "os")
    _sub(os_el, "type", "hvm", arch="x86_64", machine="q35")
    image = lambda rel: os.path.join(paths.images_dir, rel)  # noqa: E731
    if spec.kernel:
        _sub(os_el, "kernel", image(spec.kernel))
        _sub(os_el, "initrd", image(spec.initrd))
        if spec.cmdline:
            _sub(os_el, "cmdline", spec.cmdline)
    else:
        _sub(os_el, "boot", dev="hd")
    features = _sub(dom, "features")
    _sub(features, "acpi")
    if accel == "kvm":
        _sub(dom, "cpu", mode="host-passthrough")
    # The agent decides about restarts: QEMU never restarts the guest by itself.
    for event in ("on_poweroff", "on_reboot", "on_crash"):
        _sub(dom, event, "destroy")

    dev = _sub(dom, "devices")
    if spec.disk:
        disk = _sub(dev, "disk", type="file", device="disk")
        _sub(disk, "driver", name="qemu", type=spec.disk_format, cache="none")
        _sub(disk, "source", file=image(spec.disk))
        _sub(disk, "target", dev="vda", bus="virtio")
    if spec.seed:  # cloud-init's NoCloud seed, read-only
        cdrom = _sub(dev, "disk", type="file", device="cdrom")
        _sub(cdrom, "driver", name="qemu", type="raw")
        _sub(cdrom, "source", file=image(spec.seed))
        _sub(cdrom, "target", dev="sda", bus="sata")
        _sub(cdrom, "readonly")
    lease = _sub(dev, "lease")
    _sub(lease, "lockspace", LOCKSPACE_NAME)
    _sub(lease, "key", ENGINE_LEASE_NAME)
    _sub(lease, "target", path=paths.engine_lease, offset="0")
    if spec.network == "bridge":
        nic = _sub(dev, "interface", type="bridge")
        _sub(nic, "mac", address=spec.mac_address)
        _sub(nic, "source", bridge=spec.bridge)
        _sub(nic, "model", type="virtio")
    serial = _sub(dev, "serial", type="pty")
    _sub(serial, "log", file=console_log, append="on")
    _sub(serial, "target", port="0")
    console = _sub(dev, "console", type="pty")
    _sub(console, "target", type="serial", port="0")
    if spec.graphics != "none":
        gfx = _sub(
            dev,
            "graphics",
            type=spec.graphics,
            port="-1",
            autoport="yes",
            listen=spec.graphics_listen,
            passwd=console_lock,
            passwdValidTo="1970-01-01T00:00:01",
        )
        _sub(gfx, "listen", type="address", address=spec.graphics_listen)
        video = _sub(dev, "video")
        _sub(video, "model", type="vga")
    _sub(dev, "memballoon", model="none")

    if spec.network == "user":
        # libvirt 9.0 has no port forwarding for user networking: QEMU's own SLIRP netdev, loopback only.
        cmd = _sub(dom, f"{{{QEMU_NS}}}commandline")
        forward = f"tcp:127.0.0.1:{spec.host_port}-:{spec.guest_port}"
        for value in (
            "-netdev",
            f"user,id={USER_NET_ID},restrict=on,hostfwd={forward}",
            "-device",
            f"virtio-net-pci,netdev={USER_NET_ID},mac={spec.mac_address},bus=pcie.0,addr=0x10",
        ):
            _sub(cmd, f"{{{QEMU_NS}}}arg", value=value)
    ET.indent(dom)
    return ET.tostring(dom, encoding="unicode") + "\n"


def console_lock() -> str:
    """A random, unguessable console password (used expired: see ``domain_xml``)."""
    return secrets.token_urlsafe(6)  # 8 characters: libvirt refuses longer VNC passwords


def graphics_xml(graphics: str, listen: str, port: int, password: str, valid_to: str) -> str:
    """A ``<graphics>`` device update that sets a console password valid until ``valid_to`` (UTC, ISO 8601)."""
    gfx = ET.Element(
        "graphics",
        {"type": graphics, "port": str(port), "autoport": "yes", "listen": listen, "passwd": password, "passwdValidTo": valid_to},
    )
    _sub(gfx, "listen", type="address", address=listen)
    return ET.tostring(gfx, encoding="unicode")
