"""Record timing on this host's monotonic clock: who is live, and when global maintenance ends.

A host is live while its record's sequence number keeps changing. Changes are
timed on *this* host's monotonic clock, so clock skew or a wall clock jump on
any host cannot make a dead host look live or a live one dead.

Global maintenance with a TTL ends when the TTL (the setter's ``expires_at -
set_at``: two readings of one clock, so a true duration) has passed on this
host's monotonic clock since this host first read that global record. No
host's wall clock is compared with another's: a host whose clock runs ahead
never ends it early, one whose clock runs behind never keeps it longer, and
all hosts end it within about one agent loop of each other (the spread of
their first reads), at most one loop after the setter's ``expires_at``. A
restarted agent carries on its predecessor's count (``resume``, from the agent
view file of the same boot); an agent on a freshly booted host, or one that
first reads the record late, counts the whole TTL from its first read: it
stays hands-off longer, never shorter.
"""

from __future__ import annotations

from hectl.frozen import Frozen

TYPE_CHECKING = False  # typing.TYPE_CHECKING would import typing (see hectl.frozen)
if TYPE_CHECKING:
    from hectl.storage.records import GlobalRecord


class Seen(Frozen):
    seq: int
    changed_at: float  # local monotonic time the sequence number was last seen to change


class LivenessTracker:
    """Remembers each host's last sequence number (or another number that changes while it lives) and when it
    changed."""

    def __init__(self, window: float) -> None:
        self.window = window
        self._seen: dict[int, Seen] = {}

    def observe(self, host_id: int, seq: int, now: float) -> tuple[bool, float]:
        """Record ``seq`` for ``host_id`` at ``now``; return (live, seconds since it last changed).

        A host seen for the first time counts as just changed: the agent never
        starts the engine before it has watched for one window, so a dead
        host's old record is recognised as stale before it can matter.
        """
        prev = self._seen.get(host_id)
        if prev is None or prev.seq != seq:
            prev = Seen(seq, now)
            self._seen[host_id] = prev
        unchanged = now - prev.changed_at
        return unchanged <= self.window, unchanged

    def seen(self, host_id: int) -> Seen | None:
        return self._seen.get(host_id)

    def forget(self, keep: set[int]) -> None:
        """Drop hosts whose slots are gone."""
        for host_id in set(self._seen) - keep:
            del self._seen[host_id]


class MaintenanceClock:
    """Judges global maintenance expiry on this host's monotonic clock (see the module docstring)."""

    def __init__(self) -> None:
        self._key: tuple[int, float, float | None] | None = None
        self._ends: float | None = None  # monotonic time the maintenance of ``_key`` ends here (None: no expiry)
        self._resumed: tuple[int, float] | None = None  # (seq, ends) carried over from a previous agent on this boot

    def resume(self, seq: int, ends: float) -> None:
        """Carry over a previous agent's count for global record ``seq`` (same boot: the same monotonic clock)."""
        self._resumed = (seq, ends)

    def in_force(self, record: GlobalRecord, now: float) -> bool:
        """Global maintenance is in force per ``record``, read at monotonic time ``now``."""
        if not record.maintenance:
            self._key = None
            return False
        key = (record.seq, record.set_at, record.expires_at)
        if key != self._key:
            self._key = key
            self._ends = None if record.expires_at is None else now + (record.expires_at - record.set_at)
            if self._ends is not None and self._resumed is not None and self._resumed[0] == record.seq:
                self._ends = min(self._ends, self._resumed[1])  # counted since the earlier agent first read it
            self._resumed = None
        left = self.remaining(now)
        return left is None or left > 0

    @property
    def seq(self) -> int | None:
        """The sequence number of the global record last judged in force (``None``: none)."""
        return None if self._key is None else self._key[0]

    def remaining(self, now: float) -> float | None:
        """Seconds until the maintenance last judged in force ends here (``None``: none, or no expiry)."""
        if self._key is None or self._ends is None:
            return None
        return self._ends - now
