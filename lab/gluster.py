"""A real glusterd and a replica-3 volume for tests (GlusterFS 10.3, measured in components/glusterfs.md).

glusterd runs in the foreground (``-N``) in a private mount namespace where
``/var/lib/glusterd``, ``/run`` and ``/var/log/glusterfs`` are bind mounts of
directories under one temporary base: the host's package state is never
touched, and teardown is "kill by pid, remove the base". The gluster CLI
reaches it through ``nsenter`` into that namespace. Networking is the host's:
glusterd listens on 24007, the three bricks of the volume sit on brick host
127.0.0.2 (glusterd refuses 127.0.0.1/localhost; any other 127/8 address is
itself), created with ``force`` (several bricks of one replica set on one host).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import xml.etree.ElementTree as ET
from pathlib import Path

from lab.sanlock import alive, wait_gone

HOST = "127.0.0.2"
PORT = 24007


def missing(pool: bool = False) -> str:
    """Why a real glusterd (``pool``: a pool of three in network namespaces) cannot run here ('' when it can)."""
    for tool in ("glusterd", "gluster", "glusterfs", "unshare", "nsenter", "ip"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed (scripts/install.sh installs glusterfs-server, glusterfs-client)"
    if not os.path.isdir("/var/lib/glusterd/groups"):
        return "/var/lib/glusterd/groups is missing (package glusterfs-server)"
    if pool:
        return ""  # each glusterd of a pool has a network namespace of its own
    with socket.socket() as s:
        if s.connect_ex((HOST, PORT)) == 0:
            return f"port {PORT} is taken (another glusterd runs on this host)"
    return ""


class GlusterError(RuntimeError):
    pass


class Glusterd:
    """One glusterd in its own mount namespace (and network namespace ``netns``, if given), state under ``base``."""

    def __init__(self, base: Path, netns: str = "", host: str = HOST) -> None:
        self.base = base
        self.netns = netns
        self.host = host  # the address its bricks are on
        self.proc: subprocess.Popen[bytes] | None = None
        self.mounts: list[Path] = []

    @property
    def pid(self) -> int:
        return self.proc.pid if self.proc else 0

    def start(self, timeout: float = 30.0) -> None:
        lib, run, log = self.base / "lib", self.base / "run", self.base / "log"
        for d in (run, log, self.base / "bricks"):
            d.mkdir(parents=True, exist_ok=True)
        lib.mkdir(exist_ok=True)
        for sub in ("groups", "hooks"):
            if not (lib / sub).exists():  # started again (a lab host powered on): its state is kept
                shutil.copytree(f"/var/lib/glusterd/{sub}", lib / sub, symlinks=True)
        script = (
            'mount --bind "$1" /var/lib/glusterd && mount --bind "$2" /run && mount --bind "$3" /var/log/glusterfs'
            ' && exec glusterd -N -l "$3/glusterd.log"'
        )
        argv = ["unshare", "-m", "--propagation", "private", "sh", "-c", script, "sh", str(lib), str(run), str(log)]
        self.proc = subprocess.Popen(
            ["ip", "netns", "exec", self.netns, *argv] if self.netns else argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise GlusterError(f"glusterd exited with {self.proc.returncode} (log: {log}/glusterd.log)")
            if self.cli("pool", "list", check=False).returncode == 0:
                return
            if time.monotonic() > deadline:
                raise GlusterError("glusterd did not answer in time")
            time.sleep(0.1)

    def cli(self, *args: str, check: bool = True, timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
        """The gluster CLI, as seen from inside glusterd's namespace."""
        log = f"--log-file={self.base / 'log' / 'cli.log'}"  # also before the namespace's bind mounts are up
        argv = ["nsenter", "-t", str(self.pid), "-m", *(["-n"] if self.netns else []), "gluster", "--mode=script", log, *args]
        done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
        if check and done.returncode != 0:
            raise GlusterError(f"gluster {' '.join(args)}: {done.stdout.strip()} {done.stderr.strip()}")
        return done

    def xml(self, *args: str) -> ET.Element:
        """``gluster ... --xml``; it exits 0 even on failure, so ``opRet`` decides."""
        root = ET.fromstring(self.cli(*args, "--xml").stdout)
        if root.findtext("opRet") not in (None, "0"):
            raise GlusterError(f"gluster {' '.join(args)}: {root.findtext('opErrstr')}")
        return root

    def service_pids(self) -> list[int]:
        """Bricks and self-heal daemons, from their pid files (they double-fork away from glusterd)."""
        pids = []
        for pidfile in (self.base / "run" / "gluster").rglob("*.pid"):
            with contextlib.suppress(ValueError, OSError):
                pids.append(int(pidfile.read_text().split()[0]))
        return pids

    def stop(self) -> None:
        """Lab mounts, then glusterd (it would react to brick deaths), then bricks and shd; SIGKILL after 5 s."""
        for mnt in self.mounts:
            subprocess.run(["umount", "-l", str(mnt)], capture_output=True, timeout=30)
        self.mounts.clear()
        pids = [self.pid] if self.proc else []
        pids += self.service_pids()
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
        for pid in pids:
            if not wait_gone(pid, 5.0):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
                wait_gone(pid, 5.0)
        if self.proc:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(5.0)
        self.proc = None


