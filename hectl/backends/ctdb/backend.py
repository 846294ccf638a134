"""NFS through a CTDB public address: the nfs backend, plus CTDB's view for ``storage check`` and the hand-over
of the address when this host goes into local maintenance.

CTDB runs on the storage hosts (in the seeds: the Gluster hosts, which are the
hypervisors); hectl asks the local ctdbd through its socket (``ctdb_socket``,
default ``/run/ctdb/ctdbd.socket``) with the ``ctdb`` CLI, bounded by the
timeout. ``connection`` must name a CTDB public address.
"""

from __future__ import annotations

import subprocess

from hectl.backends.ctdb import cluster
from hectl.backends.nfs.backend import NFSBackend
from hectl.errors import StorageError, StorageTimeout
from hectl.storage import values

TYPE_CHECKING = False  # typing.TYPE_CHECKING would import typing (see hectl.frozen)
if TYPE_CHECKING:
    from collections.abc import Mapping

    from hectl.clock import Clock
    from hectl.storage.doctor import Finding, Stall

SOCKET = "/run/ctdb/ctdbd.socket"
TUNABLES = ("NoIPFailback", "KeepaliveInterval", "KeepaliveLimit")


class CTDBBackend(NFSBackend):
    """``[storage] type = ctdb``: the nfs keys, ``connection`` on a CTDB public address, and ``ctdb_socket``."""

    name = "ctdb"
    KEYS = NFSBackend.KEYS | {"ctdb_socket"}

    def __init__(self, options: Mapping[str, str], clock: Clock) -> None:
        super().__init__(options, clock)
        self.socket = values.abs_path(self.options.get("ctdb_socket", SOCKET), "ctdb_socket")

    def describe(self) -> dict[str, object]:
        return {**super().describe(), "ctdb_socket": self.socket}

    def ctdb(self, args: list[str], timeout: float) -> str:
        """The output of ``ctdb ARGS`` through this host's ctdbd, within ``timeout``."""
        env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "CTDB_SOCKET": self.socket}
        try:
            res = subprocess.run(["ctdb", *args], env=env, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            raise StorageTimeout(f"ctdb {' '.join(args)}: no answer from ctdbd ({self.socket}) within {timeout:g} s") from None
        except OSError as exc:
            raise StorageError(f"cannot run ctdb: {exc.strerror}", hint="install the ctdb package") from None
        if res.returncode != 0 and not res.stdout.strip():
            detail = res.stderr.strip().splitlines()[-1] if res.stderr.strip() else f"exit status {res.returncode}"
            raise StorageError(f"ctdb {' '.join(args)}: {detail}", hint=f"is ctdbd running (socket {self.socket})?")
        return res.stdout

    def view(self, timeout: float) -> cluster.View:
        try:
            tunables = {name: cluster.tunable(self.ctdb(["getvar", name], timeout)) for name in TUNABLES}
        except ValueError as exc:
            raise StorageError(f"ctdb getvar: {exc}") from None
        return cluster.View(
            nodes=cluster.nodes(self.ctdb(["-X", "status"], timeout)),
            addresses=cluster.addresses(self.ctdb(["-X", "ip"], timeout)),
            reclock=self.ctdb(["getreclock"], timeout).strip(),
            tunables=tunables,
        )

    def checks(self, timeout: float, io_timeout: float) -> list[Finding]:
        return super().checks(timeout, io_timeout) + cluster.findings(self.view(timeout), self.conn.address)

    def stall_budget(self, timeout: float) -> list[Stall]:
        return [*super().stall_budget(timeout), cluster.stall(self.view(timeout))]

    def on_local_maintenance(self, on: bool, timeout: float) -> str:
        """Going into local maintenance, this node gives the public address away (``ctdb disable``: CTDB moves it
        to a healthy node; no fail-back); leaving it, the node is enabled again and the address stays put."""
        view = self.view(timeout)
        me = view.me
        if me is None:
            return ""
        if not on:
            if "Disabled" not in me.flags:
                return ""
            self.ctdb(["enable"], timeout)
            return (
                f"CTDB node pnn {me.pnn} enabled again ({self.conn.address} stays on pnn {view.addresses.get(self.conn.address)})"
            )
        if "Disabled" in me.flags and view.addresses.get(self.conn.address) != me.pnn:
            return ""
        t0 = self.clock.monotonic()
        self.ctdb(["disable"], timeout)
        while True:
            holder = self.view(timeout).addresses.get(self.conn.address, -1)
            if holder not in (me.pnn, -1):
                took = self.clock.monotonic() - t0
                return f"CTDB node pnn {me.pnn} disabled: {self.conn.address} moved to pnn {holder} in {took:.2f} s"
            if self.clock.monotonic() - t0 > timeout:
                raise StorageTimeout(f"ctdb disable: {self.conn.address} did not move away within {timeout:g} s")
            self.clock.sleep(0.05)
