"""The engine's health page probed every 100 ms from inside a lab host's network namespace, and its outages.

The prober is a child process in the namespace (``ip netns exec``); its timestamps are CLOCK_MONOTONIC, which
every process of the machine shares, so they compare with the caller's ``time.monotonic()``.
"""

from __future__ import annotations

import subprocess
import sys
import threading
from types import TracebackType

PROBER = """
import sys, time, urllib.request
url, every, timeout = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])
tick = time.monotonic()
while True:
    t = time.monotonic()
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            ok = r.status == 200
    except Exception:
        ok = False
    print(f"{t:.3f} {int(ok)}", flush=True)
    tick += every
    time.sleep(max(0.0, tick - time.monotonic()))
"""


class HealthProbe:
    """``with HealthProbe(netns, url) as probe:`` ... then ``probe.outages()``."""

    def __init__(self, netns: str, url: str, every: float = 0.1, timeout: float = 0.5) -> None:
        self.argv = ["ip", "netns", "exec", netns, sys.executable, "-c", PROBER, url, str(every), str(timeout)]
        self.samples: list[tuple[float, bool]] = []
        self.proc: subprocess.Popen[str] | None = None
        self.reader: threading.Thread | None = None

    def __enter__(self) -> HealthProbe:
        self.proc = subprocess.Popen(self.argv, stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True)
        self.reader = threading.Thread(target=self._read, name="health-probe", daemon=True)
        self.reader.start()
        return self

    def _read(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        for line in self.proc.stdout:
            t, ok = line.split()
            self.samples.append((float(t), ok == "1"))

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(10)
        if self.reader is not None:
            self.reader.join(10)

    def outages(self, since: float = 0.0) -> list[tuple[float, float]]:
        """(monotonic start, seconds) of each run of failed probes after ``since``: from the first failed probe to
        the first answered one after it (an outage still going at the end lasts to the last probe)."""
        out: list[tuple[float, float]] = []
        began: float | None = None
        for t, ok in self.samples:
            if t < since:
                continue
            if not ok and began is None:
                began = t
            elif ok and began is not None:
                out.append((began, t - began))
                began = None
        if began is not None:
            out.append((began, self.samples[-1][0] - began))
        return out
