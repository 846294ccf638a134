"""Property tests: no remote record, however wrong, keeps a healthy host from starting the engine (docs/simulate.md).

The assumption: no host holds the engine lease (sanlock knows the engine runs
nowhere). Then whatever the other hosts' records say (any score, state, VM and
health strings, flags, live or stale, any sanlock view of their host-id
leases, changing from one cycle to the next), a healthy host starts the engine
within k x (claim_wait + loop) + loop, k being the number of other hosts; and
in the simulated cluster the engine never runs twice.
"""

from __future__ import annotations

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from hectl.config import HAConfig, ScoreConfig
from hectl.ha import fsm, scenario, sim
from hectl.ha.score import HostHealth
from hectl.lease import LEASE_FREE
from hectl.storage import records

T = HAConfig()
CFG = ScoreConfig()
HEALTHY = HostHealth(network_ok=5, network_probes=5, bridge_up=True, mem_free_mib=16384, cpu_load=0.1)
STATES = st.sampled_from([*fsm.ALL_STATES, "", "Bogus"])
VMS = st.sampled_from(["up", "paused", "starting", "down", "unknown", ""])
HEALTHS = st.sampled_from(["good", "bad", "unknown", ""])
SCORES = st.one_of(st.sampled_from([-1, 0, 3399, 3400, 3401, 2**31 - 1]), st.integers(0, 3400), st.integers(-(2**31), 2**31 - 1))
LEASES = st.sampled_from(["live", "fail", "dead", "free", "unknown"])


def remote(host_id: int) -> st.SearchStrategy[fsm.RemoteHost]:
    return st.builds(
        fsm.RemoteHost,
        host_id=st.just(host_id),
        live=st.booleans(),
        lease=LEASES,
        state=STATES,
        score=SCORES,
        vm=VMS,
        health=HEALTHS,
        local_maintenance=st.booleans(),
    )


View = tuple[fsm.RemoteHost, ...]
VIEW = st.lists(st.sampled_from([2, 3, 4, 5]), unique=True, max_size=4).flatmap(
    lambda ids: st.tuples(*(remote(i) for i in sorted(ids)))
)


@settings(max_examples=300, deadline=None)
@given(views=st.lists(VIEW, min_size=1, max_size=8), host_id=st.sampled_from([1, 3, 6]))
def test_a_healthy_host_starts_the_engine_whatever_the_others_publish(views: list[View], host_id: int) -> None:
    others = {h.host_id for v in views for h in v} - {host_id}
    bound = len(others) * (fsm.claim_wait(T) + T.loop) + T.loop
    mem, now = fsm.Memory(fsm.S.DOWN, 0.0), 1000.0
    for i in range(10_000):
        hosts = tuple(h for h in views[i % len(views)] if h.host_id != host_id)
        obs = fsm.Observations(
            now=now, host_id=host_id, history=600.0, vm=fsm.LocalVM("down"), health=HEALTHY, engine_mem_mib=4096,
            hosts=hosts, engine_lease=LEASE_FREE,
        )  # fmt: skip
        d = fsm.step(mem, obs, CFG, T)
        if fsm.START in d.actions:
            break
        assert now - 1000.0 <= bound, f"not started after {now - 1000.0:.0f} s: {d.reason}"
        mem, now = d.memory, now + (d.delay or T.loop)


ROGUE = st.builds(
    records.HostRecord,
    host_id=st.just(0),
    seq=st.integers(0, 2**63),
    wall_time=st.floats(-1e12, 1e12),  # never decided upon: any wall time
    score=SCORES,
    state=STATES,
    engine=st.builds(records.EngineStatus, VMS, HEALTHS, st.just("rogue"), st.just("claims")),
    hostname=st.just("rogue"),
    local_maintenance=st.booleans(),
    stopped=st.sampled_from([False, False, True]),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    rogues=st.lists(st.tuples(ROGUE, st.booleans(), st.sampled_from(["renewing", "lapsed", "none"])), min_size=1, max_size=2),
    first=st.integers(1, 4),
    n_honest=st.integers(1, 2),
    fault=st.sampled_from(["cold-start", "crash", "gateway-lost"]),
)
@example(  # a live record at full score in a state that cannot start the engine: yielding to it would never end
    rogues=[(records.HostRecord(0, 5, 0.0, 3400, "Bogus", records.EngineStatus("down"), "rogue"), True, "renewing")],
    first=2,
    n_honest=1,
    fault="gateway-lost",
)
def test_a_cluster_with_rogue_records_runs_one_engine_within_the_bound(
    rogues: list[tuple[records.HostRecord, bool, str]], first: int, n_honest: int, fault: str
) -> None:
    """Rogue slots (any record, republished every loop or written once, sanlock lease renewing, lapsed or never
    joined) among 1 or 2 honest simulated hosts running the real agent. The engine starts from nowhere, or crashes, or
    its host loses its gateway (score 1800: it yields to the other honest host, if any; it may yield to a rogue once)."""
    total = n_honest + len(rogues)
    rogue_ids = [(i - 1) % total + 1 for i in range(first, first + len(rogues))]
    honest = [i for i in range(1, total + 1) if i not in rogue_ids]
    sc = scenario.Scenario("hostage", "", total, 1200.0, 0, ())
    world = sim.World(total, sc.sim, sc.timings)
    for i, (rec, live, lease) in zip(rogue_ids, rogues, strict=True):
        _rogue(world, rec._replace(host_id=i), live, lease)
    engine = world.hosts[honest[0]]
    for i in honest:
        world.power_on(world.hosts[i], scenario.agent_config(i, sc), engine_running=fault != "cold-start" and i == engine.id)
    down_at = 0.0 if fault == "cold-start" else 200.0
    if fault == "crash":
        world.at(down_at, lambda: world.crash_vm(engine))
    elif fault == "gateway-lost":
        world.at(down_at, lambda: setattr(engine, "network_ok", False))
    # joining and history (cold start), each rogue waited on once, the wait for the engine lease of a crashed
    # engine (none: QEMU's exit released it) or a yielded one (a graceful stop released it), the start and boot
    per_outage = sc.sim.join + sc.timings.history + len(rogues) * (fsm.claim_wait(T) + T.loop) + 3 * T.loop + sc.sim.boot
    down_for = 0.0
    while world.now < sc.duration:
        world.run(world.now + 1.0)
        if world.now > down_at and world.up_since is None:
            down_for += 1.0
    yields = [e for e in world.timeline if e.what == "EngineUp -> EngineStop"]
    assert not world.violations
    assert world.up_since is not None and len(yields) <= len(rogues) + 1, [e.line() for e in world.timeline]
    assert down_for <= (len(yields) + 1) * (per_outage + sc.sim.shutdown), [e.line() for e in world.timeline]


def _rogue(world: sim.World, rec: records.HostRecord, live: bool, lease: str) -> None:
    seq = [rec.seq]

    def write() -> None:
        seq[0] = (seq[0] + 1) % 2**64
        world.meta[rec.host_id * records.SLOT_SIZE : (rec.host_id + 1) * records.SLOT_SIZE] = records.encode_host(
            rec._replace(seq=seq[0])
        )
        if lease == "renewing":
            world.renewals[rec.host_id] = world.now
        if live:
            world.at(world.now + T.loop, write)

    if lease == "lapsed":
        world.renewals[rec.host_id] = 0.0  # renewed once at t=0: fail at 80 s, dead at 140 s
    world.at(0.0, write)
