"""A real NFS server for tests: NFS-Ganesha 4.3 (FSAL VFS) in a network namespace of its own.

This kernel has no NFS server (and no client): Ganesha serves a directory of
this machine from userspace. It runs in the foreground in a network namespace
on a segment of its own (lab/net.py: a random /28 of TEST-NET-1, 192.0.2.0/24;
the server .1, this namespace .14) and a private mount namespace with a tmpfs on
``/run`` (its own ``/run/ganesha``). NFSv4 only (no rpcbind, no NLM: NFSv4 locks
are in the protocol), no UDP, no dbus, grace skipped (``Graceless``): the
server answers in well under a second. ``freeze``/``thaw`` SIGSTOP/SIGCONT it
(a hung server), ``stop``/``start`` end and restart it; ``close`` leaves
nothing: processes, namespace, veth and files.
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

from lab.net import Segment, workdir
from lab.sanlock import alive, wait_gone

PORT = 2049
CONFIG = """\
NFS_CORE_PARAM {{
    Protocols = 4;
    Enable_NLM = false;
    Enable_RQUOTA = false;
    Enable_UDP = false;{bind}
}}
NFS_KRB5 {{ Active_krb5 = false; }}
NFSV4 {{
    RecoveryBackend = fs;
    RecoveryRoot = "{base}/recovery";
    Graceless = true;
    Lease_Lifetime = {lease};
}}
NFS_LOG {{ Default_Log_Level = EVENT; }}
MDCACHE {{ Dir_Chunk = 0; }}
EXPORT {{
    Attr_Expiration_Time = 0;
    Export_Id = 1; Path = "{export}"; Pseudo = "{pseudo}";
    Access_Type = RW; Squash = No_Root_Squash; Protocols = 4; Transports = TCP; SecType = sys;
    FSAL {{ Name = VFS; }}
}}
"""


def config(base: Path, export: Path, pseudo: str, lease: int, address: str = "") -> str:
    """Ganesha's configuration: NFSv4 over TCP only, no NLM, no grace, no metadata caching (tests change the
    exported directory behind its back), recovery state under ``base``; bound to ``address`` if given."""
    bind = f"\n    Bind_addr = {address};" if address else ""
    return CONFIG.format(bind=bind, base=base, lease=lease, export=export, pseudo=pseudo)


def missing() -> str:
    """Why Ganesha cannot run here ('' when it can)."""
    for tool in ("ganesha.nfsd", "ip", "unshare"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed (scripts/install.sh installs nfs-ganesha, nfs-ganesha-vfs, iproute2)"
    if not os.path.exists("/usr/lib/x86_64-linux-gnu/ganesha/libfsalvfs.so") and not list(
        Path("/usr/lib").glob("*/ganesha/libfsalvfs.so")
    ):
        return "Ganesha's VFS FSAL is not installed (nfs-ganesha-vfs)"
    return ""


class Ganesha:
    """One NFS server exporting a directory of ``base`` as ``pseudo`` at ``address``.

    The directory is ``base/<address>:<pseudo>``: where hectl's nfs backend with ``mount_base = base`` would
    mount the export, so that tests can plant files (links...) in the domain as the server sees them.
    """

    def __init__(self, base: Path, pseudo: str = "/hectl", lease: int = 5) -> None:
        self.base = base
        self.pseudo = pseudo
        self.lease = lease
        self.segment = Segment("hn", "192.0.2.")
        self.address, self.netns = self.segment.address(1), self.segment.netns(1)
        self.export = base / f"{self.address}:{pseudo.strip('/')}"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def connection(self) -> str:
        return f"{self.address}:{self.pseudo}"

    @property
    def pid(self) -> int:
        return self.proc.pid if self.proc else 0

    def setup(self) -> None:
        """The namespace and its link to the root namespace (once)."""
        self.segment.up(1)
        self.export.mkdir(parents=True, exist_ok=True)
        (self.base / "recovery").mkdir(parents=True, exist_ok=True)
        (self.base / "ganesha.conf").write_text(config(self.base, self.export, self.pseudo, self.lease, self.address))

    def start(self, timeout: float = 20.0) -> None:
        script = 'mount -t tmpfs hnfs-run /run && mkdir -p /run/ganesha && exec ganesha.nfsd -F -f "$1" -L "$2" -p "$3"'
        argv = ["ip", "netns", "exec", self.netns, "unshare", "-m", "--propagation", "private", "sh", "-c", script, "sh"]
        argv += [str(self.base / "ganesha.conf"), str(self.base / "ganesha.log"), str(self.base / "ganesha.pid")]
        self.proc = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
        )
        deadline = time.monotonic() + timeout
        while True:
            with contextlib.suppress(OSError), socket.create_connection((self.address, PORT), timeout=0.5):
                return
            if self.proc.poll() is not None:
                raise RuntimeError(f"ganesha.nfsd exited ({self.proc.returncode}): {self.log_tail()}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"ganesha.nfsd did not answer on {self.address}:{PORT}: {self.log_tail()}")
            time.sleep(0.05)

    def log_tail(self) -> str:
        path = self.base / "ganesha.log"
        return path.read_text(errors="replace")[-1500:] if path.exists() else ""

    def freeze(self) -> None:
        os.kill(self.pid, signal.SIGSTOP)

    def thaw(self) -> None:
        os.kill(self.pid, signal.SIGCONT)

    def stop(self) -> None:
        if self.proc is None:
            return
        pid = self.pid
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGCONT)
            os.kill(pid, signal.SIGTERM)
        if not wait_gone(pid, 10):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            wait_gone(pid, 10)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(5)
        self.proc = None

    def close(self) -> None:
        """Stop the server and remove the namespace, the veth and the files."""
        self.stop()
        self.segment.down()
        shutil.rmtree(self.base, ignore_errors=True)


def leftovers(server: Ganesha) -> list[str]:
    """What a closed server left behind (empty when nothing)."""
    left = server.segment.leftovers()
    if server.pid and alive(server.pid):
        left.append(f"process {server.pid}")
    if server.base.exists():
        left.append(f"dir {server.base}")
    return left


def running() -> Ganesha:
    """A started server exporting a fresh directory (the caller closes it)."""
    server = Ganesha(workdir("hectl-nfs-"))
    try:
        server.setup()
        server.start()
    except BaseException:
        server.close()
        raise
    return server
