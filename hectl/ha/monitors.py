"""Host monitors: what the score is made of, measured on this host.

Each monitor is registered through the ``hectl_register_monitors`` hook (the
built-ins below, and any plugin's), built from the configuration, and sampled
once per agent cycle. ``sample_all`` contains failures: a monitor that raises
gives no value (the score says "unknown") and never stops the loop.

Built-in: ``network`` (gateway probes: ping, dns, tcp or none; several probes,
the ratio answered counts), ``bridge`` (the management bridge is up),
``memory`` (MemAvailable), ``cpu`` (load from /proc/stat, averaged over time,
the engine's QEMU left out), ``engine`` (the engine's health page, probed by
the agent only while the engine VM runs on this host).
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import socket
import subprocess

from hectl.frozen import Frozen
from hectl.hookspecs import hookimpl

TYPE_CHECKING = False  # typing.TYPE_CHECKING would import typing (see hectl.frozen)
if TYPE_CHECKING:
    from collections.abc import Callable

    from hectl.clock import Clock
    from hectl.config import Config
    from hectl.ha.score import HostHealth

log = logging.getLogger("hectl.ha")


class Reading(Frozen):
    name: str
    value: object  # None: no value
    detail: str = ""


class NetworkMonitor:
    """Probe the gateway ``probes`` times; the value is (answered, probes)."""

    name = "network"

    def __init__(self, cfg: Config, clock: Clock) -> None:
        self.cfg = cfg.monitors

    def _probe(self) -> bool:
        c = self.cfg
        if c.network_test == "tcp":
            with contextlib.suppress(OSError), socket.create_connection((c.gateway, c.tcp_port), timeout=c.probe_timeout):
                return True
            return False
        if c.network_test == "ping":
            argv = [shutil.which("ping") or "ping", "-c", "1", "-n", "-W", str(max(1, int(c.probe_timeout))), c.gateway]
        else:  # dns
            argv = ["getent", "hosts", c.dns_name]
        try:
            return subprocess.run(argv, capture_output=True, timeout=c.probe_timeout + 1).returncode == 0
        except (OSError, subprocess.TimeoutExpired):
            return False

    def sample(self) -> Reading:
        c = self.cfg
        if c.network_test == "none":
            return Reading(self.name, (c.probes, c.probes), "network test disabled")
        ok = sum(self._probe() for _ in range(c.probes))
        target = c.dns_name if c.network_test == "dns" else c.gateway
        return Reading(self.name, (ok, c.probes), f"{c.network_test} {target}: {ok}/{c.probes}")


class BridgeMonitor:
    """The management bridge's operstate (no bridge configured: nothing to lose)."""

    name = "bridge"

    def __init__(self, cfg: Config, clock: Clock) -> None:
        self.bridge = cfg.monitors.bridge

    def sample(self) -> Reading:
        if not self.bridge:
            return Reading(self.name, True, "no management bridge configured")
        try:
            with open(f"/sys/class/net/{self.bridge}/operstate", encoding="ascii") as f:
                state = f.read().strip()
        except OSError:
            return Reading(self.name, False, f"{self.bridge} does not exist")
        return Reading(self.name, state in ("up", "unknown"), f"{self.bridge} {state}")


class MemoryMonitor:
    name = "memory"

    def __init__(self, cfg: Config, clock: Clock) -> None:
        pass

    def sample(self) -> Reading:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    mib = int(line.split()[1]) // 1024
                    return Reading(self.name, mib, f"{mib} MiB available")
        return Reading(self.name, None, "no MemAvailable in /proc/meminfo")


