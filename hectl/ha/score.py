"""The host score: how fit this host is to run the engine, with every penalty explained.

Pure: inputs in, a ``Score`` out. Defaults follow the original (base 3400;
network up to 1600, outdated shared config 1000, management bridge 600, free
memory 400, CPU load up to 1000, 50 per failed start) so mixed fleets rank
hosts alike; ``[score]`` in the configuration changes them (the same on every
host). Each penalty carries the input that caused it, so ``hectl explain``
never has to say "3400 minus something".
"""

from __future__ import annotations

from hectl.frozen import Frozen

TYPE_CHECKING = False  # typing.TYPE_CHECKING would import typing (see hectl.frozen)
if TYPE_CHECKING:
    from hectl.config import ScoreConfig

MAX_FAILED_STARTS = 3
"""More engine failures than this (failed starts, crashes; within the retry window) zero the score."""


class HostHealth(Frozen):
    """What the monitors measured on this host; ``None`` means the monitor had no value yet."""

    network_ok: int | None = None  # gateway probes answered ...
    network_probes: int = 0  # ... out of this many
    bridge_up: bool | None = None
    bridge_name: str = ""
    mem_free_mib: int | None = None
    cpu_load: float | None = None  # time-weighted average over the history, engine VM excluded, 0..1
    config_current: bool = True  # the engine VM spec this host would run (or runs) is the domain's current one ...
    config_cause: str = ""  # ... and if not, why


class Penalty(Frozen):
    name: str  # network | config | bridge | memory | cpu | failed-starts
    points: int
    cause: str


class Score(Frozen):
    total: int
    base: int
    penalties: tuple[Penalty, ...] = ()
    zeroed_by: str = ""  # why the state forces 0 (local maintenance, lost start race...), else ""

    def explain(self) -> list[str]:
        """One line per term, for humans."""
        lines = [f"base {self.base}"]
        lines += [f"-{p.points} {p.name}: {p.cause}" for p in self.penalties]
        if self.zeroed_by:
            lines.append(f"= 0: {self.zeroed_by}")
        else:
            lines.append(f"= {self.total}")
        return lines


def compute(
    health: HostHealth,
    cfg: ScoreConfig,
    *,
    engine_mem_mib: int,
    engine_here: bool,
    global_maintenance: bool,
    failed_starts: int = 0,
    zeroed_by: str = "",
) -> Score:
    """Score this host.

    ``engine_here``: the engine runs on this host (its memory is in use, so the
    free-memory check is skipped, as it is under global maintenance).
    ``zeroed_by``: the agent state forces the score to 0 for this reason.
    """
    penalties: list[Penalty] = []

    if health.network_ok is not None and health.network_probes and health.network_ok < health.network_probes:
        lost = health.network_probes - health.network_ok
        penalties.append(
            Penalty(
                "network",
                lost * cfg.network_penalty // health.network_probes,  # integers: 4/5 answered costs exactly 320
                f"{health.network_ok}/{health.network_probes} gateway probes answered",
            )
        )
    if not health.config_current:
        cause = health.config_cause or "local configuration differs from the shared one"
        penalties.append(Penalty("config", cfg.config_penalty, cause))
    if health.bridge_up is not True:
        bridge = health.bridge_name or "management bridge"
        cause = f"{bridge} is down" if health.bridge_up is False else f"{bridge} state unknown"
        penalties.append(Penalty("bridge", cfg.bridge_penalty, cause))
    if health.mem_free_mib is not None and health.mem_free_mib < engine_mem_mib and not engine_here and not global_maintenance:
        penalties.append(
            Penalty("memory", cfg.memory_penalty, f"{health.mem_free_mib} MiB free < {engine_mem_mib} MiB for the engine")
        )
    if health.cpu_load is not None:
        points = _cpu_points(health.cpu_load, cfg)
        if points:
            penalties.append(Penalty("cpu", points, f"load {health.cpu_load:.2f} (penalty from {cfg.cpu_min} to {cfg.cpu_max})"))
    if 0 < failed_starts <= MAX_FAILED_STARTS:
        cause = f"{failed_starts} engine failure(s) here recently"
        penalties.append(Penalty("failed-starts", cfg.retry_penalty * failed_starts, cause))
    elif failed_starts > MAX_FAILED_STARTS and not zeroed_by:
        zeroed_by = f"{failed_starts} engine failures here recently (more than {MAX_FAILED_STARTS})"

    total = 0 if zeroed_by else max(0, cfg.base - sum(p.points for p in penalties))
    return Score(total, cfg.base, tuple(penalties), zeroed_by)


def _cpu_points(load: float, cfg: ScoreConfig) -> int:
    if cfg.cpu_max <= cfg.cpu_min:
        return cfg.cpu_penalty if load >= cfg.cpu_max else 0
    fraction = (load - cfg.cpu_min) / (cfg.cpu_max - cfg.cpu_min)
    return int(min(1.0, max(0.0, fraction)) * cfg.cpu_penalty)
