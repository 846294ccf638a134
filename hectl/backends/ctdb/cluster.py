"""CTDB's view of the cluster, parsed from the ``ctdb`` CLI's machine-readable output, and what it means for hectl.

``ctdb -X`` prints ``|``-separated rows with a header row. ``ctdb -X getvar`` is
not machine-readable (``Name = value``). ``ctdb nodestatus`` exits with the OR
of the node flags, so a non-zero exit is not a CLI failure. Samples of every
output are in shared/reference/components/ctdb-samples/.
"""

from __future__ import annotations

from hectl.frozen import Frozen

TYPE_CHECKING = False  # typing.TYPE_CHECKING would import typing (see hectl.frozen)
if TYPE_CHECKING:
    from hectl.storage.doctor import Finding, Stall

FLAGS = ("Disconnected", "Unknown", "Banned", "Disabled", "Unhealthy", "Stopped", "Inactive", "PartiallyOnline")


class Node(Frozen):
    pnn: int
    ip: str
    flags: tuple[str, ...]  # the names of the flags set (empty: OK)
    this: bool


class View(Frozen):
    """What this host's ctdbd says: its nodes, who holds each public address, the tunables hectl weighs."""

    nodes: tuple[Node, ...]
    addresses: dict[str, int]  # public address -> pnn (-1: unassigned)
    reclock: str  # the cluster (recovery) lock; '' when none is configured
    tunables: dict[str, int]

    def node(self, pnn: int) -> Node | None:
        return next((n for n in self.nodes if n.pnn == pnn), None)

    @property
    def me(self) -> Node | None:
        return next((n for n in self.nodes if n.this), None)


def table(text: str) -> list[dict[str, str]]:
    """The rows of a ``ctdb -X`` table as dicts keyed by the header."""
    lines = [line.strip() for line in text.splitlines() if line.strip().startswith("|")]
    if not lines:
        return []
    header = lines[0].strip("|").split("|")
    return [dict(zip(header, line.strip("|").split("|"), strict=False)) for line in lines[1:]]


def nodes(text: str) -> tuple[Node, ...]:
    out = []
    for row in table(text):
        flags = tuple(f for f in FLAGS if row.get(f, "0") not in ("0", ""))
        out.append(Node(pnn=int(row["Node"]), ip=row["IP"], flags=flags, this=row.get("ThisNode") == "Y"))
    return tuple(out)


def addresses(text: str) -> dict[str, int]:
    return {row["Public IP"]: int(row["Node"]) for row in table(text)}


def tunable(text: str) -> int:
    """The value of one ``ctdb getvar NAME`` (``NAME = value``)."""
    for line in text.splitlines():
        name, sep, value = line.partition("=")
        if sep and name.strip() and value.strip().lstrip("-").isdigit():
            return int(value.strip())
    raise ValueError(f"no 'NAME = value' in {text.strip()[:80]!r}")


def findings(view: View, address: str) -> list[Finding]:
    """``storage check``'s CTDB findings for the public ``address`` the domain is reached through."""
    from hectl.storage.doctor import FAIL, OK, WARN, Finding

    out = []
    sick = [n for n in view.nodes if n.flags]
    me = view.me
    others = [n for n in view.nodes if not n.this]
    isolated = me is not None and others and all("Disconnected" in n.flags for n in others)
    if not sick:
        out.append(Finding("ctdb-nodes", OK, f"all {len(view.nodes)} CTDB nodes are OK"))
    elif isolated:
        out.append(Finding("ctdb-nodes", FAIL, f"this CTDB node (pnn {me.pnn}) sees every other node disconnected",  # type: ignore[union-attr]
                           why="a cut-off node may keep the public address on its interface while another node serves it",
                           fix="check this host's network to the other storage nodes (ctdb status)"))  # fmt: skip
    else:
        listed = ", ".join(f"pnn {n.pnn} ({n.ip}): {'/'.join(n.flags)}" for n in sick)
        out.append(Finding("ctdb-nodes", WARN, f"CTDB nodes not OK: {listed}",
                           why="fewer nodes can take the public address over when its holder fails",
                           fix="ctdb status; bring the nodes back (ctdb enable / ctdb continue / start ctdbd)"))  # fmt: skip
    holder = view.addresses.get(address)
    if holder is None:
        out.append(Finding("ctdb-address", FAIL, f"{address} is not a CTDB public address",
                           why="the domain's NFS server must be reached through the address CTDB moves",
                           fix="set [storage] connection to a public address listed by 'ctdb ip'"))  # fmt: skip
    elif holder < 0:
        out.append(Finding("ctdb-address", FAIL, f"no CTDB node holds {address}", why="nothing serves the domain",
                           fix="ctdb status; ctdb ip (a healthy node takes it over once one is OK)"))  # fmt: skip
    else:
        node = view.node(holder)
        out.append(Finding("ctdb-address", OK, f"{address} is held by pnn {holder}" + (f" ({node.ip})" if node else "")))
        if isolated and me is not None and holder == me.pnn:
            why = "the majority gives the address to another node: two interfaces hold it, clients reach either"
            fix = "cut this node off for good (ctdb stop) or heal the link"
            out.append(Finding("ctdb-cutoff", FAIL, f"this cut-off node (pnn {me.pnn}) still holds {address}", why, fix))
    if view.reclock:
        out.append(Finding("ctdb-reclock", OK, f"cluster lock: {view.reclock}"))
    else:
        out.append(Finding("ctdb-reclock", FAIL, "no CTDB cluster lock is configured",
                           why="without one, both sides of a partition elect a leader and both serve the address",
                           fix="set [cluster] cluster lock in /etc/ctdb/ctdb.conf on every node"))  # fmt: skip
    if view.tunables.get("NoIPFailback", 0) == 0:
        out.append(Finding("ctdb-failback", WARN, "NoIPFailback = 0: a node that rejoins takes the address back",
                           why="one failure then causes two moves and two client outages",
                           fix="ctdb setvar NoIPFailback 1 on every node (and NoIPFailback=1 in ctdb.tunables)"))  # fmt: skip
    else:
        out.append(Finding("ctdb-failback", OK, "NoIPFailback = 1: the address stays where it moved"))
    return out


def stall(view: View) -> Stall:
    """How long a cut-off holder keeps the address from the clients: KeepaliveInterval x (KeepaliveLimit + 1) + ~1 s."""
    from hectl.storage.doctor import Stall

    interval, limit = view.tunables.get("KeepaliveInterval", 5), view.tunables.get("KeepaliveLimit", 5)
    source = f"takeover after KeepaliveInterval {interval} x (KeepaliveLimit {limit} + 1) + 1 s"
    fix = "ctdb setvar KeepaliveInterval 1; ctdb setvar KeepaliveLimit 3 (on every node)"
    return Stall("ctdb", interval * (limit + 1) + 1.0, source, fix)
