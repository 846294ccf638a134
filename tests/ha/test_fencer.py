"""The agent's fencer (hectl/ha/fencer.py) and a restarted agent's memory of its fencings, with a fence method
that blocks until the test lets it go (the edge), on a real localfs domain."""

from __future__ import annotations

import threading

from conftest import Domain

from hectl import config, localstate
from hectl.clock import VirtualClock
from hectl.fencing.agent import KILL_WAIT
from hectl.fencing.device import Answer, FenceMethod
from hectl.ha import daemon, fsm
from hectl.ha.fencer import Fencer
from tests.ha.test_daemon import FakeLeases, StopAfter


class Held(FenceMethod):
    """Answers each action once the test sets ``go``: off 0, status 2 (off)."""

    name = "held"

    def __init__(self) -> None:
        self.go = threading.Event()

    def run(self, action: str, timeout: float) -> Answer:
        self.go.wait(30)
        return Answer({"off": 0, "status": 2}.get(action, 0), f"{action} done", 0.1)


def fencing_config(domain: Domain) -> config.Config:
    with open(domain.config, "a") as f:
        f.write("[fencing]\nhost2 = held outlet=2\nhost3 = held outlet=3\ntimeout = 7\n")
    return config.load(str(domain.config), {})


def test_the_limit_covers_the_worst_case_and_a_late_outcome_is_never_read_for_a_new_attempt(domain: Domain) -> None:
    cfg = fencing_config(domain)
    clock = VirtualClock()
    held = Held()
    fencer = Fencer(cfg, domain.app().backend(), clock, lambda: {"held": lambda dev, secrets, cfg: held})
    # three device actions, each killed at its timeout and awaited KILL_WAIT, and five storage operations
    assert fencer.limit() >= 3 * (7 + KILL_WAIT) + 5 * cfg.storage.timeout
    fencer.begin(2, "judged dead")
    assert fencer.result() == fsm.Outcome(fsm.RUNNING)
    clock.advance(fencer.limit() + 1)
    assert fencer.result().status == fsm.FAILED and "did not finish within" in fencer.result().detail
    fencer.begin(3, "judged dead")  # the first worker still runs: no second one, and no stale answer
    assert fencer.result().status == fsm.FAILED and "fencing of host 2 begun" in fencer.result().detail
    held.go.set()
    assert fencer.worker is not None
    fencer.worker.join(30)
    assert fencer.result().status == fsm.FAILED  # host 2's late end is audited, never read as host 3's
    audit = (domain.state_dir / "audit.log").read_text()
    assert '"host_id": 2' in audit and '"host_id": 3' not in audit


def test_a_restarted_agent_remembers_its_fencings_for_retry_window(domain: Domain) -> None:
    fencing_config(domain)
    stop, reload = threading.Event(), threading.Event()
    clock = StopAfter(stop, reload, cycles=2, reload_at=0, on_reload=lambda: None)
    wall = clock.wall()
    view = localstate.AgentView(1, fsm.S.DOWN, localstate.boot_id(), clock.monotonic(), wall, {})
    fencings = ((2, fsm.FENCE_FAILED, wall - 100), (3, fsm.FENCE_FAILED, wall - 700), (4, "bogus", wall))
    localstate.write_agent_view(str(domain.state_dir), view._replace(fencings=fencings))
    backend = domain.app(clock=clock).backend()
    daemon.run(lambda: config.load(str(domain.config), {}), backend, clock, stop, reload, None, FakeLeases())  # type: ignore[arg-type]
    after = localstate.read_agent_view(str(domain.state_dir))
    assert after is not None
    assert [(h, k) for h, k, _ in after.fencings] == [(2, fsm.FENCE_FAILED)]  # host 3's is older than retry_window
    left = dict(after.timers)["may fence host 2 again (fencing it failed)"]
    assert 600 - 100 - 3 * 10 <= left <= 500
