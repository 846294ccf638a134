"""sanlock: the lockspace of host ids and the engine VM's lease, through the local sanlock daemon.

One daemon per host; ``SANLOCK_RUN_DIR`` selects it (libsanlock reads it once
per process, so one process talks to one daemon). Lockspace ``hectl`` lives in
the domain's ``ha/lockspace`` file, the engine's lease (resource ``engine``) in
``ha/engine.lease``; the daemon runs as user ``sanlock`` and needs both files
readable and writable (``prepare_files``).

Joining the lockspace takes about 2 x io_timeout when the host id is free and
up to 8 x io_timeout + 60 s when another host used it recently (only then does
sanlock say that a live host holds it), so the agent joins in a thread and
``state`` reports progress.
"""

from __future__ import annotations

import errno
import os

from hectl.errors import HectlError, LockHeld, NotAvailable, StorageError
from hectl.frozen import Frozen
from hectl.storage.backend import ENGINE_LEASE_NAME, LOCKSPACE_NAME

TYPE_CHECKING = False  # typing.TYPE_CHECKING would import typing (see hectl.frozen)
if TYPE_CHECKING:
    from collections.abc import Callable

    from hectl.storage.backend import DomainPaths

ALIGN = 1024 * 1024  # 1 MiB per 2000 hosts at 512-byte sectors; 8 MiB at 4096
LEASE_FREE = 0
LEASE_UNKNOWN = -1

# sanlock's own return codes, in words (sanlock_rv.h).
SANLOCK_ERRORS = {
    -243: "the lease is held by a live host (SANLK_ACQUIRE_IDLIVE)",
    -242: "the lease owner's host id lease could not be read (SANLK_ACQUIRE_IDDISK)",
    -244: "the lease is owned by another host (SANLK_ACQUIRE_OWNED)",
    -245: "the lease could not be acquired (SANLK_ACQUIRE_OTHER)",
    -262: "this host id is being used by another host",
}


class DeltaLease(Frozen):
    """One host id's record in the lockspace, as sanlock wrote it (its delta lease)."""

    host_id: int
    generation: int
    timestamp: int  # the owner's clock at its last renewal; LEASE_FREE when released

    def describe(self) -> str:
        state = "free" if self.timestamp == LEASE_FREE else f"renewed at {self.timestamp}"
        return f"host id {self.host_id} generation {self.generation} {state}"


DELTA_MAGIC = 0x12212010  # sanlock's DELTA_DISK_MAGIC (leader.h)
# struct leader_record up to io_timeout: magic, version, flags, sector_size, num_hosts, max_hosts, owner_id,
# owner_generation, lver, space_name[48], resource_name[48], timestamp, unused1, checksum, unused2, io_timeout.
_LEADER = "<IIIIQQQQQ48s48sQQIHH"


def parse_delta(data: bytes, host_id: int) -> DeltaLease:
    """Host ``host_id``'s delta lease from its 512-byte sector; ``ValueError`` when it is not one of ours.

    Only read to see whether the owner still renews (a change) and who owns it;
    sanlock itself checks the checksum of everything it acts on.
    """
    import struct

    if len(data) < struct.calcsize(_LEADER):
        raise ValueError("short sector")
    fields = struct.unpack_from(_LEADER, data)
    magic, owner, generation, space, timestamp = fields[0], fields[6], fields[7], fields[9], fields[11]
    if magic != DELTA_MAGIC or space.rstrip(b"\0") != LOCKSPACE_NAME.encode():
        raise ValueError(f"host id {host_id}: no sanlock delta lease of lockspace {LOCKSPACE_NAME} there")
    if owner != host_id:
        raise ValueError(f"host id {host_id}: the sector names host id {owner}")
    return DeltaLease(host_id, int(generation), int(timestamp))


def read_delta(paths: DomainPaths, host_id: int, timeout: float, sector_size: int = 512) -> DeltaLease:
    """Read host ``host_id``'s delta lease straight from the lockspace file (bounded: ``StorageError``)."""
    from hectl.storage import directio

    result = directio.read(paths.lockspace, (host_id - 1) * sector_size, sector_size, timeout, root=paths.root)
    try:
        return parse_delta(result.data, host_id)
    except ValueError as exc:
        raise StorageError(f"the lockspace {paths.lockspace}: {exc}") from None


def read_deltas(paths: DomainPaths, host_ids: tuple[int, ...], timeout: float, sector_size: int = 512) -> dict[int, DeltaLease]:
    """The delta leases of ``host_ids`` in one bounded read (``StorageError``); sectors that are not one are left out."""
    from hectl.storage import directio

    if not host_ids:
        return {}
    data = directio.read(paths.lockspace, 0, max(host_ids) * sector_size, timeout, root=paths.root).data
    out = {}
    for h in host_ids:
        try:
            out[h] = parse_delta(data[(h - 1) * sector_size : h * sector_size], h)
        except ValueError:
            continue
    return out


