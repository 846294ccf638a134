"""The agent's fencing of the engine's host: power it off through its device, confirm it, free its host id.

It runs in a thread (a device may take ``[fencing] timeout`` per action) while
the agent keeps publishing; ``result()`` is what the state machine reads: an
``fsm.Outcome`` (none yet, RUNNING, DONE: confirmed off and its host id freed,
FAILED and why; ``takeover.fence_and_free``). Every attempt is audited.
"""

from __future__ import annotations

import logging
import threading

from hectl import audit, lease
from hectl.errors import HectlError, LockHeld
from hectl.fencing import agent, device, takeover
from hectl.ha.fsm import DONE, FAILED, RUNNING, Judged, Outcome
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
        self.worker_target = 0
        self.began = 0.0
        self.attempt = 0  # only the current attempt's worker sets ``outcome``: a late one is never read for another
        self.outcome = Outcome()

    def limit(self) -> float:
        """How long one fencing can take at worst: three device actions (status, off, status; each killed
        after ``[fencing] timeout`` and then awaited ``KILL_WAIT``), five storage operations (the record and
        the delta lease read again before the off; read, release and read after it) and 5 s for starting
        processes."""
        return 3 * (self.cfg.fencing.timeout + agent.KILL_WAIT) + 5 * self.cfg.storage.timeout + 5

    def begin(self, target: int, why: str, judged: Judged | None = None) -> None:
        self.attempt += 1
        if self.worker is not None and self.worker.is_alive():  # past limit(): never two at once
            late = self.clock.monotonic() - self.began
            self.outcome = Outcome(FAILED, f"the fencing of host {self.worker_target} begun {late:.0f} s ago has not ended")
            return
        self.outcome, self.began, self.worker_target = Outcome(RUNNING), self.clock.monotonic(), target
        args = (target, why, judged, self.attempt)
        self.worker = threading.Thread(target=self._run, args=args, name="fence", daemon=True)
        self.worker.start()

    def result(self) -> Outcome:
        if self.outcome.status == RUNNING and self.clock.monotonic() - self.began > self.limit():
            return Outcome(FAILED, f"fencing did not finish within {self.limit():.0f} s")
        return self.outcome

    def wait(self) -> None:
        """Let a fencing under way end (at most ``limit()``), so that what it did is recorded before the agent exits."""
        if self.worker is not None and self.worker.is_alive():
            left = max(0.0, self.limit() - (self.clock.monotonic() - self.began))
            log.warning("waiting up to %.0f s for the fencing of host %d to end before stopping", left, self.worker_target)
            self.worker.join(left)

    def _run(self, target: int, why: str, judged: Judged | None, attempt: int) -> None:
        cfg = self.cfg
        entry: dict[str, object] = {"action": "fence-off", "host_id": target, "by": "agent", "why": why}
        try:
            entry["device"] = device.configured(cfg.fencing, target).describe()
            dev, method = device.build(cfg.fencing, target, self.methods())
            entry["device"] = dev.describe()
            paths = self.backend.paths()
            seen = None
            if judged is not None:
                self._record_unchanged(judged)
                seen = lease.DeltaLease(target, judged.generation, judged.timestamp)
            done = takeover.fence_and_free(
                method, target, dev.describe(), cfg.fencing.timeout, paths, cfg.storage.timeout, judged=seen
            )
        except HectlError as exc:
            self._done(entry, Outcome(FAILED, exc.message), attempt)
            return
        if not done.outcome.confirmed:
            self._done(entry, Outcome(FAILED, done.outcome.reason), attempt)
        elif not done.freed:
            self._done(entry, Outcome(FAILED, f"the host is off but its sanlock host id is not free: {done.problem}"), attempt)
        else:
            took = done.outcome.elapsed
            how = f"{dev.describe()} reported it off in {took:.1f} s; its sanlock host id is free"
            self._done(entry, Outcome(DONE, how), attempt)

    def _record_unchanged(self, judged: Judged) -> None:
        """``LockHeld`` when the host's record changed since it was judged dead (it lives: no power-off)."""
        from hectl.storage.metadata import MetadataStore

        rec = MetadataStore(self.backend, self.clock, self.cfg.storage.timeout).read_slot(judged.host_id).record
        if not isinstance(rec, records.HostRecord) or rec.seq != judged.record_seq:
            now = rec.seq if isinstance(rec, records.HostRecord) else "unreadable"
            raise LockHeld(
                f"host {judged.host_id}'s record changed since it was judged dead (sequence {judged.record_seq} -> {now}): "
                "not powered off"
            )

    def _done(self, entry: dict[str, object], outcome: Outcome, attempt: int) -> None:
        result = "confirmed" if outcome.status == DONE else "failed"  # the audit log's words
        entry |= {"at": records.iso_time(self.clock.wall()), "by_host_id": self.cfg.host.id, "result": result}
        entry["reason"] = outcome.detail
        problem = audit.append(self.cfg.audit_log, entry)
        (log.warning if result == "failed" else log.info)("fencing host %s %s: %s", entry["host_id"], result, outcome.detail)
        if problem:
            log.warning("%s", problem)
        if attempt == self.attempt:
            self.outcome = outcome
