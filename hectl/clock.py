"""The one source of time: a Clock interface, the system clock and a virtual clock.

Monotonic time measures intervals and deadlines on this host; wall time is only
for humans and for absolute expiries (e.g. a maintenance TTL). Never compare two
hosts' clocks for liveness: compare a record's *change* against local monotonic time.
"""

from __future__ import annotations

import time

TYPE_CHECKING = False  # typing.TYPE_CHECKING would import typing (see hectl.frozen)
if TYPE_CHECKING:
    import threading
    from typing import Protocol
else:
    Protocol = object  # the protocol is for type checkers; at run time Clock is a plain class


class Clock(Protocol):
    """What every clock provides."""

    def monotonic(self) -> float:
        """Seconds on a clock that never jumps (this host only)."""
        ...

    def wall(self) -> float:
        """Seconds since the Unix epoch (may jump; for humans and expiries)."""
        ...

    def sleep(self, seconds: float, stop: threading.Event | None = None) -> bool:
        """Sleep up to ``seconds``; return True if ``stop`` was set meanwhile."""
        ...


class SystemClock:
    """The real clock of this host."""

    def monotonic(self) -> float:
        return time.monotonic()

    def wall(self) -> float:
        return time.time()

    def sleep(self, seconds: float, stop: threading.Event | None = None) -> bool:
        if stop is None:
            time.sleep(max(0.0, seconds))
            return False
        return stop.wait(max(0.0, seconds))


class VirtualClock:
    """A clock that only moves when told to; ``sleep`` advances it instantly."""

    def __init__(self, monotonic: float = 1000.0, wall: float = 1_700_000_000.0) -> None:
        self._mono = monotonic
        self._wall = wall

    def monotonic(self) -> float:
        return self._mono

    def wall(self) -> float:
        return self._wall

    def advance(self, seconds: float) -> None:
        self._mono += seconds
        self._wall += seconds

    def jump_wall(self, seconds: float) -> None:
        """Step the wall clock only (an NTP correction); monotonic time is unaffected."""
        self._wall += seconds

    def sleep(self, seconds: float, stop: threading.Event | None = None) -> bool:
        if stop is not None and stop.is_set():
            return True
        self.advance(max(0.0, seconds))
        return False
