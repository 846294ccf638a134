"""A real CTDB cluster fronting NFS for tests: three ctdbd nodes, each with NFS-Ganesha, in network namespaces.

Recipe and measurements: shared/reference/components/ctdb-nfs.md. Each node is a network namespace on one
bridge (in a switch namespace) plus a private mount namespace (a ``sleep`` process holds both: the
"sandbox") where ``/etc/ctdb``, ``/var/lib/ctdb``, ``/run/ctdb`` and ``/var/log/ctdb`` are bind mounts of the
node's directory and ``/run`` is a tmpfs; ctdbd and Ganesha run in it. The three Ganeshas export one directory
of this machine (standing in for the shared storage); CTDB moves one public address between the nodes. The root
namespace reaches the /28 through a veth into the switch (lab/net.py), so hectl runs here and talks to a node's
ctdbd through its socket. Addresses: a random /28 of TEST-NET-2 (198.51.100.0/24): nodes .1-.3, public .10, this
side .14. Tunables: KeepaliveInterval 1, KeepaliveLimit 3, RerecoveryTimeout 2, NoIPFailback 1 (measured: all
nodes OK about 14 s after start). ``close`` leaves nothing: processes, namespaces, links, files.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

from lab import nfs
from lab.net import Segment, workdir
from lab.sanlock import alive

NODES = 3
SANDBOX = (
    'mount -t tmpfs hctdb-run /run && mkdir -p /run/ctdb /run/ganesha && mount --bind "$1/etc" /etc/ctdb && '
    'mount --bind "$1/var" /var/lib/ctdb && mount --bind "$1/run" /run/ctdb && mount --bind "$1/log" /var/log/ctdb && '
    "exec sleep infinity"
)


def missing() -> str:
    for tool in ("ctdbd", "ctdb", "nsenter", "unshare", "ip"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed (scripts/install.sh installs ctdb)"
    if not os.path.exists("/usr/libexec/ctdb/ctdb_mutex_fcntl_helper"):
        return "ctdb's fcntl lock helper is missing (package ctdb)"
    return nfs.missing()


def _run(*argv: str) -> None:
    subprocess.run(list(argv), check=True, capture_output=True, timeout=30)


class Cluster:
    def __init__(self, base: Path, pseudo: str = "/hectl") -> None:
        self.base = base
        self.pseudo = pseudo
        self.segment = Segment("hc", "198.51.100.")
        self.ips = [self.segment.address(i) for i in range(1, NODES + 1)]
        self.public = self.segment.address(10)
        self.export = base / f"{self.public}:{pseudo.strip('/')}"  # where hectl's mount_base = base would put it
        self.holders: list[int] = []
        self.procs: list[subprocess.Popen[bytes]] = []

    @property
    def connection(self) -> str:
        return f"{self.public}:{self.pseudo}"

    def node_dir(self, i: int) -> Path:
        return self.base / f"n{i + 1}"

    def netns(self, i: int) -> str:
        return self.segment.netns(i + 1)

    def socket(self, i: int = 0) -> str:
        return str(self.node_dir(i) / "run" / "ctdbd.socket")

    def ctdb(self, i: int, *args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
        env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "CTDB_SOCKET": self.socket(i)}
        return subprocess.run(["ctdb", *args], env=env, capture_output=True, text=True, timeout=timeout)

    def _in(self, i: int, *argv: str) -> list[str]:
        return ["nsenter", "-t", str(self.holders[i]), "-m", "-n", *argv]

    def start(self, timeout: float = 60.0) -> None:
        self.segment.up(NODES)
        self.export.mkdir(parents=True, exist_ok=True)
        (self.base / "shared").mkdir(exist_ok=True)
        for i in range(NODES):
            self._node_files(i)
        for i in range(NODES):
            holder = subprocess.Popen(
                ["ip", "netns", "exec", self.netns(i), "unshare", "-m", "--propagation", "private", "sh", "-c", SANDBOX, "sh",
                 str(self.node_dir(i))], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                start_new_session=True,
            )  # fmt: skip
            self.procs.append(holder)
            self.holders.append(holder.pid)
        time.sleep(0.3)  # the sandboxes' mounts
        for i in range(NODES):
            for script in ("00.ctdb", "01.reclock", "05.system", "10.interface"):
                subprocess.run(
                    self._in(i, "ctdb", "event", "script", "enable", "legacy", script), capture_output=True, timeout=30
                )
            d = self.node_dir(i)
            with open(d / "log" / "ctdbd.stderr", "ab") as err:
                self.procs.append(subprocess.Popen(self._in(i, "/usr/sbin/ctdbd", "-i"), stdin=subprocess.DEVNULL, stdout=err,
                                                   stderr=err, start_new_session=True))  # fmt: skip
            with open(d / "ganesha.out", "ab") as out:
                argv = ["ganesha.nfsd", "-F", "-f", str(d / "ganesha.conf"), "-L", str(d / "ganesha.log"), "-p", str(d / "g.pid")]
                self.procs.append(subprocess.Popen(self._in(i, *argv), stdin=subprocess.DEVNULL, stdout=out, stderr=out,
                                                   start_new_session=True))  # fmt: skip
        deadline = time.monotonic() + timeout
        while not self.healthy():
            if time.monotonic() > deadline:
                raise RuntimeError(f"CTDB not healthy within {timeout:g} s: {self.ctdb(0, 'status').stdout}")
            time.sleep(0.25)

    def _node_files(self, i: int) -> None:
        d = self.node_dir(i)
        for sub in ("etc", "var/volatile", "var/persistent", "var/state", "run", "log", "recovery"):
            (d / sub).mkdir(parents=True, exist_ok=True)
        shutil.copytree("/etc/ctdb", d / "etc", symlinks=True, dirs_exist_ok=True)
        for script in (d / "etc" / "events" / "legacy").glob("*.script"):
            script.unlink()
        (d / "etc" / "nodes").write_text("".join(f"{ip}\n" for ip in self.ips))
        (d / "etc" / "public_addresses").write_text(f"{self.public}/28 eth0\n")
        (d / "etc" / "ctdb.conf").write_text(
            "[logging]\n\tlocation = file:/var/log/ctdb/log.ctdb\n\tlog level = NOTICE\n"
            f"[cluster]\n\tcluster lock = !/usr/libexec/ctdb/ctdb_mutex_fcntl_helper {self.base}/shared/cluster.lock\n"
            "[legacy]\n\trealtime scheduling = false\n"
        )
        (d / "etc" / "ctdb.tunables").write_text("KeepaliveInterval=1\nKeepaliveLimit=3\nRerecoveryTimeout=2\nNoIPFailback=1\n")
        (d / "ganesha.conf").write_text(nfs.config(d, self.export, self.pseudo, 5))

    def holder(self, i: int = 0) -> int:
        """The pnn holding the public address, as node ``i`` sees it (-1: nobody)."""
        for line in self.ctdb(i, "-X", "ip").stdout.splitlines()[1:]:
            fields = line.strip("|").split("|")
            if len(fields) >= 2 and fields[0] == self.public:
                return int(fields[1])
        return -1

    def healthy(self) -> bool:
        """Every node OK, the address held, and its NFS server answering from here."""
        res = self.ctdb(0, "-X", "status")
        rows = [line.strip("|").split("|") for line in res.stdout.splitlines()[1:] if line.startswith("|")]
        if res.returncode != 0 or len(rows) != NODES or any(set(r[2:10]) != {"0"} for r in rows):
            return False
        if self.holder() < 0:
            return False
        with contextlib.suppress(OSError), socket.create_connection((self.public, nfs.PORT), timeout=0.5):
            return True
        return False

    def close(self) -> None:
        """Stop everything, remove the namespaces, the veth and the files."""
        for pid in self.segment.pids():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and any(alive(p) for p in self.segment.pids() if p not in self.holders):
            time.sleep(0.1)
        for pid in self.segment.pids():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        for proc in self.procs:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(10)
        self.segment.down()
        shutil.rmtree(self.base, ignore_errors=True)


def leftovers(cluster: Cluster) -> list[str]:
    left = cluster.segment.leftovers()
    left += [f"process {p.pid}" for p in cluster.procs if alive(p.pid) and p.poll() is None]
    if cluster.base.exists():
        left.append(f"dir {cluster.base}")
    return left


def running() -> Cluster:
    """A started, healthy cluster (the caller closes it)."""
    cluster = Cluster(workdir("hectl-ctdb-"))
    try:
        cluster.start()
    except BaseException:
        cluster.close()
        raise
    return cluster
