"""Randomized fault schedules on the simulator, checking safety and liveness.

Safety: the engine never runs on two hosts at once. Liveness: the engine is
up again within ``sim.liveness_bound`` of the fault (more for an unhealthy
engine) while some host could run it. Both are checked by the simulator after
every event; here we also require that, once every fault has ended and some
host could run the engine again, the engine is healthy again within the bound.
"""

from __future__ import annotations

import random

from hectl.frozen import Frozen
from hectl.ha.scenario import Event, Scenario, run
from hectl.ha.sim import liveness_bound

# fault -> what ends it
FAULTS = {
    "power-off": "power-on",
    "host-shutdown": "power-on",
    "network-down": "network-up",
    "storage-lost": "storage-back",
    "metadata-io-lost": "metadata-io-back",
    "sanlock-io-lost": "sanlock-io-back",
    "vm-start-fails": "vm-start-works",
    "health-bad": "health-good",
    "libvirt-down": "libvirt-up",
    "local-maintenance": "local-maintenance-off",
    "agent-stop": "agent-start",
    "migration-fails": "migration-works",
}
INSTANT = ("agent-restart", "vm-crash", "storage-stall", "clock-jump", "host-reboot", "vm-migrate")
# with fencing, the devices fail too (and power loss, the fast path's fault, is drawn more often)
FENCE_FAULTS = {"fence-fails": "fence-works", "fence-slow": "fence-works", "fence-keeps-on": "fence-works"}
ENDS = tuple(dict.fromkeys(FAULTS.values()))


class Outcome(Frozen):
    seed: int
    violations: tuple[str, ...]
    recovered_after: float | None  # seconds from the end of the faults (or later, once a host could run it) to a healthy engine
    bound: float
    fencings: tuple[int, int] = (0, 0)  # fencings confirmed, failed

    @property
    def ok(self) -> bool:
        return not self.violations and self.recovered_after is not None and self.recovered_after <= self.bound


def random_scenario(
    seed: int, hosts: int = 3, faults: int = 8, span: float = 900.0, quiet: float = 600.0, fencing: bool = False
) -> Scenario:
    """A schedule of ``faults`` random faults within ``span`` seconds, all ended by then, then ``quiet`` seconds.

    With ``fencing``, every host has a fence device, ``[fencing] dead_after`` is drawn, and device faults
    (failing, silent, keeping the host on) join the draws."""
    rng = random.Random(seed)
    ending = {**FAULTS, **FENCE_FAULTS} if fencing else FAULTS
    kinds = [*ending, *INSTANT, *(["power-off"] * 3 if fencing else [])]
    events = []
    for _ in range(faults):
        at = round(rng.uniform(30, span - 60), 1)
        host = rng.randint(1, hosts)
        kind = rng.choice(kinds)
        if kind in ending:
            end = round(min(span, at + rng.uniform(5, 300)), 1)
            events += [Event(at, kind, host), Event(end, ending[kind], host)]
        elif kind == "storage-stall":
            events.append(Event(at, kind, host, duration=round(rng.uniform(5, min(200, span - at)), 1)))
        elif kind == "clock-jump":
            events.append(Event(at, kind, host, seconds=rng.choice([-86400, -60, 30, 3600])))
        elif kind == "vm-migrate":  # by hand, to any host: it happens only where the engine runs and the target can take it
            events.append(Event(at, kind, host, to=rng.randint(1, hosts)))
        else:
            events.append(Event(at, kind, host))
    # end every fault at ``span`` whatever the draws did (a later power-off may have undone an earlier power-on)
    ends = (*ENDS, "fence-works") if fencing else ENDS
    events += [Event(span, end, h) for end in ends for h in range(1, hosts + 1)]
    fence_after = rng.choice([12.0, 15.0, 30.0, 60.0]) if fencing else None
    name = f"random-{seed}" + ("-fencing" if fencing else "")
    return Scenario(name, "randomized faults", hosts, span + quiet, rng.randint(0, hosts), tuple(events), fence_after=fence_after)


def check(seed: int, **kw: float | bool) -> Outcome:
    sc = random_scenario(seed, **kw)  # type: ignore[arg-type]
    span = max(e.at for e in sc.events)
    result = run(sc)
    since = result.healthy_since
    start = max(span, result.blocked_at or 0.0)  # e.g. a host powered on at ``span`` must rejoin first
    recovered = None if since is None else max(0.0, since - start)
    fencings = tuple(sum(1 for e in result.timeline if e.what == f"fence: {w}") for w in ("confirmed", "failed"))
    return Outcome(seed, result.violations, recovered, liveness_bound(sc.sim, sc.timings), fencings)  # type: ignore[arg-type]
