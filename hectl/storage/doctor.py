"""``hectl storage check``: findings about the storage domain and the cross-layer timing budget.

Every finding says what was found, why it matters and how to fix it. The
timing budget holds the longest I/O stall each storage layer can cause (a
backend's ``stall_budget``) against sanlock's limits for the lockspace's
io_timeout: a stall of 6 x io_timeout makes sanlock warn, one of 8 x
io_timeout makes it kill the engine VM on a host that is itself healthy
(docs/storage-check.md). The functions here are pure except ``run``, which
does the bounded I/O through the backend.
"""

from __future__ import annotations

from hectl.errors import NotDeployed, StorageError
from hectl.frozen import Frozen
from hectl.lease import host_dead_seconds
from hectl.storage import records

TYPE_CHECKING = False  # typing.TYPE_CHECKING would import typing (see hectl.frozen)
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    from hectl.config import HAConfig
    from hectl.storage.backend import StorageBackend
    from hectl.storage.metadata import MetadataSnapshot

OK, WARN, FAIL = "ok", "warn", "fail"
SEVERITIES = (OK, WARN, FAIL)
# The overall status and its exit code (Nagios-like, for this command only).
STATUS_CODES = {"ok": 0, "warn": 1, "fail": 2, "unreachable": 4}
WARN_FACTOR = 6  # sanlock logs a renewal warning after 6 x io_timeout without a successful renewal
FAIL_FACTOR = 8  # ... and kills the lease holders (the engine VM) after 8 x io_timeout
RETRY = "hectl storage check --timeout 30   (then look at the storage server)"
SLOW_FRACTION = 0.25  # one I/O taking a quarter of io_timeout leaves sanlock little room


class Finding(Frozen):
    """One result: ``check`` names it (stable), ``severity`` is ok | warn | fail."""

    check: str
    severity: str
    what: str
    why: str = ""
    fix: str = ""


class Stall(Frozen):
    """The longest I/O stall a storage ``layer`` can cause, in ``seconds``.

    ``source`` says where the figure comes from (an option, a default);
    ``fix`` is the exact command that shortens it, when the backend knows one.
    """

    layer: str
    seconds: float
    source: str
    fix: str = ""


class Limits(Frozen):
    """sanlock's timing for one io_timeout (seconds)."""

    io_timeout: float
    renew: float  # a host renews its delta lease this often
    warn: float  # sanlock warns after this long without a renewal
    kill: float  # ... kills the lease holders (the engine VM) after this long
    dead: float  # ... and other hosts may take the leases this long after the last renewal

    @classmethod
    def of(cls, io_timeout: float) -> Limits:
        return cls(io_timeout, 2 * io_timeout, WARN_FACTOR * io_timeout, FAIL_FACTOR * io_timeout, host_dead_seconds(io_timeout))


def stall_findings(stalls: Iterable[Stall], limits: Limits) -> list[Finding]:
    """Each layer's stall against sanlock's warn (>= 6 x io_timeout) and kill (>= 8 x io_timeout) limits."""
    out = []
    for s in stalls:
        check = f"stall:{s.layer}"
        what = f"{s.layer} can stall I/O for {s.seconds:g} s ({s.source})"
        fix = s.fix or f"lower it below {limits.warn:g} s (6 x io_timeout {limits.io_timeout:g}), or raise [ha] io_timeout"
        if s.seconds >= limits.kill:
            why = f"sanlock kills the engine VM after {limits.kill:g} s without a lease renewal, on a healthy host too"
            out.append(Finding(check, FAIL, what, why, fix))
        elif s.seconds >= limits.warn:
            why = (
                f"sanlock counts from the last renewal, up to {limits.renew:g} s before the stall began: "
                f"past {limits.warn:g} s it warns, at {limits.kill:g} s it kills the engine VM"
            )
            out.append(Finding(check, WARN, what, why, fix))
        else:
            out.append(Finding(check, OK, what, f"below sanlock's warning at {limits.warn:g} s"))
    return out


def failover(limits: Limits, loop: float, starting: float) -> dict[str, float]:
    """Seconds from the engine host's death to the engine VM starting elsewhere; then it boots.

    The dead host renewed its lease at most ``renew`` s before it died; its
    leases are free ``dead`` s after that renewal; a peer's agent acts within
    up to two loops (it sees the lease free, then starts the VM). The agent
    gives the boot up to ``starting`` s (``[ha] starting``) to become healthy.
    """
    return {"min_s": limits.dead - limits.renew, "max_s": limits.dead + 2 * loop, "boot_limit_s": starting}


