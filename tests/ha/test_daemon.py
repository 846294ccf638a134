"""The ``ha run`` loop on a real localfs domain and a virtual clock (sanlock replaced by an in-memory stand-in)."""

from __future__ import annotations

import functools
import logging
import socket
import threading
import urllib.request

import pytest
from conftest import Domain
from prometheus_client.openmetrics.parser import text_string_to_metric_families

from hectl import config, localstate
from hectl.clock import VirtualClock
from hectl.ha import daemon, fsm
from hectl.lease import LEASE_FREE
from hectl.storage import records


class FakeLeases:
    """The sanlock edge: always joined, nobody else known, engine lease free."""

    def __init__(self) -> None:
        self.joins = 0
        self.left = False

    def join(self) -> None:
        self.joins += 1

    def state(self) -> str:
        return "held"

    def hosts(self) -> dict[int, str]:
        return {1: "live"}

    def engine_holder(self) -> int:
        return LEASE_FREE

    def leave(self) -> None:
        self.left = True


class StopAfter(VirtualClock):
    """A virtual clock whose sleeps also drive the test: reload at one cycle, stop at another."""

    def __init__(self, stop: threading.Event, reload: threading.Event, cycles: int, reload_at: int, on_reload) -> None:  # type: ignore[no-untyped-def]
        super().__init__()
        self.stop, self.reload, self.cycles, self.reload_at, self.on_reload = stop, reload, cycles, reload_at, on_reload
        self.sleeps: list[float] = []

    def sleep(self, seconds: float, stop: threading.Event | None = None) -> bool:
        self.sleeps.append(seconds)
        if len(self.sleeps) == self.reload_at:
            self.on_reload()
            self.reload.set()
        if len(self.sleeps) >= self.cycles:
            self.stop.set()
        return super().sleep(seconds, stop)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_loop_publishes_reloads_and_stops_cleanly(domain: Domain) -> None:
    stop, reload = threading.Event(), threading.Event()

    port = free_port()
    with open(domain.config, "a") as f:
        f.write(f"\n[ha]\nmetrics_port = {port}\n")
    scraped: list[str] = []

    def rename() -> None:
        domain.config.write_text(domain.config.read_text().replace("hostname = host1.example", "hostname = renamed.example"))
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:  # while the agent runs
            scraped.append(resp.read().decode())

    clock = StopAfter(stop, reload, cycles=8, reload_at=3, on_reload=rename)
    app = domain.app(clock=clock)
    leases = FakeLeases()
    daemon.run(lambda: config.load(str(domain.config), {}), app.backend(), clock, stop, reload, None, leases)  # type: ignore[arg-type]

    final = domain.store().read_slot(1).record
    assert isinstance(final, records.HostRecord)
    assert final.state == fsm.S.STOPPED and final.stopped and final.score == 0
    assert final.hostname == "renamed.example"  # SIGHUP's reload reached the published record
    assert final.seq >= 8  # one record per cycle, then the stopped one
    assert leases.joins == 1 and leases.left  # joined once; left the lockspace (no VM here)
    view = localstate.read_agent_view(str(domain.state_dir))
    assert view is not None and view.hosts[1].lease == "live" and view.storage
    assert max(clock.sleeps) <= 10.0
    families = {f.name: list(f.samples) for f in text_string_to_metric_families(scraped[0])}
    assert families["hectl_up"][0].value == 1 and families["hectl_local_agent_running"][0].value == 1
    assert [(s.labels["host_id"], s.labels["state"]) for s in families["hectl_host_state"]] == [("1", fsm.S.UNKNOWN_VM)]


