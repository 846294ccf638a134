"""The engine VM's specification: hectl's own description, shared by every host through the domain.

It lives in the domain's shared-config area (``config/engine-vm.json``) so that
every host builds the same libvirt XML (``hectl.vm.xml``). The file is a fixed
8 KiB region written in one direct write: compact JSON with a CRC32 of its
body, padded with spaces. A torn or foreign file is reported, never half used.
``version`` grows by one on every change; agents publish the version they run
with, which is how an outdated host is told apart (the config penalty).
"""

from __future__ import annotations

import os
import re
import uuid as uuid_mod

from hectl import parse
from hectl.errors import ConfigError, Interrupted, NotDeployed, StorageError
from hectl.frozen import Frozen
from hectl.storage import sealed
from hectl.storage.directio import WriteUncertain

TYPE_CHECKING = False  # typing.TYPE_CHECKING would import typing (see hectl.frozen)
if TYPE_CHECKING:
    from collections.abc import Mapping

    from hectl.storage.backend import StorageBackend

SPEC_FILE = "engine-vm.json"  # in the domain's config/ directory
SPEC_SIZE = 8192

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")
_BRIDGE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,14}$")
_MAC = re.compile(r"^52:54:00(:[0-9a-f]{2}){3}$")
_IMAGE = re.compile(r"^[A-Za-z0-9_.+-][A-Za-z0-9_.+/-]*$")
_CMDLINE_MAX = 512


class EngineSpec(Frozen):
    """What the engine VM is. Image paths are relative to the domain's ``images/`` directory."""

    uuid: str
    name: str = "HostedEngine"
    memory_mib: int = 4096
    vcpus: int = 2
    kernel: str = ""  # direct kernel boot: kernel + initrd (+ cmdline) ...
    initrd: str = ""
    cmdline: str = ""
    disk: str = ""  # ... or a boot disk image
    disk_format: str = "qcow2"  # qcow2 | raw
    seed: str = ""  # a cloud-init NoCloud seed image (read-only CD-ROM)
    network: str = "user"  # user: NAT with a port forward (single host) | bridge | none
    bridge: str = ""  # network = bridge: the host bridge the NIC joins
    mac: str = ""  # default: derived from the uuid
    host_port: int = 0  # network = user: 127.0.0.1:host_port on the host reaches guest_port
    guest_port: int = 80
    graphics: str = "vnc"  # vnc | spice | none
    graphics_listen: str = "127.0.0.1"
    version: int = 0  # grows by one on every change

    @property
    def mac_address(self) -> str:
        if self.mac:
            return self.mac
        raw = uuid_mod.UUID(self.uuid).bytes
        return f"52:54:00:{raw[-3]:02x}:{raw[-2]:02x}:{raw[-1]:02x}"

    def to_dict(self) -> dict[str, object]:
        return dict(self._asdict())


# Keys an admin may set, and how each is parsed (``vm-config set KEY=VALUE``).
def _int_in(low: int, high: int):  # type: ignore[no-untyped-def]
    return lambda text: parse.integer(text, low, high)


def _match(pattern: re.Pattern[str], what: str):  # type: ignore[no-untyped-def]
    def parse(text: str) -> str:
        if text and not pattern.match(text):
            raise ValueError(f"must be {what}")
        return text

    return parse


def _choice(*choices: str):  # type: ignore[no-untyped-def]
    def parse(text: str) -> str:
        if text not in choices:
            raise ValueError(f"must be one of {', '.join(choices)}")
        return text

    return parse


def _image(text: str) -> str:
    if text and (not _IMAGE.match(text) or ".." in text.split("/") or text.startswith("/")):
        raise ValueError("must be a path relative to the domain's images/ directory, without '..'")
    return text


def _cmdline(text: str) -> str:
    if len(text) > _CMDLINE_MAX or any(ord(c) < 32 or ord(c) == 127 for c in text):
        raise ValueError(f"must be printable text of at most {_CMDLINE_MAX} characters")
    return text


def _uuid(text: str) -> str:
    try:
        return str(uuid_mod.UUID(text))
    except ValueError:
        raise ValueError("must be a UUID") from None


def _listen(text: str) -> str:
    import ipaddress

    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        raise ValueError("must be an IP address") from None


# Keys whose value is one of a few words (shell completion offers them).
CHOICES: dict[str, tuple[str, ...]] = {
    "disk_format": ("qcow2", "raw"),
    "network": ("user", "bridge", "none"),
    "graphics": ("vnc", "spice", "none"),
}

FIELDS: dict[str, object] = {
    "uuid": _uuid,
    "name": _match(_NAME, "1..63 letters, digits, '_', '.' or '-'"),
    "memory_mib": _int_in(64, 4 * 1024 * 1024),
    "vcpus": _int_in(1, 512),
    "kernel": _image,
    "initrd": _image,
    "cmdline": _cmdline,
    "disk": _image,
    "disk_format": _choice(*CHOICES["disk_format"]),
    "seed": _image,
    "network": _choice(*CHOICES["network"]),
    "bridge": _match(_BRIDGE, "a bridge name of 1..15 characters"),
    "mac": _match(_MAC, "a MAC address 52:54:00:xx:xx:xx (lower case)"),
    "host_port": _int_in(0, 65535),
    "guest_port": _int_in(1, 65535),
    "graphics": _choice(*CHOICES["graphics"]),
    "graphics_listen": _listen,
}


