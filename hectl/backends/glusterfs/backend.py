"""A storage domain on a GlusterFS volume, reached through the FUSE client under a predictable run directory.

``connect()`` mounts ``server:/volume`` at ``<mount_base>/<server>:<volume>``
(default ``/run/hectl/mnt``) by running ``glusterfs`` with an argv built from
validated parts only (``options.py``), bounded by the timeout: a client that
does not finish in time is killed and abandoned. A mount that is already there
is reused (idempotent). The volfile servers are tried reachable-first: a
silently dropping first server stalls a mount for ~55 s. ``disconnect()``
unmounts. I/O goes through the mount with hectl's bounded direct I/O.
"""

from __future__ import annotations

import contextlib
import os
import socket

from hectl.backends.glusterfs import options as gopts
from hectl.errors import ConfigError, StorageError
from hectl.storage import directio, values
from hectl.storage.backend import StorageBackend

TYPE_CHECKING = False  # typing.TYPE_CHECKING would import typing (see hectl.frozen)
if TYPE_CHECKING:
    import xml.etree.ElementTree as ET
    from collections.abc import Mapping

    from hectl.clock import Clock
    from hectl.storage.doctor import Finding, Stall

MOUNT_BASE = "/run/hectl/mnt"
LOG_DIR = "/var/log/glusterfs"
VOLFILE_PORT = 24007
FSTYPE = "fuse.glusterfs"


class GlusterFSBackend(StorageBackend):
    """``[storage] type = glusterfs``, ``connection = server:/volume``, optional ``backup_servers``,
    ``mount_options``, ``mount_base``, ``allow_replica1`` (a single-copy volume warns instead of failing)."""

    name = "glusterfs"
    KEYS = frozenset({"connection", "backup_servers", "mount_options", "mount_base", "allow_replica1"})

    def __init__(self, options: Mapping[str, str], clock: Clock) -> None:
        super().__init__(options, clock)
        unknown = sorted(set(options) - self.KEYS)
        if unknown:
            known = ", ".join(sorted(self.KEYS))
            raise ConfigError(f"[storage] unknown key '{unknown[0]}' for type glusterfs (known: {known})")
        self.conn = gopts.parse(self.options)
        allow = self.options.get("allow_replica1", "no").strip().lower()
        if allow not in ("yes", "no"):
            raise ConfigError(f"[storage] allow_replica1 = {allow!r}: must be yes or no")
        self.allow_replica1 = allow == "yes"
        base = values.abs_path(self.options.get("mount_base", MOUNT_BASE), "mount_base")
        self._root = os.path.join(base, f"{self.conn.servers[0]}:{self.conn.volume}")
        self.log_file = os.path.join(LOG_DIR, f"hectl-{self.conn.servers[0]}:{self.conn.volume}.log")

    def root(self) -> str:
        return self._root

    def describe(self) -> dict[str, object]:
        return {
            "type": self.name,
            "root": self._root,
            "volume": self.conn.volume,
            "servers": list(self.conn.servers),
            "access": "fuse" if self.is_connected() else "gfapi",
        }

    def is_connected(self) -> bool:
        """Mounted, and its FUSE client alive (no storage I/O: /proc only)."""
        return mounted(self._root) and bool(client_pids(self._root))

    def connect(self, timeout: float) -> None:
        """Mount the volume (unless mounted) and check the domain root answers, all within ``timeout``."""
        deadline = self.clock.monotonic() + timeout
        if mounted(self._root) and not client_pids(self._root):  # its FUSE client died: a stale mount (ENOTCONN)
            directio.run_command(["umount", "-l", self._root], timeout, "unmount of a stale mount")
        if not mounted(self._root):
            os.makedirs(self._root, mode=0o755, exist_ok=True)
            servers = reachable_first(self.conn.servers, min(1.0, timeout / (len(self.conn.servers) + 1)))
            argv = ["glusterfs", *(f"--volfile-server={s.strip('[]')}" for s in servers)]
            argv += [f"--volfile-id={self.conn.volume}", "--process-name", "fuse", f"--log-file={self.log_file}"]
            argv += [f"--{name}={value}" for name, value in self.conn.mount_options]
            argv.append(self._root)
            try:
                directio.run_command(
                    argv, max(0.1, deadline - self.clock.monotonic()), f"mount of {self.connection}", self.log_file
                )
                if not mounted(self._root):
                    raise StorageError(f"glusterfs volume {self.connection} did not mount at {self._root}")
            except StorageError:
                kill_clients(self._root)  # the daemonised client of a failed or timed-out mount must not linger
                raise
        kind = directio.path_kind(self._root, max(0.1, deadline - self.clock.monotonic()))
        if kind != "dir":
            raise StorageError(f"glusterfs volume {self.connection} is mounted at {self._root} but does not answer")

    def disconnect(self, timeout: float) -> None:
        """Unmount (the FUSE client exits by itself); nothing to do when not mounted."""
        if mounted(self._root):
            directio.run_command(["umount", self._root], timeout, "unmount")
            if mounted(self._root):
                raise StorageError(f"{self._root} is still mounted")

    def read(self, path: str, offset: int, length: int, timeout: float) -> directio.IOResult:
        """Through the mount when mounted, otherwise mount-free through libgfapi (same bytes, same bounds)."""
        if self.is_connected():
            return super().read(path, offset, length, timeout)
        from hectl.backends.glusterfs import gfapi

        rel = os.path.relpath(path, self._root)
        if rel.startswith(".."):
            raise StorageError(f"{path} is not in the domain at {self._root}")
        return gfapi.read(self.conn.volume, self.conn.servers, "/" + rel, offset, length, timeout)

    def checks(self, timeout: float, io_timeout: float) -> list[Finding]:
        """The volume's checks from the gluster CLI (hectl/backends/glusterfs/checks.py), for ``storage check``."""
        return self.volume_findings(timeout)

    def volume_findings(self, timeout: float, owner: tuple[int, int] | None = None) -> list[Finding]:
        """``checks``, with the uid/gid QEMU runs as when known (the volume root must belong to it)."""
        from hectl.backends.glusterfs import checks

        info = self._cli(["volume", "info", self.conn.volume], timeout)
        try:
            status = self._cli(["volume", "status", self.conn.volume], timeout)
        except StorageError:
            status = None  # not started: volume info says so
        found = checks.findings(info, status, owner, self.allow_replica1)
        if status is not None:
            try:
                found.append(
                    checks.heal(self._cli(["volume", "heal", self.conn.volume, "info", "summary"], timeout), self.conn.volume)
                )
            except StorageError as exc:  # no quorum, a dead brick: the brick findings say why
                what = f"the heal backlog could not be read: {exc.message}"
                fix = f"gluster volume heal {self.conn.volume} info summary"
                found.append(checks.Finding("heal", checks.WARN, what, "a replica may be behind", fix))
        return found

    def stall_budget(self, timeout: float) -> list[Stall]:
        """A server that stops answering stalls I/O for the volume's network.ping-timeout + up to 5 s."""
        from hectl.backends.glusterfs import checks

        return [checks.stall(self._cli(["volume", "info", self.conn.volume], timeout))]

    def _cli(self, args: list[str], timeout: float) -> ET.Element:
        from hectl.backends.glusterfs import checks

        return checks.query(self.conn.servers[0], args, timeout)

    @property
    def connection(self) -> str:
        return f"{self.conn.servers[0]}:/{self.conn.volume}"


