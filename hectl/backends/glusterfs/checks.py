"""Checks of a Gluster volume from the gluster CLI's ``--xml`` output, as findings (what, why, how to fix).

``findings`` and ``stall`` are pure: they take the parsed ``volume info``
and ``volume status`` documents. ``query`` runs the CLI (``gluster
--remote-host=SERVER``, argv only, bounded) and reads ``opRet``: the CLI exits
0 even when the command failed. Findings are those of ``hectl storage
check``: ``hectl.storage.doctor.Finding`` (what, why, how to fix); ``stall``
gives the stall a silent server causes, for the doctor's timing budget.
"""

from __future__ import annotations

import subprocess
import xml.etree.ElementTree as ET

from hectl.errors import StorageError, StorageTimeout
from hectl.storage.doctor import FAIL, OK, WARN, Finding, Stall

DEFAULT_PING_TIMEOUT = 42.0  # GlusterFS's default network.ping-timeout
PARTITION_EXTRA = 5.0  # measured: a partitioned server stalls I/O for ping-timeout + up to 5 s
VIRT_OPTIONS = {"performance.strict-o-direct": "on", "network.remote-dio": "disable"}


_finding = Finding


def parse(text: str, what: str) -> ET.Element:
    """A ``gluster ... --xml`` document; ``StorageError`` when it is not one or ``opRet`` says it failed."""
    try:
        root = ET.fromstring(text)
    except ET.ParseError:
        said = text.strip().splitlines()[:1] or ["no output"]
        raise StorageError(f"{what}: {said[0]}") from None
    if root.findtext("opRet") not in (None, "0"):
        raise StorageError(f"{what}: {root.findtext('opErrstr') or 'failed'}")
    return root


def query(server: str, args: list[str], timeout: float) -> ET.Element:
    """``gluster --remote-host=SERVER ARGS --xml`` within ``timeout`` seconds."""
    argv = ["gluster", "--mode=script", "--log-file=/dev/null", f"--remote-host={server.strip('[]')}", *args, "--xml"]
    what = "gluster " + " ".join(args)
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        raise StorageTimeout(f"{what}: no answer from {server} within {timeout:g} s") from None
    except OSError as exc:
        raise StorageError(f"{what}: cannot run gluster: {exc.strerror}") from None
    return parse(done.stdout, what)


def options(info: ET.Element) -> dict[str, str]:
    return {o.findtext("name") or "": o.findtext("value") or "" for o in info.iter("option")}


def ping_timeout(info: ET.Element) -> float:
    """``network.ping-timeout`` of the volume (GlusterFS's default when unset)."""
    try:
        return float(options(info).get("network.ping-timeout", DEFAULT_PING_TIMEOUT))
    except ValueError:
        return DEFAULT_PING_TIMEOUT


def heal(doc: ET.Element, name: str) -> Finding:
    """The heal backlog from ``volume heal VOL info summary --xml`` (or ``info``: entries only)."""
    pending = split = 0
    for brick in doc.iter("brick"):
        split += int(brick.findtext("numberOfEntriesInSplitBrain") or 0)
        pending += int(brick.findtext("numberOfEntriesInHealPending") or brick.findtext("numberOfEntries") or 0)
    if split:
        why = "Gluster cannot tell which copy is right: reads of those files fail or return stale data"
        fix = f"gluster volume heal {name} info split-brain; resolve each: gluster volume heal {name} split-brain ..."
        return _finding("heal", FAIL, f"volume {name} has {split} entries in split brain", why, fix)
    if pending:
        why = "a replica is behind: until it has healed, one more failure can lose the newest writes"
        fix = f"wait, and watch: gluster volume heal {name} info summary   (gluster volume heal {name} starts it)"
        return _finding("heal", WARN, f"volume {name} has {pending} entries waiting to heal", why, fix)
    return _finding("heal", OK, f"volume {name} has nothing to heal")