def metadata_findings(snap: MetadataSnapshot, path: str, io_timeout: float) -> list[Finding]:
    """The metadata file read whole: its size, whether O_DIRECT worked, how long the read took."""
    out = []
    if snap.truncated:
        out.append(
            Finding(
                "metadata-size",
                FAIL,
                f"{path} is {snap.size} bytes, expected {records.METADATA_SIZE}",
                "host slots past the end cannot be read or written: those hosts cannot publish",
                f"truncate -s {records.METADATA_SIZE} {path}   (extends with zeros: empty slots)",
            )
        )
    else:
        out.append(Finding("metadata-size", OK, f"{path} is {snap.size} bytes"))
    if snap.direct_io:
        out.append(Finding("direct-io", OK, "O_DIRECT works on the domain"))
    else:
        out.append(
            Finding(
                "direct-io",
                WARN,
                "O_DIRECT is refused: I/O falls back to buffered reads and O_DSYNC writes",
                "a host may read its page cache instead of what other hosts wrote",
                "put the domain on a filesystem that takes O_DIRECT (for Gluster: gluster volume set VOLUME group virt)",
            )
        )
    out.append(latency_finding("read-latency", "reading the metadata file", snap.read_ms, io_timeout))
    return out


def latency_finding(check: str, what: str, ms: float, io_timeout: float) -> Finding:
    """One timed I/O against io_timeout: fail at io_timeout, warn at a quarter of it."""
    text = f"{what} took {ms:.1f} ms"
    if ms >= io_timeout * 1000:
        why = f"sanlock gives up on an I/O after io_timeout ({io_timeout:g} s): renewals would fail"
        return Finding(check, FAIL, text, why, "find what slows the storage (network, disks, load) before running the agent")
    if ms >= io_timeout * 1000 * SLOW_FRACTION:
        why = f"more than a quarter of io_timeout ({io_timeout:g} s): little room before sanlock renewals fail"
        return Finding(check, WARN, text, why, "find what slows the storage (network, disks, load)")
    return Finding(check, OK, text)


def status_of(findings: Iterable[Finding]) -> str:
    severities = {f.severity for f in findings}
    return FAIL if FAIL in severities else WARN if WARN in severities else OK


def run(
    backend: StorageBackend, read_metadata: Callable[[], MetadataSnapshot], ha: HAConfig, timeout: float
) -> dict[str, object]:
    """Read the metadata, run the common and the backend's checks, weigh the stalls; the report as plain data.

    ``ha`` gives sanlock's io_timeout, the agent's loop and its boot limit.
    ``read_metadata`` is ``MetadataStore.read_all``: it connects the backend
    only when a file is missing, to tell "not deployed" from "unreachable".
    """
    io_timeout = ha.io_timeout
    limits = Limits.of(io_timeout)
    findings: list[Finding] = []
    reachable = True
    try:
        snap = read_metadata()  # no connect first: a backend may read without its mount (gfapi, libnfs)
    except NotDeployed as exc:
        findings.append(Finding("deployed", FAIL, exc.message, "no host can run the engine from it", "hectl deploy"))
    except StorageError as exc:
        reachable = False
        why = "this host cannot read or write the domain: its agent cannot publish and its sanlock cannot renew"
        findings.append(
            Finding("reachable", FAIL, exc.message, why, exc.hint or "hectl storage connect, then check the storage server")
        )
    else:
        findings.append(Finding("deployed", OK, f"a hectl domain at {backend.root()}"))
        findings += metadata_findings(snap, backend.paths().metadata, io_timeout)
        try:
            findings += backend.checks(timeout, io_timeout)
        except StorageError as exc:
            findings.append(Finding("backend", FAIL, exc.message, "the backend's own checks could not finish", exc.hint or RETRY))
    stalls: list[Stall] = []
    if reachable:
        try:
            stalls = list(backend.stall_budget(timeout))
        except StorageError as exc:
            why = "the layers' timeouts could not be read"
            findings.append(Finding("stall-budget", FAIL, exc.message, why, exc.hint or RETRY))
    findings += stall_findings(stalls, limits)
    status = status_of(findings) if reachable else "unreachable"
    return {
        "status": status,
        "code": STATUS_CODES[status],
        "storage": backend.describe(),
        "findings": [f._asdict() for f in findings],
        "sanlock": limits._asdict(),
        "stalls": [s._asdict() for s in stalls],
        "failover": failover(limits, ha.loop, ha.starting),
    }