def free_host_id(paths: DomainPaths, seen: DeltaLease, timeout: float) -> None:
    """Release the delta lease of a host that is confirmed powered off, so that its leases can be taken now.

    sanlock's paxos_acquire takes a lease at once when its owner's delta lease
    is free (timestamp 0) instead of waiting host_dead_seconds for it to go
    stale: that wait exists because nobody could know the owner was dead, and
    a fence device's confirmed power-off is that knowledge (docs/fencing.md).
    Refused (``LockHeld``) when the record changed since ``seen``: the host
    renewed after it was judged dead. The write is sanlock's own
    (``sanlock direct release_id``), bounded by ``timeout``.
    """
    from hectl.storage import directio

    now = read_delta(paths, seen.host_id, timeout)
    if now.timestamp == LEASE_FREE and now.generation == seen.generation:
        return
    if now != seen:
        raise LockHeld(f"host id {seen.host_id} renewed its lease since it was judged dead ({now.describe()})")
    import shutil

    spec = f"{LOCKSPACE_NAME}:{seen.host_id}:{paths.lockspace}:0"
    argv = [shutil.which("sanlock") or "/usr/sbin/sanlock", "direct", "release_id", "-s", spec]
    directio.run_command(argv, timeout, f"freeing host id {seen.host_id}")
    after = read_delta(paths, seen.host_id, timeout)
    if after.timestamp != LEASE_FREE:
        raise StorageError(f"host id {seen.host_id} is not free after sanlock released it ({after.describe()})")


def renewal_fail_seconds(io_timeout: float) -> float:
    """How long sanlock lets a host's lockspace renewals fail before it kills the holders of its leases."""
    return 8 * io_timeout


def host_dead_seconds(io_timeout: float) -> float:
    """How long after its last renewal sanlock declares a host dead (and its leases free to take): the renewal
    budget plus the watchdog's 60 s, by which a host that could not kill its lease holders has been reset."""
    return renewal_fail_seconds(io_timeout) + 60


def describe_error(exc: BaseException) -> str:
    """A sanlock exception in words."""
    code = getattr(exc, "errno", None)
    if isinstance(code, int) and code in SANLOCK_ERRORS:
        return f"{SANLOCK_ERRORS[code]} ({code})"
    if isinstance(code, int) and code > 0:
        return f"{os.strerror(code)} ({code})"
    return str(exc)


def _sanlock():  # type: ignore[no-untyped-def]
    try:
        import sanlock
    except ImportError:
        raise NotAvailable(
            "the sanlock Python binding is not installed", hint="install Debian's python3-sanlock (scripts/install.sh)"
        ) from None
    return sanlock


def require_binding() -> None:
    """Raise ``NotAvailable`` (exit 8) unless sanlock's binding loads: the agent never runs without its host-id lease."""
    _sanlock()


def daemon_problem() -> str:
    """Why this host's sanlock daemon cannot be used ('' when it answers)."""
    sanlock = _sanlock()
    try:
        sanlock.get_lockspaces()
    except sanlock.SanlockException as exc:
        return f"the sanlock daemon does not answer ({describe_error(exc)})"
    return ""


def initialised(paths: DomainPaths) -> bool:
    """Whether sanlock reads the domain's lockspace and engine lease (written by ``SanlockLeases.initialize``)."""
    sanlock = _sanlock()
    try:
        sanlock.read_lockspace(paths.lockspace)
        sanlock.read_resource(paths.engine_lease)
    except sanlock.SanlockException:
        return False
    return True