def parse_value(key: str, text: str) -> object:
    """One admin-given value, checked; ``ValueError`` says what is wrong."""
    if key not in FIELDS:
        raise ValueError(f"unknown key '{key}' (known: {', '.join(FIELDS)})")
    return FIELDS[key](str(text).strip())  # type: ignore[operator]


def build(values: Mapping[str, object]) -> EngineSpec:
    """A checked spec from plain values (``ConfigError`` naming the first bad key)."""
    parsed: dict[str, object] = {}
    for key, value in values.items():
        if key == "version":
            parsed[key] = int(value)  # type: ignore[call-overload]
            continue
        try:
            parsed[key] = parse_value(key, str(value))
        except ValueError as exc:
            raise ConfigError(f"engine VM spec: {key} = {value!r}: {exc}") from None
    parsed.setdefault("uuid", str(uuid_mod.uuid4()))
    spec = EngineSpec(**parsed)  # type: ignore[arg-type]
    problems = check(spec)
    if problems:
        raise ConfigError(f"engine VM spec: {problems[0]}")
    return spec


def check(spec: EngineSpec) -> list[str]:
    """Whole-spec consistency problems (empty when the spec can be started)."""
    problems = []
    if not spec.kernel and not spec.disk:
        problems.append("set kernel (with initrd) or disk, or both (kernel boot with a disk)")
    if spec.kernel and not spec.initrd:
        problems.append("kernel needs an initrd")
    if spec.network == "bridge" and not spec.bridge:
        problems.append("network = bridge needs a bridge")
    if spec.network == "user" and not spec.host_port:
        problems.append("network = user needs host_port (the host port forwarded to guest_port)")
    return problems


def encode(spec: EngineSpec) -> bytes:
    try:
        return sealed.seal("spec", spec.to_dict(), SPEC_SIZE)
    except sealed.Corrupt as exc:
        raise ConfigError(f"engine VM spec is {exc}") from None


def decode(data: bytes, where: str) -> EngineSpec | None:
    """The spec in ``data``; ``None`` when nothing was ever written (all zeros or empty)."""
    try:
        body = sealed.unseal("spec", data)
        return None if body is None else build(body)
    except (ValueError, KeyError, TypeError, AttributeError, ConfigError) as exc:
        raise StorageError(
            f"{where}: the engine VM spec is corrupt ({exc})", hint="rewrite it with 'hectl vm-config set' (global maintenance)"
        ) from None


def path(backend: StorageBackend) -> str:
    return os.path.join(backend.paths().config_dir, SPEC_FILE)


def read(backend: StorageBackend, timeout: float) -> EngineSpec:
    """The domain's engine VM spec; ``NotDeployed`` when it was never defined."""
    where = path(backend)
    try:
        spec = decode(backend.read(where, 0, SPEC_SIZE, timeout).data, where)
    except StorageError as exc:
        if exc.errno != 2:  # ENOENT
            raise
        spec = None
    if spec is None:
        raise NotDeployed(
            "the engine VM is not defined on this domain", hint="define it with 'hectl vm-config set KEY=VALUE ...'"
        )
    return spec


def update(backend: StorageBackend, changes: Mapping[str, str], timeout: float) -> EngineSpec:
    """Apply ``changes`` (key -> text) to the stored spec (or to the defaults when none is stored) and store it.

    The read-modify-write holds the domain's update lock and the new file
    replaces the old one by rename: concurrent updates queue (each gets the
    next version), and readers see the old spec or the new, never a mix.
    """
    bad = [key for key in changes if key not in FIELDS]
    if bad:
        raise ConfigError(f"engine VM spec: unknown key '{bad[0]}' (known: {', '.join(FIELDS)})")
    where = path(backend)

    def change(old: bytes) -> bytes:
        current = decode(old, where)
        base: dict[str, object] = current.to_dict() if current else {}
        return encode(build({**base, **changes, "version": (current.version if current else 0) + 1}))

    try:
        result = backend.update(where, 0, SPEC_SIZE, change, timeout, replace=True)
    except Interrupted as exc:
        exc.message = "the engine VM spec " + (
            "may or may not have been changed (outcome unknown)" if exc.write_started else "is unchanged"
        )
        exc.hint = "check with 'hectl vm-config show', and repeat the command if needed" if exc.write_started else None
        raise
    except StorageError as exc:
        if isinstance(exc, WriteUncertain):
            exc.message = f"the engine VM spec may or may not have been changed (outcome unknown): {exc.message}"
            exc.hint = "check with 'hectl vm-config show', and repeat the command if needed"
        else:
            exc.message = f"the engine VM spec is unchanged: {exc.message}"
        raise
    spec = decode(change(result.data), where)  # raises what the helper's run raised (a bad value, a corrupt spec)
    if spec is None or not result.written:
        raise StorageError(f"{where}: the engine VM spec was not written")
    return spec
