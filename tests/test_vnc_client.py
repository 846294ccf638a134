"""tests/vnc.py, the VNC-auth client, proven against a real QEMU VNC server (no libvirt): password set and expired over QMP."""

from __future__ import annotations

import contextlib
import json
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from vnc import des_key, vnc_auth

pytestmark = pytest.mark.integration

PASSWORD = "s3cret-Pw"  # 9 characters: VNC uses only the first 8


class QEMU:
    """A ``qemu-system-x86_64 -machine none`` serving VNC on 127.0.0.1, driven over QMP."""

    def __init__(self, tmp_path: Path, password: bool) -> None:
        binary = shutil.which("qemu-system-x86_64")
        if binary is None:
            pytest.skip("qemu-system-x86_64 is not installed (Debian package: qemu-system-x86)")
        sock_path = tmp_path / "qmp.sock"
        vnc = "127.0.0.1:40,to=99" + (",password=on" if password else "")  # to=: QEMU takes the first free display
        self.argv = [binary, "-machine", "none", "-nodefaults", "-display", "none", "-vnc", vnc]
        self.argv += ["-qmp", f"unix:{sock_path},server=on,wait=off"]
        self.log = tmp_path / "qemu.log"
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
        self.qmp = self._connect(sock_path)
        self.qmp_file = self.qmp.makefile("rwb")
        assert "QMP" in json.loads(self.qmp_file.readline())
        self.command("qmp_capabilities")
        self.port = int(self.command("query-vnc")["service"])

    def _connect(self, path: Path) -> socket.socket:
        deadline = time.monotonic() + 15
        while True:
            sock = socket.socket(socket.AF_UNIX)
            sock.settimeout(10)
            try:
                sock.connect(str(path))
                return sock
            except OSError:
                sock.close()
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(f"QEMU's QMP socket never came up: {self.log.read_text()}") from None
                time.sleep(0.05)

    def command(self, name: str, **arguments: object) -> dict:  # type: ignore[type-arg]
        self.qmp_file.write(json.dumps({"execute": name, "arguments": arguments}).encode() + b"\n")
        self.qmp_file.flush()
        while True:
            reply = json.loads(self.qmp_file.readline())
            if "event" in reply:  # VNC_CONNECTED and friends
                continue
            assert "return" in reply, reply
            return reply["return"]  # type: ignore[no-any-return]

    def auth(self, password: str) -> tuple[bool, str]:
        return vnc_auth("127.0.0.1", self.port, password)

    def stop(self) -> None:
        with contextlib.suppress(OSError):
            self.qmp.close()
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)


@pytest.fixture
def qemu(tmp_path: Path) -> Iterator[QEMU]:
    vm = QEMU(tmp_path, password=True)
    yield vm
    vm.stop()


def test_des_key_reverses_the_bits_of_each_byte() -> None:
    assert des_key("\x01ab") == b"\x80\x86\x46\0\0\0\0\0"
    assert des_key("123456789") == des_key("12345678")


def test_password_set_over_qmp_is_accepted_wrong_refused_expired_refused(qemu: QEMU) -> None:
    assert qemu.auth(PASSWORD) == (False, "Authentication failed")  # no password set yet: QEMU lets no one in
    qemu.command("set_password", protocol="vnc", password=PASSWORD)
    assert PASSWORD not in Path(f"/proc/{qemu.proc.pid}/cmdline").read_text()
    assert qemu.auth(PASSWORD) == (True, "OK")
    assert qemu.auth(PASSWORD[:8]) == (True, "OK")  # the protocol's 8-byte key
    assert qemu.auth("wrong-pw") == (False, "Authentication failed")
    assert qemu.auth("") == (False, "Authentication failed")

    qemu.command("expire_password", protocol="vnc", time="+2")
    time.sleep(3.2)  # QEMU counts whole seconds
    assert qemu.auth(PASSWORD) == (False, "Authentication failed")
    qemu.command("expire_password", protocol="vnc", time="never")  # the control: it was the expiry
    assert qemu.auth(PASSWORD) == (True, "OK")


def test_a_server_without_vnc_authentication_is_not_a_success(tmp_path: Path) -> None:
    vm = QEMU(tmp_path, password=False)
    try:
        ok, reason = vm.auth(PASSWORD)
    finally:
        vm.stop()
    assert not ok and reason == "VNC authentication not offered (security types [1])"