def _unescape(field: str) -> str:
    """/proc/self/mounts escapes space, tab, newline and backslash as octal."""
    return field.replace("\\040", " ").replace("\\011", "\t").replace("\\012", "\n").replace("\\134", "\\")


def mounted(path: str) -> bool:
    """Whether a glusterfs FUSE mount sits at ``path`` (reads /proc/self/mounts: no storage I/O)."""
    with open("/proc/self/mounts") as f:
        for line in f:
            fields = line.split()
            if len(fields) > 2 and fields[2] == FSTYPE and _unescape(fields[1]) == path:
                return True
    return False


def client_pids(mountpoint: str) -> list[int]:
    """Pids of glusterfs client processes serving (or trying to mount) ``mountpoint``."""
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                argv = f.read().split(b"\0")[:-1]
        except OSError:
            continue
        if argv and os.path.basename(argv[0]) == b"glusterfs" and argv[-1] == os.fsencode(mountpoint):
            pids.append(int(entry))
    return pids


def kill_clients(mountpoint: str) -> None:
    for pid in client_pids(mountpoint):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, 9)  # SIGKILL (importing signal costs the fast path ~1 ms)


def reachable_first(servers: tuple[str, ...], probe_timeout: float) -> list[str]:
    """The servers with those accepting a TCP connection on the volfile port first (order kept otherwise)."""
    if len(servers) == 1:
        return list(servers)
    up, down = [], []
    for server in servers:
        try:
            with socket.create_connection((server.strip("[]"), VOLFILE_PORT), timeout=probe_timeout):
                up.append(server)
        except OSError:
            down.append(server)
    return up + down