def test_decisions_that_never_wait_cannot_spin_the_loop(domain: Domain, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    real_cycle = daemon.Agent.cycle
    monkeypatch.setattr(daemon.Agent, "cycle", lambda self: real_cycle(self)._replace(delay=0.0))
    stop, reload = threading.Event(), threading.Event()
    clock = StopAfter(stop, reload, cycles=3 * (daemon.MAX_IMMEDIATE + 1), reload_at=0, on_reload=lambda: None)
    app = domain.app(clock=clock)
    daemon.run(lambda: config.load(str(domain.config), {}), app.backend(), clock, stop, reload, None, FakeLeases())  # type: ignore[arg-type]
    runs, run = [], 0
    for seconds in clock.sleeps:
        run = run + 1 if seconds == 0 else 0
        runs.append(run)
    assert max(runs) == daemon.MAX_IMMEDIATE  # then a full loop delay
    assert clock.sleeps.count(10.0) >= 2


def test_agent_log_lines_escape_text_from_storage(
    domain: Domain, capfd: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from hectl.cli import root as cli
    from hectl.commands import ha_run

    evil = "engine VM spec: unknown key 'a\x1b]0;pwned\x07\nWARNING hectl.ha: forged\u202e'"  # as vmspec quotes a bad key

    def agent(*args: object, **kwargs: object) -> None:
        daemon.RateLimitedLog(VirtualClock())(f"engine VM not started: {evil}")

    monkeypatch.setattr(daemon, "run", agent)
    monkeypatch.setattr(ha_run.signal, "signal", lambda *args: None)
    root = logging.getLogger()
    monkeypatch.setattr(root, "handlers", list(root.handlers))  # the handler `ha run` adds goes away after the test
    monkeypatch.setattr(root, "level", root.level)
    assert cli.main(["ha", "run"], domain.app()) == 0
    err = capfd.readouterr().err
    assert err == (
        "WARNING hectl.ha: engine VM not started: engine VM spec: unknown key "
        "'a\\x1b]0;pwned\\x07\\nWARNING hectl.ha: forged\\u202e'\n"
    )


class Messages:
    """An sdnotify.Notifier stand-in that keeps what the loop sends."""

    def __init__(self, watchdog: float | None) -> None:
        self.watchdog = watchdog
        self.sent: list[dict[str, str]] = []

    def send(self, **fields: str) -> None:
        self.sent.append(fields)


def test_loop_reports_ready_status_watchdog_and_stopping(domain: Domain) -> None:
    stop, reload = threading.Event(), threading.Event()
    clock = StopAfter(stop, reload, cycles=12, reload_at=0, on_reload=lambda: None)
    manager = Messages(watchdog=8.0)  # the loop sleeps 10 s: pings at 4, 8 and 10 s, then the next cycle
    app = domain.app(clock=clock)
    load = functools.partial(config.load, str(domain.config), {})
    daemon.run(load, app.backend(), clock, stop, reload, None, FakeLeases(), notifier=manager)  # type: ignore[arg-type]
    first, *rest = manager.sent
    assert first["READY"] == "1" and first["WATCHDOG"] == "1"
    assert first["STATUS"] == f"{fsm.S.UNKNOWN_VM}, score 0, sanlock host id held"
    assert not any("READY" in m for m in rest)
    assert rest[-1] == {"STOPPING": "1", "STATUS": "stopping"}
    ping = {"WATCHDOG": "1"}
    assert rest[:4] == [ping, ping, ping, {"STATUS": first["STATUS"], **ping}]
    assert clock.sleeps[:4] == [4.0, 4.0, 2.0, 4.0]  # sliced at half the watchdog interval


def test_a_loop_failing_every_cycle_stops_pinging_the_watchdog(domain: Domain, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    calls = []

    def broken(self):  # type: ignore[no-untyped-def]
        calls.append(1)
        if len(calls) > 2:
            raise ZeroDivisionError("a bug")
        return real_cycle(self)

    real_cycle = daemon.Agent.cycle
    monkeypatch.setattr(daemon.Agent, "cycle", broken)
    stop, reload = threading.Event(), threading.Event()
    clock = StopAfter(stop, reload, cycles=8, reload_at=0, on_reload=lambda: None)
    manager = Messages(watchdog=30.0)
    app = domain.app(clock=clock)
    load = functools.partial(config.load, str(domain.config), {})
    daemon.run(load, app.backend(), clock, stop, reload, None, FakeLeases(), notifier=manager)  # type: ignore[arg-type]
    cycles = [m for m in manager.sent if "STATUS" in m and "STOPPING" not in m]
    assert ["WATCHDOG" in m for m in cycles] == [True, True] + [False] * (len(cycles) - 2)
    assert cycles[-1]["STATUS"] == "cycle failed unexpectedly: ZeroDivisionError"
    pings = [i for i, m in enumerate(manager.sent) if "WATCHDOG" in m]
    assert pings and pings[-1] < manager.sent.index(cycles[2])  # no ping after the first failing cycle, not even while sleeping


def test_a_watchdog_shorter_than_a_cycle_may_take_is_reported(domain: Domain, caplog: pytest.LogCaptureFixture) -> None:
    load = functools.partial(config.load, str(domain.config), {})
    assert daemon.cycle_bound(load()) == 45.0  # 4 x 5 s storage, 10 s sanlock, 10 s libvirt, 5 s health page; no probes
    warned = {}
    for watchdog in (30.0, 45.0):
        stop, reload = threading.Event(), threading.Event()
        clock = StopAfter(stop, reload, cycles=1, reload_at=0, on_reload=lambda: None)
        caplog.clear()
        backend = domain.app(clock=clock).backend()
        daemon.run(load, backend, clock, stop, reload, None, FakeLeases(), notifier=Messages(watchdog))  # type: ignore[arg-type]
        warned[watchdog] = [r.getMessage() for r in caplog.records if "WatchdogSec" in r.getMessage()]
    assert warned[30.0] == [
        "WatchdogSec=30 is shorter than one cycle may take with this configuration (45 s): "
        "a slow but working loop would be killed; raise WatchdogSec"
    ]
    assert warned[45.0] == []


def test_a_wall_clock_an_hour_ahead_does_not_end_global_maintenance_early(domain: Domain) -> None:
    """Set 1 s ago (by the setter's clock) with a 600 s TTL; this host's wall clock is an hour ahead of the setter's."""
    stop, reload = threading.Event(), threading.Event()
    clock = StopAfter(stop, reload, cycles=3, reload_at=0, on_reload=lambda: None)
    set_at = clock.wall() - 3600 - 1
    domain.store().write_global(records.GlobalRecord(7, True, "upgrade", "admin", set_at, set_at + 600))
    app = domain.app(clock=clock)
    daemon.run(lambda: config.load(str(domain.config), {}), app.backend(), clock, stop, reload, None, FakeLeases())  # type: ignore[arg-type]
    view = localstate.read_agent_view(str(domain.state_dir))
    assert view is not None and view.state == fsm.S.GLOBAL_MAINTENANCE and view.global_seq == 7
    left = dict(view.timers)["global maintenance ends (its TTL, on this host's monotonic clock)"]
    assert 600 - 3 * 10 <= left <= 600  # counted from this agent's first read, a few loops ago

    stop.clear()
    clock = StopAfter(stop, reload, cycles=3, reload_at=0, on_reload=lambda: None)
    clock.advance(400)  # the agent restarts 400 s later (same boot): it carries on the count
    daemon.run(
        lambda: config.load(str(domain.config), {}), domain.app(clock=clock).backend(), clock, stop, reload, None, FakeLeases()
    )  # type: ignore[arg-type]
    view = localstate.read_agent_view(str(domain.state_dir))
    assert view is not None and view.state == fsm.S.GLOBAL_MAINTENANCE
    assert 600 - 400 - 6 * 10 <= dict(view.timers)["global maintenance ends (its TTL, on this host's monotonic clock)"] <= 200


def test_the_storage_monitor_reports_a_truncated_metadata_file(domain: Domain) -> None:
    import os

    os.truncate(domain.root / "ha" / "metadata", 6000)
    stop, reload = threading.Event(), threading.Event()
    clock = StopAfter(stop, reload, cycles=2, reload_at=99, on_reload=lambda: None)
    app = domain.app(clock=clock)
    daemon.run(lambda: config.load(str(domain.config), {}), app.backend(), clock, stop, reload, None, FakeLeases())  # type: ignore[arg-type]
    view = localstate.read_agent_view(str(domain.state_dir))
    assert view is not None
    problem = dict(view.storage)["metadata_problem"]
    assert isinstance(problem, str) and problem.startswith("metadata file truncated (") and "host slots 2 to 2000" in problem