def findings(
    info: ET.Element, status: ET.Element | None, owner: tuple[int, int] | None = None, allow_replica1: bool = False
) -> list[Finding]:
    """Findings about one volume: ``info`` from ``volume info VOL --xml``, ``status`` from ``volume status VOL
    --xml`` (None: the volume is not started), the uid/gid QEMU runs as if known; ``allow_replica1``: the admin
    accepted a single copy (``[storage] allow_replica1 = yes``: a test or lab set-up), a warning then."""
    vol = _volume(info)
    name = vol.findtext("name") or "?"
    opts = options(vol)
    out = []
    started = vol.findtext("statusStr") == "Started"
    out.append(
        _finding("volume-started", OK, f"volume {name} is started")
        if started
        else _finding(
            "volume-started",
            FAIL,
            f"volume {name} is {vol.findtext('statusStr') or 'not started'}",
            "no host can reach the storage domain",
            f"gluster volume start {name}",
        )
    )
    replica = vol.findtext("replicaCount") or "1"
    if replica == "3":
        out.append(_finding("replica", OK, f"volume {name} keeps 3 replicas"))
    else:
        out.append(
            _finding(
                "replica",
                FAIL if replica == "1" and not allow_replica1 else WARN,
                f"volume {name} keeps {replica} replica(s)",
                "hosted storage needs replica 3 to survive one server and keep client quorum",
                f"gluster volume add-brick {name} replica 3 HOST:/BRICK ...",
            )
        )
    bricks = [b.findtext("name") or "" for b in vol.iter("brick")]
    hosts = sorted({b.rpartition(":")[0] for b in bricks})
    out.append(
        _finding("brick-hosts", OK, f"bricks on {len(hosts)} hosts")
        if len(hosts) >= 3
        else _finding(
            "brick-hosts",
            WARN,
            f"the {len(bricks)} bricks of {name} are on {len(hosts)} host(s): {', '.join(hosts)}",
            "one host failure takes more than one replica away (client quorum lost: the domain stops)",
            "put each replica's brick on a different host (gluster volume replace-brick ...)",
        )
    )
    if started and status is not None:
        nodes = [n for n in status.iter("node") if n.findtext("hostname") != "Self-heal Daemon"]
        down = [f"{n.findtext('hostname')}:{n.findtext('path')}" for n in nodes if n.findtext("status") != "1"]
        if not down:
            out.append(_finding("bricks-online", OK, f"all {len(nodes)} bricks online"))
        else:
            quorum = len(nodes) - len(down) > len(nodes) // 2
            out.append(
                _finding(
                    "bricks-online",
                    WARN if quorum else FAIL,
                    f"{len(down)} of {len(nodes)} bricks offline: {', '.join(down)}",
                    "one more failure stops the domain"
                    if quorum
                    else "client quorum lost: every I/O fails (Transport endpoint is not connected)",
                    f"gluster volume start {name} force   (restarts offline bricks; self-heal follows)",
                )
            )
    wrong = {k: opts.get(k, "(default)") for k, v in VIRT_OPTIONS.items() if opts.get(k) != v}
    out.append(
        _finding("virt-options", OK, "performance.strict-o-direct on, network.remote-dio disable")
        if not wrong
        else _finding(
            "virt-options",
            FAIL,
            "not set for VM storage: " + ", ".join(f"{k} = {v}" for k, v in sorted(wrong.items())),
            "O_DIRECT writes are cached by the client: sanlock's and the engine's writes are not durable, errors"
            " only show at close()",
            f"gluster volume set {name} group virt   (then set network.ping-timeout again)",
        )
    )
    out.append(
        _finding("sharding", OK, "features.shard on")
        if opts.get("features.shard") == "on"
        else _finding(
            "sharding",
            WARN,
            "features.shard is off",
            "healing a VM disk copies the whole file instead of its changed shards",
            f"gluster volume set {name} features.shard on   (new files only)",
        )
    )
    out.append(
        _finding("quorum", OK, "cluster.quorum-type auto")
        if opts.get("cluster.quorum-type", "auto") == "auto"
        else _finding(
            "quorum",
            WARN,
            f"cluster.quorum-type = {opts['cluster.quorum-type']}",
            "without client quorum a partition can split the replicas (split brain)",
            f"gluster volume set {name} cluster.quorum-type auto",
        )
    )
    ids = (opts.get("storage.owner-uid"), opts.get("storage.owner-gid"))
    if owner is not None and ids != (str(owner[0]), str(owner[1])):
        out.append(
            _finding(
                "owner",
                FAIL,
                f"the volume root belongs to {ids[0] or '(unset)'}:{ids[1] or '(unset)'}, QEMU runs as {owner[0]}:{owner[1]}",
                "QEMU cannot open the engine disk",
                f"gluster volume set {name} storage.owner-uid {owner[0]}; gluster volume set {name} storage.owner-gid {owner[1]}",
            )
        )
    elif owner is not None:
        out.append(_finding("owner", OK, f"the volume root belongs to {owner[0]}:{owner[1]}"))
    return out


def _volume(info: ET.Element) -> ET.Element:
    vol = info.find(".//volInfo/volumes/volume")
    if vol is None:
        raise StorageError("gluster volume info: no volume in the answer")
    return vol


def stall(info: ET.Element) -> Stall:
    """How long a server that stops answering (partition, freeze) stalls I/O: ping-timeout + up to 5 s."""
    vol = _volume(info)
    ping = ping_timeout(vol)
    name = vol.findtext("name") or "VOLUME"
    return Stall(
        "gluster",
        ping + PARTITION_EXTRA,
        f"network.ping-timeout {ping:g} s + up to {PARTITION_EXTRA:g} s (measured)",
        f"gluster volume set {name} network.ping-timeout SECONDS   (below 6 x io_timeout - {PARTITION_EXTRA:g})",
    )
