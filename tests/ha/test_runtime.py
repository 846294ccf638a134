"""EngineRuntime: the agent's view of the engine VM (engine-health monitor, config penalty) and its actions."""

from __future__ import annotations

import threading
import time

import pytest

from hectl.errors import HypervisorError, LockHeld
from hectl.ha import fsm
from hectl.ha.runtime import EngineRuntime
from hectl.vm import spec as vmspec
from tests.conftest import Domain
from tests.fakevirt import FakeHypervisor

SPEC = {"uuid": "8c8c2f0e-1d7e-4a39-9a3b-2a4f5e6d7c8b", "name": "engine", "kernel": "k", "initrd": "i", "host_port": "28080"}


def runtime(domain: Domain, hyper: FakeHypervisor, problems: list[str] | None = None) -> EngineRuntime:
    app = domain.app()
    sink = problems if problems is not None else []
    return EngineRuntime(app.config, app.backend(), app.clock, sink.append, connect=lambda uri: hyper)


def settle(rt: EngineRuntime) -> None:
    if rt.starter is not None:
        rt.starter.join(5)


def test_start_runs_in_the_background_and_reports_up(domain: Domain) -> None:
    vmspec.update(domain.app().backend(), SPEC, 5)
    hyper = FakeHypervisor()
    problems: list[str] = []
    rt = runtime(domain, hyper, problems)
    assert rt.vm() == fsm.LocalVM("down", "unknown", down_reason="", detail="fake")
    rt.act(fsm.START)
    settle(rt)
    assert hyper.calls == [("start", (False, 150.0))]  # 8 x io_timeout 10 + 60 s + a loop: sanlock may need that long
    assert "<lease>" in hyper.xml and 'version="1"' in hyper.xml
    vm = rt.vm()
    assert (vm.state, vm.health, vm.detail) == ("up", "good", "fake, tcg")
    assert problems == ["engine health is not checked: set [engine] fqdn or health_url"]


def test_lost_start_race_and_failed_start_are_told_apart(domain: Domain) -> None:
    vmspec.update(domain.app().backend(), SPEC, 5)
    hyper = FakeHypervisor()
    rt = runtime(domain, hyper)
    hyper.start_error = LockHeld("lease busy")
    rt.act(fsm.START)
    settle(rt)
    assert rt.vm().down_reason == "lease-busy"
    hyper.start_error = HypervisorError("qemu exploded")
    rt.act(fsm.START)
    settle(rt)
    assert rt.vm().down_reason == "start-failed"


def test_a_vanished_vm_was_killed_a_requested_stop_was_a_shutdown(domain: Domain) -> None:
    vmspec.update(domain.app().backend(), SPEC, 5)
    hyper = FakeHypervisor("up")
    rt = runtime(domain, hyper)
    assert rt.vm().state == "up"
    hyper.state = "down"
    assert rt.vm().down_reason == "killed"
    hyper.state = "up"
    rt.vm()
    rt.act(fsm.SHUTDOWN)
    assert rt.vm().down_reason == "shutdown" and hyper.calls == [("shutdown", "engine")]


def test_unreachable_libvirt_is_an_unknown_vm_state(domain: Domain) -> None:
    vmspec.update(domain.app().backend(), SPEC, 5)

    class Down(FakeHypervisor):
        def info(self, name: str):  # type: ignore[no-untyped-def]
            raise HypervisorError("cannot connect to libvirt at qemu:///system: refused")

    vm = runtime(domain, Down()).vm()
    assert vm.state == "unknown" and "cannot connect to libvirt" in vm.detail


def test_bad_engine_health_from_the_liveliness_probe(domain: Domain) -> None:
    import socket

    vmspec.update(domain.app().backend(), SPEC, 5)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens: connection refused
    domain.config.write_text(domain.config.read_text() + f"[engine]\nhealth_url = http://127.0.0.1:{port}/health\n")
    vm = runtime(domain, FakeHypervisor("up")).vm()
    assert (vm.state, vm.health) == ("up", "bad") and "refused" in vm.detail


def test_config_penalty_causes(domain: Domain) -> None:
    backend = domain.app().backend()
    hyper = FakeHypervisor("up")
    rt = runtime(domain, hyper)
    assert rt.config_problem() == "the engine VM is not defined on the domain (hectl vm-config set)"
    vmspec.update(backend, SPEC, 5)
    hyper.spec_version = 1
    rt.vm()
    assert rt.config_problem() == ""
    vmspec.update(backend, {"memory_mib": "8192"}, 5)
    assert rt.config_problem() == "the engine VM runs spec version 1, the domain has 2 (restart it to apply)"
    with open(vmspec.path(backend), "r+b") as f:
        f.write(b"{garbage")
    assert "corrupt" in rt.config_problem()