def prepare_files(paths: DomainPaths, timeout: float, sector_size: int = 512) -> None:
    """Create the lockspace and engine lease files, owned by the ``sanlock`` user, mode 0660.

    Each is made new and renamed into place (never written through a link),
    then owned and permitted through its own descriptor.
    """
    import pwd

    from hectl.storage import directio

    try:
        sl = pwd.getpwnam("sanlock")
    except KeyError:
        raise HectlError("there is no 'sanlock' user", hint="install Debian's sanlock package") from None
    size = ALIGN * (sector_size // 512)
    for path in (paths.lockspace, paths.engine_lease):
        directio.create(path, b"", size, timeout, root=paths.root, owner=(sl.pw_uid, sl.pw_gid), mode=0o660)


class SanlockLeases:
    """This host's lockspace membership and its views of the other hosts and of the engine lease."""

    def __init__(self, paths: DomainPaths, host_id: int, io_timeout: int, check: Callable[[str], None] | None = None) -> None:
        self.lockspace_path = paths.lockspace
        self.lease_path = paths.engine_lease
        self.host_id = host_id
        self.io_timeout = io_timeout
        self.check = check  # raises StorageError unless a path is a regular file inside the domain
        self.joined = False
        self.error = ""

    def check_files(self) -> None:
        """sanlock is handed the files by path: refuse (``StorageError``) a link or a non-file planted there."""
        if self.check is not None:
            for path in (self.lockspace_path, self.lease_path):
                self.check(path)

    def initialize(self, sector_size: int = 512) -> None:
        """Write a fresh lockspace and engine lease (deploy, or a repair in global maintenance)."""
        sanlock = _sanlock()
        self.check_files()
        align = ALIGN * (sector_size // 512)
        try:
            sanlock.write_lockspace(
                LOCKSPACE_NAME.encode(), self.lockspace_path, offset=0, iotimeout=self.io_timeout, align=align, sector=sector_size
            )
            sanlock.write_resource(
                LOCKSPACE_NAME.encode(), ENGINE_LEASE_NAME.encode(), [(self.lease_path, 0)], align=align, sector=sector_size
            )
        except sanlock.SanlockException as exc:
            raise StorageError(f"cannot initialise the sanlock lockspace: {describe_error(exc)}") from None

    def join(self) -> None:
        """Acquire this host's id in the lockspace; blocks until done (run it in a thread; ``state`` shows progress).

        Raises ``LockHeld`` when another live host uses the id, ``StorageError`` otherwise.
        """
        sanlock = _sanlock()
        try:
            self.check_files()
        except StorageError as exc:
            self.error = exc.message
            raise
        try:
            sanlock.add_lockspace(LOCKSPACE_NAME.encode(), self.host_id, self.lockspace_path, iotimeout=self.io_timeout)
            self.error = ""
        except sanlock.SanlockException as exc:
            if exc.errno not in (errno.EEXIST, errno.EINPROGRESS, -errno.EINPROGRESS):
                self.error = describe_error(exc)
                if exc.errno == -262:
                    raise LockHeld(f"host id {self.host_id}: {self.error}", hint="is [host] id unique?") from None
                if exc.errno == errno.EINVAL:
                    raise StorageError(
                        f"cannot join the sanlock lockspace as host id {self.host_id}: this sanlock daemon already "
                        "has a lockspace of that name with another host id or file",
                        hint="see 'sanlock client status'",
                    ) from None
                raise StorageError(f"cannot join the sanlock lockspace: {self.error}") from None

    def state(self) -> str:
        """``held``, ``joining``, ``lost`` (held before, not now) or ``none``."""
        sanlock = _sanlock()
        try:
            held = sanlock.inq_lockspace(LOCKSPACE_NAME.encode(), self.host_id, self.lockspace_path)
        except sanlock.SanlockException as exc:
            self.error = describe_error(exc)
            return "lost" if self.joined else "none"
        if held is True:
            self.joined = True
            return "held"
        if held is None:
            return "joining"
        return "lost" if self.joined else "none"

    def hosts(self) -> dict[int, str]:
        """sanlock's view of every host id in the lockspace: live | fail | dead | unknown; a host id whose delta
        lease is released (free) is not listed. ``{}`` when sanlock has no view (not joined yet)."""
        sanlock = _sanlock()
        names = {
            sanlock.HOST_LIVE: "live",
            sanlock.HOST_FAIL: "fail",
            sanlock.HOST_DEAD: "dead",
            sanlock.HOST_FREE: "free",
            sanlock.HOST_UNKNOWN: "unknown",
        }
        try:
            hosts = sanlock.get_hosts(LOCKSPACE_NAME.encode())
        except sanlock.SanlockException:
            return {}  # not joined yet, or no data on the others yet (EAGAIN)
        return {h["host_id"]: names.get(h["flags"] & 0x0F, "unknown") for h in hosts}

    def generations(self) -> dict[int, int]:
        sanlock = _sanlock()
        try:
            return {h["host_id"]: h["generation"] for h in sanlock.get_hosts(LOCKSPACE_NAME.encode())}
        except sanlock.SanlockException:
            return {}

    def engine_holder(self) -> int:
        """Who holds the engine lease: a host id, ``LEASE_FREE`` or ``LEASE_UNKNOWN``.

        An owner record from an older generation of its host (it has rejoined
        since, so its VM is gone) does not count as holding.
        """
        sanlock = _sanlock()
        try:
            owners = sanlock.read_resource_owners(LOCKSPACE_NAME.encode(), ENGINE_LEASE_NAME.encode(), [(self.lease_path, 0)])
        except sanlock.SanlockException:
            return LEASE_UNKNOWN
        if not owners:
            return LEASE_FREE
        owner = owners[0]
        current = self.generations().get(owner["host_id"])
        if current is not None and current != owner["generation"]:
            return LEASE_FREE
        return int(owner["host_id"])

    def leave(self) -> None:
        """Give up the host id (never while this host's engine VM holds the lease: sanlock would kill it)."""
        sanlock = _sanlock()
        try:
            sanlock.rem_lockspace(LOCKSPACE_NAME.encode(), self.host_id, self.lockspace_path)
        except sanlock.SanlockException as exc:
            if exc.errno != errno.ENOENT:
                self.error = describe_error(exc)
        self.joined = False