class CpuMonitor:
    """Busy fraction of all CPUs between samples, averaged over ``cpu_window`` seconds (time-weighted).

    CPU time of the processes ``exclude_pids()`` names (the engine VM's QEMU,
    set by the agent) is not load: a host is not worse for running the engine.
    """

    name = "cpu"

    def __init__(self, cfg: Config, clock: Clock) -> None:
        self.clock = clock
        self.window = cfg.monitors.cpu_window
        self.prev: tuple[float, int, int] | None = None  # (when, total jiffies, idle jiffies)
        self.history: list[tuple[float, float, float]] = []  # (start, end, busy fraction)
        self.exclude_pids: Callable[[], list[int]] = list
        self.excluded: dict[int, int] = {}  # pid -> its CPU jiffies at the previous sample

    @staticmethod
    def _process_jiffies(pid: int) -> int | None:
        try:
            with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            return None
        return int(fields[11]) + int(fields[12])  # utime + stime

    def _excluded_delta(self, first: bool) -> int:
        """CPU jiffies the excluded processes used since the previous sample (a new process: all of its time)."""
        now = {pid: j for pid in self.exclude_pids() if (j := self._process_jiffies(pid)) is not None}
        delta = 0 if first else sum(j - self.excluded.get(pid, 0) for pid, j in now.items())
        self.excluded = now
        return max(0, delta)

    @staticmethod
    def _times() -> tuple[int, int]:
        with open("/proc/stat", encoding="ascii") as f:
            fields = [int(x) for x in f.readline().split()[1:9]]
        return sum(fields), fields[3] + fields[4]  # all, idle + iowait

    def sample(self) -> Reading:
        total, idle = self._times()
        excluded = self._excluded_delta(first=self.prev is None)
        now = self.clock.monotonic()
        if self.prev is not None and total > self.prev[1]:
            busy = 1.0 - (idle - self.prev[2] + excluded) / (total - self.prev[1])
            self.history.append((self.prev[0], now, max(0.0, min(1.0, busy))))
        self.prev = (now, total, idle)
        self.history = [h for h in self.history if h[1] > now - self.window]
        span = sum(end - start for start, end, _ in self.history)
        if span <= 0:
            return Reading(self.name, None, "first sample")
        load = sum((end - start) * value for start, end, value in self.history) / span
        return Reading(self.name, round(load, 4), f"load {load:.2f} over {span:.0f} s")


class EngineHealthMonitor:
    """The engine's health page (``hectl.vm.liveliness``, as ``check-liveliness``): True healthy, False not, None unchecked."""

    name = "engine"

    def __init__(self, cfg: Config, clock: Clock) -> None:
        self.engine = cfg.engine

    def sample(self) -> Reading:
        from hectl.vm import liveliness

        url = self.engine.url()
        if not url:
            return Reading(self.name, None, "engine health is not checked: set [engine] fqdn or health_url")
        probe = liveliness.check(url, self.engine.health_timeout, self.engine.health_ca)
        return Reading(self.name, probe.healthy, probe.detail)


BUILTIN = (NetworkMonitor, BridgeMonitor, MemoryMonitor, CpuMonitor, EngineHealthMonitor)


@hookimpl
def hectl_register_monitors(register: Callable[..., None]) -> None:
    for monitor in BUILTIN:
        register(monitor.name, monitor)


def sample_all(monitors: dict[str, object], problem: Callable[[str], None]) -> dict[str, Reading]:
    """One reading per monitor; a monitor that fails yields no value and a (rate-limited) problem report."""
    out = {}
    for name, monitor in monitors.items():
        try:
            out[name] = monitor.sample()  # type: ignore[attr-defined]
        except Exception as exc:  # a broken monitor must never stop the agent
            problem(f"monitor {name} failed: {type(exc).__name__}: {exc}")
            out[name] = Reading(name, None, f"failed: {exc}")
    return out


def host_health(readings: dict[str, Reading], bridge: str) -> HostHealth:
    """The score's inputs from the readings (missing or failed: unknown)."""
    from hectl.ha.score import HostHealth

    def value(name: str) -> object:
        reading = readings.get(name)
        return None if reading is None else reading.value

    net = value("network")
    ok, probes = net if isinstance(net, tuple) else (None, 0)
    mem, cpu, up = value("memory"), value("cpu"), value("bridge")
    return HostHealth(
        network_ok=ok,
        network_probes=probes,
        bridge_up=up if isinstance(up, bool) else None,
        bridge_name=bridge or "management bridge",
        mem_free_mib=mem if isinstance(mem, int) else None,
        cpu_load=cpu if isinstance(cpu, float) else None,
    )
