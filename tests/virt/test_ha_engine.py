"""``hectl ha run`` drives the real VM layer: one host with real sanlock + libvirtd + QEMU and the appliance.

The agent starts the engine under its lease and reaches EngineUp with the
liveliness probe green; a SIGKILL of QEMU makes it bring the engine back; under
global maintenance it leaves the engine down; vm-status shows each state.
"""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.virt.vmlab import VMLab, running, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.slow]
AGENT = "loop = 2\nhistory = 6\n"  # [ha]


@pytest.fixture(scope="module")
def lab() -> Iterator[VMLab]:
    with running(AGENT, join=()) as lab:
        yield lab


class Watcher:
    """Polls ``vm-status --json``; remembers every (state, vm, health) of host 1 it saw."""

    def __init__(self, lab: VMLab) -> None:
        self.lab = lab
        self.seen: list[tuple[str, str, str]] = []

    def host1(self) -> dict[str, Any]:
        res = self.lab.hectl("vm-status", "--json")
        assert res.returncode == 0, res.stderr
        row = next(h for h in json.loads(res.stdout)["hosts"] if h["host_id"] == 1)
        engine = row["engine"] or {}
        now = (row["state"] or "", engine.get("vm", ""), engine.get("health", ""))
        if not self.seen or self.seen[-1] != now:
            self.seen.append(now)
        return row

    def until(self, predicate, timeout: float, what: str) -> float:  # type: ignore[no-untyped-def]
        took, _ = wait_until(lambda: predicate(self.host1()), timeout, f"{what} (seen: {self.seen})", every=0.5)
        return float(took)


def up_and_healthy(row: dict[str, Any]) -> bool:
    return row["state"] == "EngineUp" and row["engine"]["vm"] == "up" and row["engine"]["health"] == "good"


def qemu_pid(lab: VMLab) -> int:
    line = lab.lease_line()
    return int(line.rsplit(" p ", 1)[1]) if " p " in line else 0


def test_agent_starts_restarts_and_respects_global_maintenance(lab: VMLab) -> None:
    watch = Watcher(lab)
    agent = lab.spawn("ha", "run", log=lab.base / "agent.log")
    took = watch.until(up_and_healthy, 150, "engine up and healthy")
    print(f"\nagent start to EngineUp with liveliness green: {took:.1f} s")
    states = [s for s, _, _ in watch.seen]
    assert "EngineStart" in states or "EngineStarting" in states, watch.seen
    assert "running, tcg" in watch.host1()["engine"]["detail"]
    table = lab.hectl("vm-status").stdout
    assert "EngineUp" in table and "up/good [running, tcg]" in table, table
    first = qemu_pid(lab)
    assert first > 0  # QEMU holds the engine lease

    # The engine's QEMU dies: the agent notices and starts it again.
    watch.seen.clear()
    os.kill(first, signal.SIGKILL)
    took = watch.until(lambda r: up_and_healthy(r) and qemu_pid(lab) not in (0, first), 150, "engine back")
    print(f"QEMU killed to engine healthy again: {took:.1f} s; states {watch.seen}")
    assert any(s in ("EngineUnexpectedlyDown", "EngineDown", "EngineStart", "EngineStarting") for s, _, _ in watch.seen)

    # Under global maintenance the agent leaves a dead engine alone.
    res = lab.hectl("set-maintenance", "--mode", "global")
    assert res.returncode == 0, res.stderr
    watch.until(lambda r: r["state"] == "GlobalMaintenance", 20, "GlobalMaintenance")
    os.kill(qemu_pid(lab), signal.SIGKILL)
    watch.until(lambda r: r["engine"]["vm"] != "up", 20, "engine seen down")
    time.sleep(12)  # six agent loops
    row = watch.host1()
    assert row["state"] == "GlobalMaintenance" and row["engine"]["vm"] != "up"
    assert lab.libvirtd.domains() == [] and lab.lease_line() == ""

    # Maintenance off: the engine comes back.
    res = lab.hectl("set-maintenance", "--mode", "none")
    assert res.returncode == 0, res.stderr
    watch.until(up_and_healthy, 150, "engine up after maintenance")

    agent.send_signal(signal.SIGTERM)
    agent.wait(30)
    assert agent.returncode == 0, (lab.base / "agent.log").read_text()[-3000:]
