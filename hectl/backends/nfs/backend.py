"""A storage domain on an NFS export: the kernel client where there is one, libnfs (userspace) everywhere.

Two ways in, one layout. Where the kernel has an NFS client, ``connect()``
mounts ``server:/export`` at ``<mount_base>/<server>:<export path>`` (default
``/run/hectl/mnt``; ``hard``, the configured version and options; idempotent)
and everything goes through the mount with hectl's bounded direct I/O: sanlock
and QEMU need that path. Without a mount (no kernel client, as on this
project's test machines, or simply not mounted yet) every domain file is read
and written through libnfs in a bounded child (``libnfs.py``), so the short
commands (``vm-status``, ``metrics``, ``storage check``, ``set-maintenance``)
never need a mount and never hang. Files handed on by path (the sanlock
lockspace, the engine's images) need the kernel mount: without it they are
refused with one message.
"""

from __future__ import annotations

import os

from hectl.backends.nfs import options as nopts
from hectl.errors import ConfigError, StorageError
from hectl.storage import directio
from hectl.storage.backend import StorageBackend

TYPE_CHECKING = False  # typing.TYPE_CHECKING would import typing (see hectl.frozen)
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from hectl.backends.nfs.libnfs import Target
    from hectl.clock import Clock
    from hectl.storage.doctor import Finding, Stall

MOUNT_BASE = "/run/hectl/mnt"
PORT = 2049
FSTYPES = ("nfs", "nfs4")
DEFAULT_TIMEO = 60.0  # seconds before the kernel client retransmits over TCP (timeo=600 deciseconds)


def kernel_client() -> bool:
    """Whether this kernel can mount NFS (/proc/filesystems; no module loading here)."""
    try:
        with open("/proc/filesystems") as f:
            return any(line.split()[-1] in FSTYPES for line in f if line.strip())
    except OSError:
        return False


