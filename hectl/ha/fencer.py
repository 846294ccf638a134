"""The agent's fencing of the engine's host: power it off through its device, confirm it, free its host id.

It runs in a thread (a device may take ``[fencing] timeout`` per action) while
the agent keeps publishing; ``result()`` is what the state machine reads:
"" (never fenced), "running", "confirmed: <how>" or "failed: <why>". The delta
lease read before the power-off is the one freed after it: a host that renewed
in between is not freed (``lease.free_host_id``). Every attempt is audited.
"""

from __future__ import annotations

import logging
import threading

from hectl import audit, lease
from hectl.errors import HectlError
from hectl.fencing import device, fence
from hectl.storage import records

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

    from hectl.clock import Clock
    from hectl.config import Config
    from hectl.storage.backend import StorageBackend

log = logging.getLogger("hectl.ha")


class Fencer:
    def __init__(
        self, cfg: Config, backend: StorageBackend, clock: Clock, methods: Callable[[], dict[str, Callable[..., object]]]
    ) -> None:
        self.cfg = cfg
        self.backend = backend
        self.clock = clock
        self.methods = methods
        self.worker: threading.Thread | None = None
        self.began = 0.0
        self.outcome = ""

    def limit(self) -> float:
        """How long one fencing may take: the device's off and status, and the lockspace reads and write."""
        return 2 * self.cfg.fencing.timeout + 4 * self.cfg.storage.timeout + 5

    def begin(self, target: int, why: str) -> None:
        if self.worker is not None and self.worker.is_alive():
            return
        self.outcome, self.began = "running", self.clock.monotonic()
        self.worker = threading.Thread(target=self._run, args=(target, why), name="fence", daemon=True)
        self.worker.start()

    def result(self) -> str:
        if self.outcome == "running" and self.clock.monotonic() - self.began > self.limit():
            return f"failed: fencing did not finish within {self.limit():.0f} s"
        return self.outcome

    def _run(self, target: int, why: str) -> None:
        cfg, timeout = self.cfg, self.cfg.storage.timeout
        entry: dict[str, object] = {"action": "fence-off", "host_id": target, "by": "agent", "why": why}
        try:
            paths = self.backend.paths()
            seen = lease.read_delta(paths, target, timeout)
            dev = device.configured(cfg.fencing, target)
            entry["device"] = dev.describe()
            method = device.build(cfg.fencing, target, self.methods())
            out = fence.power_off(method, target, dev.describe(), cfg.fencing.timeout)
            if not out.confirmed:
                self._done(entry, f"failed: {out.reason}")
                return
            lease.free_host_id(paths, seen, timeout)
            self._done(entry, f"confirmed: {dev.describe()} reported it off in {out.elapsed:.1f} s; its sanlock host id is free")
        except HectlError as exc:
            self._done(entry, f"failed: {exc.message}")

    def _done(self, entry: dict[str, object], outcome: str) -> None:
        result, _, detail = outcome.partition(": ")
        entry |= {"at": records.iso_time(self.clock.wall()), "by_host_id": self.cfg.host.id, "result": result, "reason": detail}
        problem = audit.append(self.cfg.audit_log, entry)
        (log.warning if result == "failed" else log.info)("fencing host %s %s: %s", entry["host_id"], result, detail)
        if problem:
            log.warning("%s", problem)
        self.outcome = outcome
