"""Who is live: a host is live while its record's sequence number keeps changing.

Changes are timed on *this* host's monotonic clock, so clock skew or a wall
clock jump on any host cannot make a dead host look live or a live one dead.
"""

from __future__ import annotations

from hectl.frozen import Frozen


class Seen(Frozen):
    seq: int
    changed_at: float  # local monotonic time the sequence number was last seen to change


class LivenessTracker:
    """Remembers each host's last sequence number and when it changed."""

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