def test_the_cpu_monitor_leaves_out_the_engines_qemu(domain: Domain) -> None:
    vmspec.update(domain.app().backend(), SPEC, 5)
    hyper = FakeHypervisor("up")
    hyper.pid = 4242
    rt = runtime(domain, hyper)
    assert rt.engine_pids() == []
    rt.vm()
    assert rt.engine_pids() == [4242]
    hyper.state = "down"
    rt.vm()
    assert rt.engine_pids() == []


@pytest.mark.parametrize("action", [fsm.SHUTDOWN, fsm.POWEROFF])
def test_failed_actions_are_reported_not_raised(domain: Domain, action: str) -> None:
    vmspec.update(domain.app().backend(), SPEC, 5)
    problems: list[str] = []

    class Refuses(FakeHypervisor):
        def shutdown(self, name: str) -> None:
            raise HypervisorError("no")

        poweroff = shutdown

    runtime(domain, Refuses("up"), problems).act(action)
    assert problems == [f"cannot {action} the engine VM: no"]


def test_a_hung_libvirtd_cannot_stall_the_agent(domain: Domain, monkeypatch: pytest.MonkeyPatch) -> None:

    from hectl.ha import runtime as runtime_mod

    vmspec.update(domain.app().backend(), SPEC, 5)
    release = threading.Event()

    class Hung(FakeHypervisor):
        def info(self, name: str):  # type: ignore[no-untyped-def]
            release.wait(30)
            return super().info(name)

    monkeypatch.setattr(runtime_mod, "HYPERVISOR_TIMEOUT", 0.2)
    rt = runtime(domain, Hung("up"))
    try:
        vm = rt.vm()
        assert vm.state == "unknown" and "did not answer the query within 0.2 s" in vm.detail
        vm = rt.vm()  # the first question is still pending: no second thread piles up behind it
        assert vm.state == "unknown" and "has not answered the last query for more than" in vm.detail
    finally:
        release.set()
    rt.waiting["query"].join(5)
    assert rt.vm().state == "up"  # libvirtd answers again: so does the agent


