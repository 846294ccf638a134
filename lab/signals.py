"""Signal handling for the lab's long-running scripts (demo, benchmarks): clean-up that Ctrl-C cannot cut short."""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Iterator


@contextlib.contextmanager
def no_interrupts() -> Iterator[None]:
    """Ctrl-C (or SIGTERM) does not cut the clean-up short."""
    previous = {sig: signal.signal(sig, signal.SIG_IGN) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def interrupted(signum: int, frame: object) -> None:
    """A SIGTERM handler: clean up like Ctrl-C."""
    raise KeyboardInterrupt