class Volume:
    """A replica-3 volume: three bricks on this host's glusterd, or (``pool``) one on each glusterd of a pool."""

    def __init__(self, glusterd: Glusterd, name: str, pool: list[Glusterd] | None = None) -> None:
        self.glusterd = glusterd
        self.name = name
        members = pool or [glusterd] * 3
        self.hosts = [g.host for g in members]
        self.bricks = [g.base / "bricks" / f"{name}-b{i}" for i, g in enumerate(members, 1)]

    @property
    def connection(self) -> str:
        return f"{self.glusterd.host}:/{self.name}"

    def create(self, virt: bool = True, owner: tuple[int, int] | None = None, ping_timeout: int = 10) -> None:
        for brick in self.bricks:
            brick.mkdir(parents=True, exist_ok=True)
        g = self.glusterd
        g.cli(
            "volume",
            "create",
            self.name,
            "replica",
            "3",
            *(f"{h}:{b}" for h, b in zip(self.hosts, self.bricks, strict=True)),
            "force",
        )
        if virt:
            g.cli("volume", "set", self.name, "group", "virt")
        if owner:
            g.cli("volume", "set", self.name, "storage.owner-uid", str(owner[0]))
            g.cli("volume", "set", self.name, "storage.owner-gid", str(owner[1]))
        g.cli("volume", "set", self.name, "network.ping-timeout", str(ping_timeout))  # after the group (it sets 20)
        g.cli("volume", "start", self.name)
        self.wait_bricks(3)

    def brick_pids(self) -> list[int]:
        """Pid of each brick in order (-1 while offline), from ``volume status --xml``."""
        nodes = self.glusterd.xml("volume", "status", self.name).iter("node")
        by_path = {n.findtext("path"): int(n.findtext("pid") or -1) for n in nodes}
        return [by_path.get(str(b), -1) for b in self.bricks]

    def wait_bricks(self, online: int, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while sum(pid > 0 and alive(pid) for pid in self.brick_pids()) != online:
            if time.monotonic() > deadline:
                raise GlusterError(f"volume {self.name}: not {online} bricks online: {self.brick_pids()}")
            time.sleep(0.1)

    def kill_brick(self, index: int) -> None:
        """SIGKILL one brick and wait until it has left /proc: glusterd takes a zombie (PID 1 reaps lazily
        here) for a running brick and would not restart it."""
        pid = self.brick_pids()[index]
        if pid > 0:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            deadline = time.monotonic() + 20.0
            while os.path.exists(f"/proc/{pid}") and time.monotonic() < deadline:
                time.sleep(0.05)

    def mount(self) -> Path:
        """The lab's own FUSE mount of the volume (for inspecting and clearing it), unmounted by ``stop()``."""
        mnt = self.glusterd.base / "mnt" / self.name
        if mnt not in self.glusterd.mounts:
            mnt.mkdir(parents=True, exist_ok=True)
            log = self.glusterd.base / "log" / f"lab-mnt-{self.name}.log"
            argv = [
                "glusterfs",
                f"--volfile-server={self.glusterd.host}",
                f"--volfile-id={self.name}",
                f"--log-file={log}",
                str(mnt),
            ]
            subprocess.run(argv, check=True, timeout=30)
            self.glusterd.mounts.append(mnt)
        return mnt

    def clear(self) -> None:
        """Remove everything in the volume (a fresh, empty domain root)."""
        mnt = self.mount()
        for entry in mnt.iterdir():
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()

    def restart_bricks(self) -> None:
        for pid in self.brick_pids():  # a brick killed by someone else: wait for it to leave /proc too
            deadline = time.monotonic() + 20.0
            while pid > 0 and not alive(pid) and os.path.exists(f"/proc/{pid}") and time.monotonic() < deadline:
                time.sleep(0.05)
        self.glusterd.cli("volume", "start", self.name, "force")
        self.wait_bricks(3)
        for mnt in self.glusterd.mounts:  # FUSE clients find restarted bricks (new ports) within a few seconds
            wait_usable(mnt)


def wait_usable(path: Path, timeout: float = 30.0) -> None:
    """Wait until a FUSE-mounted directory answers again (ENOTCONN while the client lacks quorum)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            os.listdir(path)
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


@contextlib.contextmanager
def running(prefix: str = "hectl-gluster-"):  # type: ignore[no-untyped-def]
    """A started glusterd (yielded); everything stopped and removed afterwards, also on failure."""
    base = Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))
    base.chmod(0o755)
    glusterd = Glusterd(base)
    try:
        glusterd.start()
        yield glusterd
    finally:
        glusterd.stop()
        shutil.rmtree(base, ignore_errors=True)


class Pool:
    """Three glusterd, each in a network namespace of its own on one bridge (a switch namespace), peered into
    one trusted pool: the seeds' layout, where a replica-3 volume has one brick per host. Addresses: a random /28
    of TEST-NET-3 (203.0.113.0/24, lab/net.py), nodes .1-.3; this namespace reaches them through a veth (.14), so
    hectl's FUSE client and libgfapi run here."""

    def __init__(self, base: Path) -> None:
        from lab.net import Segment

        self.base = base
        self.segment = Segment("hg", "203.0.113.")
        self.nodes = [Glusterd(base / f"n{i}", self.segment.netns(i), self.segment.address(i)) for i in (1, 2, 3)]

    def start(self, timeout: float = 60.0) -> None:
        self.segment.up(len(self.nodes))
        for g in self.nodes:
            g.base.mkdir(parents=True, exist_ok=True)
            g.start(timeout)
        first = self.nodes[0]
        for g in self.nodes[1:]:
            first.cli("peer", "probe", g.host)
        deadline = time.monotonic() + timeout
        while first.cli("pool", "list").stdout.count("Connected") < len(self.nodes):
            if time.monotonic() > deadline:
                raise GlusterError(f"the pool did not connect: {first.cli('pool', 'list').stdout}")
            time.sleep(0.2)

    def volume(self, name: str) -> Volume:
        return Volume(self.nodes[0], name, self.nodes)

    def close(self) -> None:
        for g in self.nodes:
            g.stop()
        self.segment.down()
        shutil.rmtree(self.base, ignore_errors=True)

    def leftovers(self) -> list[str]:
        left = self.segment.leftovers()
        left += [f"glusterd {g.pid}" for g in self.nodes if g.pid and alive(g.pid)]
        return left + ([f"dir {self.base}"] if self.base.exists() else [])


def pool() -> Pool:
    """A started pool of three glusterd (the caller closes it)."""
    from lab.net import workdir

    p = Pool(workdir("hectl-glpool-"))
    try:
        p.start()
    except BaseException:
        p.close()
        raise
    return p