def test_a_shutdown_that_hangs_does_not_stall_the_loop_and_the_power_off_still_goes(
    domain: Domain, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An ACPI shutdown of a frozen guest waits on its QEMU monitor for ever: the agent goes on to the power-off."""
    from hectl.ha import runtime as runtime_mod

    vmspec.update(domain.app().backend(), SPEC, 5)
    release = threading.Event()
    powered_off = threading.Event()

    class FrozenGuest(FakeHypervisor):
        asked = False

        def shutdown(self, name: str) -> None:
            self.asked = True
            release.wait(30)

        def info(self, name: str):  # type: ignore[no-untyped-def]
            if self.asked and not release.is_set():  # queries wait behind the hung shutdown
                release.wait(30)
            return super().info(name)

        def poweroff(self, name: str) -> None:
            powered_off.set()

    monkeypatch.setattr(runtime_mod, "HYPERVISOR_TIMEOUT", 0.2)
    problems: list[str] = []
    rt = runtime(domain, FrozenGuest("up"), problems)
    try:
        rt.act(fsm.SHUTDOWN)  # returns after the timeout, says why
        assert problems and "did not answer the shutdown within 0.2 s" in problems[-1]
        rt.act(fsm.SHUTDOWN)  # still hanging: not asked again
        assert "has not answered the last shutdown" in problems[-1]
        vm = rt.vm()  # the query waits behind it: still up and not healthy, so the stop timer runs on
        assert (vm.state, vm.health) == ("up", "bad") and "stuck in the shutdown" in vm.detail
        rt.act(fsm.POWEROFF)
        assert powered_off.is_set()
    finally:
        release.set()


def test_a_start_waiting_for_the_lease_reads_as_starting_not_unknown(domain: Domain, monkeypatch: pytest.MonkeyPatch) -> None:
    """While libvirt waits for sanlock to free the engine lease (up to host_dead_seconds), the start this agent
    asked for blocks libvirt's answers to queries: the VM is starting here, as the others must see, not unknown."""
    from hectl.ha import runtime as runtime_mod

    vmspec.update(domain.app().backend(), SPEC, 5)
    release = threading.Event()

    class WaitingForTheLease(FakeHypervisor):
        starting = False

        def start(self, xml: str, *, paused: bool, timeout: float) -> None:
            self.starting = True
            release.wait(30)
            super().start(xml, paused=paused, timeout=timeout)

        def info(self, name: str):  # type: ignore[no-untyped-def]
            if self.starting and not release.is_set():  # queries wait behind the start
                release.wait(30)
            return super().info(name)

    monkeypatch.setattr(runtime_mod, "HYPERVISOR_TIMEOUT", 0.2)
    hyper = WaitingForTheLease("down")
    rt = runtime(domain, hyper)
    try:
        assert rt.vm().state == "down"
        rt.act(fsm.START)
        wait = time.monotonic() + 5
        while not hyper.starting and time.monotonic() < wait:
            time.sleep(0.01)
        vm = rt.vm()
        assert (vm.state, vm.health) == ("starting", "unknown") and "busy starting" in vm.detail
    finally:
        release.set()
    rt.starter.join(5)  # type: ignore[union-attr]
    rt.waiting["query"].join(5)
    assert rt.vm().state == "up"


def test_a_migration_runs_in_the_background_and_its_outcome_shows_in_the_vm(domain: Domain) -> None:
    """Moved away: the VM is gone with down_reason "migrated"; refused: it runs on, ``migration`` says why."""
    from hectl.vm.hypervisor import MigrationRequest

    vmspec.update(domain.app().backend(), SPEC, 5)
    hyper = FakeHypervisor("up")
    rt = runtime(domain, hyper)
    assert rt.vm().migration == fsm.Outcome()
    hyper.migrate_error = LockHeld("the target could not take the engine lease")
    rt.migrate(2, "192.0.2.2")
    assert rt.migrator is not None
    rt.migrator.join(5)
    vm = rt.vm()
    assert (vm.state, vm.migration) == ("up", fsm.Outcome(fsm.FAILED, "the target could not take the engine lease"))
    hyper.migrate_error = None
    rt.migrate(2, "192.0.2.2")
    rt.migrator.join(5)
    assert rt.vm() == fsm.LocalVM("down", "unknown", down_reason="migrated", detail="fake")
    requests = [c[1] for c in hyper.calls if c[0] == "migrate"]
    assert requests[-1] == MigrationRequest(
        "qemu+tls://192.0.2.2/system", "tcp://192.0.2.2", tls=True, unsafe=True, timeout=120.0
    )


@pytest.mark.parametrize("hostname", ["", "evil/system?socket=/tmp/x", "-oProxyCommand=x"])
def test_a_target_hostname_that_is_no_name_fails_the_migration_without_libvirt(domain: Domain, hostname: str) -> None:
    vmspec.update(domain.app().backend(), SPEC, 5)
    hyper = FakeHypervisor("up")
    rt = runtime(domain, hyper)
    rt.migrate(2, hostname)
    assert rt.migrator is not None
    rt.migrator.join(5)
    migration = rt.vm().migration
    assert migration.status == fsm.FAILED and migration.detail.startswith("host 2's hostname")
    assert not [c for c in hyper.calls if c[0] == "migrate"]


def test_an_incoming_migration_that_vanishes_is_not_an_engine_failure(domain: Domain) -> None:
    from hectl.vm.hypervisor import INCOMING

    vmspec.update(domain.app().backend(), SPEC, 5)

    class Arriving(FakeHypervisor):
        def info(self, name: str):  # type: ignore[no-untyped-def]
            info = super().info(name)
            return info._replace(detail=INCOMING) if self.state == "starting" else info

    hyper = Arriving("starting")
    rt = runtime(domain, hyper)
    assert rt.vm().state == "starting"
    hyper.state = "down"
    assert rt.vm().down_reason == "migration-failed"


def test_the_vm_gone_while_the_migration_call_has_not_returned_is_migrated(domain: Domain) -> None:
    """libvirt ends the domain here at the switch-over's end; its migrate call returns a little later (the source's
    clean-up, the target's statistics): meanwhile the VM is gone because it migrated, not killed."""
    vmspec.update(domain.app().backend(), SPEC, 5)
    release = threading.Event()

    class Slow(FakeHypervisor):
        def migrate(self, name, request, progress):  # type: ignore[no-untyped-def]
            self.state = "down"
            release.wait(10)
            return super().migrate(name, request, progress)

    hyper = Slow("up")
    rt = runtime(domain, hyper)
    rt.vm()
    rt.migrate(2, "192.0.2.2")
    try:
        deadline = time.monotonic() + 5
        while hyper.state != "down" and time.monotonic() < deadline:
            time.sleep(0.01)
        assert rt.vm().down_reason == "migrated"
    finally:
        release.set()
        assert rt.migrator is not None
        rt.migrator.join(5)
    assert rt.vm().down_reason == "migrated"
