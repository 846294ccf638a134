"""Network segments for lab servers: a switch namespace with a bridge, node namespaces on it, and a veth from the
root namespace, all on a random /28 of a TEST-NET range; plus the temporary base directory every lab uses."""

from __future__ import annotations

import os
import random
import shutil
import subprocess
import tempfile
from pathlib import Path


def workdir(prefix: str) -> Path:
    """A fresh directory under /tmp that daemons running as other users (sanlock, QEMU) can reach."""
    path = Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))
    path.chmod(0o755)
    return path


def _ip(*argv: str) -> None:
    subprocess.run(["ip", *argv], check=True, capture_output=True, timeout=30)


def netns_etc(ns: str) -> Path:
    """Where ``ip netns exec`` finds the files it shows as /etc/<file> in namespace ``ns``."""
    return Path("/etc/netns") / ns


class Segment:
    """One L2 segment ``<net>.<base+i>/28``: nodes get .1, .2, ..., this namespace .14 (``here``)."""

    def __init__(self, prefix: str, net: str) -> None:
        self.tag = f"{prefix}{os.getpid() % 10000}{random.randrange(100)}"
        self.base = 16 * random.randrange(1, 15)
        self.net = net  # e.g. "203.0.113."
        self.here = self.address(14)
        self.names: list[str] = []

    def address(self, n: int) -> str:
        return f"{self.net}{self.base + n}"

    def netns(self, n: int) -> str:
        return f"{self.tag}n{n}"

    def up(self, nodes: int, bridge: bool = False, names: dict[str, str] | None = None) -> list[str]:
        """The switch, ``nodes`` node namespaces (``netns(1..)`` with ``address(1..)`` on their eth0, or with
        ``bridge`` on a bridge ``br0`` enslaving eth0, where a host's VMs join the segment) and the veth from
        here; returns the node namespaces' names. ``names`` (name -> address) is each node's /etc/hosts: what
        ``ip netns exec`` shows its programs (from /etc/netns/<namespace>/hosts), the lab's DNS."""
        sw = f"{self.tag}sw"
        self.names.append(sw)
        _ip("netns", "add", sw)
        _ip("-n", sw, "link", "set", "lo", "up")
        _ip("-n", sw, "link", "add", "br0", "type", "bridge")
        _ip("-n", sw, "link", "set", "br0", "up")
        for n in range(1, nodes + 1):
            ns = self.netns(n)
            self.names.append(ns)
            _ip("netns", "add", ns)
            _ip("link", "add", f"{ns}h", "netns", sw, "type", "veth", "peer", "name", "eth0", "netns", ns)
            _ip("-n", sw, "link", "set", f"{ns}h", "master", "br0", "up")
            _ip("-n", ns, "link", "set", "lo", "up")
            _ip("-n", ns, "link", "set", "eth0", "up")
            dev = "eth0"
            if bridge:
                dev = "br0"
                _ip("-n", ns, "link", "add", "br0", "type", "bridge")
                _ip("-n", ns, "link", "set", "eth0", "master", "br0")
                _ip("-n", ns, "link", "set", "br0", "up")
            _ip("-n", ns, "addr", "add", f"{self.address(n)}/28", "dev", dev)
            if names:
                etc = netns_etc(ns)
                etc.mkdir(parents=True, exist_ok=True)
                lines = ["127.0.0.1 localhost", "::1 localhost"] + [f"{a} {name}" for name, a in names.items()]
                (etc / "hosts").write_text("\n".join(lines) + "\n")
        _ip("link", "add", f"{self.tag}r", "type", "veth", "peer", "name", f"{self.tag}rh", "netns", sw)
        _ip("-n", sw, "link", "set", f"{self.tag}rh", "master", "br0", "up")
        _ip("addr", "add", f"{self.here}/28", "dev", f"{self.tag}r")
        _ip("link", "set", f"{self.tag}r", "up")
        return self.names[1:]

    def attach(self, ns: str, addresses: list[str]) -> None:
        """Namespace ``ns`` on the segment with ``addresses`` (a management network: the lab's BMCs)."""
        sw = f"{self.tag}sw"
        self.names.append(ns)
        _ip("netns", "add", ns)
        _ip("-n", ns, "link", "set", "lo", "up")
        _ip("link", "add", f"{ns}h", "netns", sw, "type", "veth", "peer", "name", "eth0", "netns", ns)
        _ip("-n", sw, "link", "set", f"{ns}h", "master", "br0", "up")
        for address in addresses:
            _ip("-n", ns, "addr", "add", f"{address}/28", "dev", "eth0")
        _ip("-n", ns, "link", "set", "eth0", "up")

    def pids(self) -> list[int]:
        """Every process in the node namespaces."""
        out = []
        for ns in self.names[1:]:
            res = subprocess.run(["ip", "netns", "pids", ns], capture_output=True, text=True, timeout=30)
            out += [int(p) for p in res.stdout.split()]
        return out

    def down(self) -> None:
        subprocess.run(["ip", "link", "del", f"{self.tag}r"], capture_output=True, timeout=30)
        for ns in self.names:
            subprocess.run(["ip", "netns", "del", ns], capture_output=True, timeout=30)
            shutil.rmtree(netns_etc(ns), ignore_errors=True)

    def leftovers(self) -> list[str]:
        names = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
        left = [f"netns {n}" for n in names.split() if n.startswith(self.tag)]
        return left + ([f"link {self.tag}r"] if os.path.exists(f"/sys/class/net/{self.tag}r") else [])