class NFSBackend(StorageBackend):
    """``[storage] type = nfs``, ``connection = server:/export``, optional ``nfs_version``, ``mount_options``,
    ``mount_base``."""

    name = "nfs"
    KEYS = frozenset({"connection", "nfs_version", "mount_options", "mount_base"})

    def __init__(self, options: Mapping[str, str], clock: Clock) -> None:
        super().__init__(options, clock)
        unknown = sorted(set(options) - self.KEYS)
        if unknown:
            raise ConfigError(
                f"[storage] unknown key '{unknown[0]}' for type {self.name} (known: {', '.join(sorted(self.KEYS))})"
            )
        self.conn = nopts.parse(self.options, MOUNT_BASE)
        self._root = os.path.join(self.conn.mount_base, f"{self.conn.server}:{self.conn.export.strip('/').replace('/', '_')}")
        self._probed = False  # connect() found the export answering through libnfs (no mount)

    def root(self) -> str:
        return self._root

    @property
    def connection(self) -> str:
        return f"{self.conn.server}:{self.conn.export}"

    def describe(self) -> dict[str, object]:
        return {
            "type": self.name,
            "root": self._root,
            "server": self.conn.server,
            "export": self.conn.export,
            "nfs_version": self.conn.version,
            "access": "kernel" if self.mounted() else "libnfs",
        }

    def _mount_entry(self) -> list[str] | None:
        """The /proc/self/mounts fields of a kernel NFS mount at the root (no storage I/O), None when not mounted."""
        with open("/proc/self/mounts") as f:
            for line in f:
                fields = line.split()
                if len(fields) > 3 and fields[2] in FSTYPES and fields[1].replace("\\040", " ") == self._root:
                    return fields
        return None

    def mounted(self) -> bool:
        return self._mount_entry() is not None

    def mount_options_in_use(self) -> dict[str, str]:
        """The kernel mount's options when mounted (timeo, retrans, vers as the kernel reports them), else the
        configured ones."""
        entry = self._mount_entry()
        if entry is not None:
            return dict(opt.partition("=")[::2] for opt in entry[3].split(","))
        configured = dict(self.conn.mount_options)
        if self.conn.version != "auto":
            configured["vers"] = self.conn.version
        return configured

    def is_connected(self) -> bool:
        return self.mounted() or self._probed

    def connect(self, timeout: float) -> None:
        """Mount with the kernel client where there is one; otherwise make sure the export answers through libnfs."""
        if kernel_client():
            self._mount(timeout)
            return
        from hectl.backends.nfs import libnfs

        libnfs.probe(self._target(timeout), timeout)
        self._probed = True

    def _mount(self, timeout: float) -> None:
        if not self.mounted():
            os.makedirs(self._root, mode=0o755, exist_ok=True)
            opts = ["hard", *(f"{k}={v}" for k, v in self.conn.mount_options)]
            if self.conn.version != "auto":
                opts.append(f"vers={self.conn.version}")
            argv = ["mount", "-t", "nfs", "-o", ",".join(opts), "--", f"{self.conn.server}:{self.conn.export}", self._root]
            directio.run_command(argv, timeout, f"mount of {self.connection}")
            if not self.mounted():
                raise StorageError(f"NFS export {self.connection} did not mount at {self._root}")
        if directio.path_kind(self._root, timeout) != "dir":
            raise StorageError(f"NFS export {self.connection} is mounted at {self._root} but does not answer")

    def disconnect(self, timeout: float) -> None:
        self._probed = False
        if self.mounted():
            directio.run_command(["umount", "--", self._root], timeout, "unmount")

    def _target(self, timeout: float) -> Target:
        from hectl.backends.nfs import libnfs

        version = libnfs.NFS_V3 if self.conn.version == "3" else libnfs.NFS_V4  # libnfs speaks 4.0 for 4.x
        return libnfs.Target(self.conn.address, self.conn.export, version, timeout, self._root, self.clock)

    def _rel(self, path: str) -> str:
        rel = os.path.relpath(path, self._root)
        if rel == ".." or rel.startswith("../") or os.path.isabs(rel):
            raise StorageError(f"{path} is outside the storage domain at {self._root}")
        return "/" + rel if rel != "." else "/"  # libnfs paths are relative to the mounted export

    # Every domain file operation: through the mount when mounted, else through libnfs.

    def read(self, path: str, offset: int, length: int, timeout: float) -> directio.IOResult:
        if self.mounted():
            return super().read(path, offset, length, timeout)
        from hectl.backends.nfs import libnfs

        return libnfs.read(self._target(timeout), self._rel(path), offset, length, timeout)

    def write(self, path: str, offset: int, data: bytes, timeout: float) -> directio.IOResult:
        if self.mounted():
            return super().write(path, offset, data, timeout)
        from hectl.backends.nfs import libnfs

        return libnfs.write(self._target(timeout), self._rel(path), offset, data, timeout)

    def update(
        self,
        path: str,
        offset: int,
        length: int,
        change: Callable[[bytes], bytes | None],
        timeout: float,
        *,
        replace: bool = False,
    ) -> directio.IOResult:
        """Always through libnfs, mounted or not: every hectl NFS client takes the same update lock (libnfs.py)."""
        from hectl.backends.nfs import libnfs

        return libnfs.update(self._target(timeout), self._rel(path), offset, length, change, timeout, replace=replace)

    def make_dirs(self, path: str, timeout: float) -> None:
        if self.mounted():
            return super().make_dirs(path, timeout)
        from hectl.backends.nfs import libnfs

        return libnfs.make_dirs(self._target(timeout), self._rel(path), timeout)

    def create(self, path: str, data: bytes, size: int, timeout: float) -> None:
        if self.mounted():
            return super().create(path, data, size, timeout)
        from hectl.backends.nfs import libnfs

        return libnfs.create(self._target(timeout), self._rel(path), data, size, timeout)

    def check_file(self, path: str, timeout: float) -> None:
        """A file handed on by path (to sanlock, to QEMU) needs the kernel mount."""
        if self.mounted():
            return super().check_file(path, timeout)
        from hectl.backends.nfs import libnfs

        libnfs.check_file(self._target(timeout), self._rel(path), timeout)  # names a link or a missing file first
        raise StorageError(
            f"{path} must be reachable by path (sanlock and QEMU open it), which needs the NFS export mounted "
            f"by the kernel client at {self._root}",
            hint="this host has no kernel NFS client: it can run the short commands, not the agent or the engine"
            if not kernel_client()
            else "run 'hectl storage connect'",
        )

    def checks(self, timeout: float, io_timeout: float) -> list[Finding]:
        from hectl.storage.doctor import OK, WARN, Finding

        found = [
            Finding("nfs-server", OK, f"{self.conn.server} answers and exports {self.conn.export} (NFS {self.conn.version})")
        ]
        if self.conn.version == "3":
            found.append(
                Finding(
                    "nfs-version",
                    WARN,
                    "NFSv3: locks go through NLM and a server restart loses them silently",
                    why="NFSv4 keeps locks and their recovery in the protocol (and libnfs locks only over NFSv4)",
                    fix="set [storage] nfs_version = 4 (or auto)",
                )
            )
        opts = self.mount_options_in_use()
        timeo = float(opts.get("timeo", DEFAULT_TIMEO * 10)) / 10
        found.append(
            Finding(
                "nfs-timeouts",
                OK if timeo < 6 * io_timeout else WARN,
                f"timeo {timeo:g} s, retrans {opts.get('retrans', '2')}"
                + (f", vers {opts['vers']}" if "vers" in opts else "")
                + ("" if self.mounted() else " (configured; not mounted)"),
                why="a hard mount resends an unanswered request after timeo; a server failover also waits for the "
                "server's NFSv4 lease and grace periods (its own settings) before new opens and locks work",
                fix="set [storage] mount_options = timeo=100,retrans=3 and mount again",
            )
        )
        if not self.mounted():
            why = "sanlock's lockspace and the engine's disk are opened by path: the agent needs the kernel mount"
            found.append(
                Finding(
                    "nfs-mount",
                    WARN,
                    f"not mounted at {self._root}: the domain is read and written through libnfs",
                    why=why,
                    fix="hectl storage connect (on a host with a kernel NFS client)",
                )
            )
        return found

    def stall_budget(self, timeout: float) -> list[Stall]:
        """A request the server does not answer is sent again after ``timeo`` (a hard mount retries forever):
        one lost request stalls I/O that long. (A restarted server's grace period, 90 s by default, blocks new
        opens and locks, not the renewals of a lease already held.)"""
        from hectl.storage.doctor import Stall

        timeo = dict(self.conn.mount_options).get("timeo")
        seconds = int(timeo) / 10 if timeo else DEFAULT_TIMEO
        source = f"mount option timeo={timeo}" if timeo else "the kernel client's default timeo over TCP (60 s)"
        fix = "set [storage] mount_options = timeo=100,retrans=3 (10 s; then hectl storage disconnect && hectl storage connect)"
        return [Stall("nfs", seconds, f"NFS retransmission after {source}", fix)]
