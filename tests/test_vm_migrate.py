"""vm-migrate against a fake hypervisor and fake sanlock: target choice, refusals and exit codes, the request
libvirt gets, JSON; tests/cluster/test_migration.py runs it on the lab's real libvirtd + QEMU + sanlock."""

from __future__ import annotations

import pytest

from hectl import audit
from hectl.errors import ExitCode, HypervisorError, LockHeld, OperationFailed, WaitTimeout
from hectl.vm import migration
from hectl.vm.hypervisor import MigrationRequest
from tests.conftest import Domain
from tests.fakevirt import FakeHypervisor
from tests.test_json_schemas import valid
from tests.test_vm_commands import SPEC, FakeLeases, run  # noqa: F401  (the engine fixture's spec)
from tests.test_vm_commands import engine as engine  # the fixture

LIVE = {2: "live", 3: "live"}


def cluster(engine: Domain) -> None:
    """Host 1 (this one) runs the engine; hosts 2 (score 3000) and 3 (3400) stand by, their names plain IPs."""
    engine.publish(1, vm="up", hostname="host1.example")
    engine.publish(2, score=3000, hostname="192.0.2.2")
    engine.publish(3, score=3400, hostname="192.0.2.3")


def test_migrates_to_the_best_scoring_host_and_reports_phases(engine: Domain, capsys: pytest.CaptureFixture[str]) -> None:
    cluster(engine)
    hyper = FakeHypervisor("up")
    code, out, err = run(engine, ["vm-migrate", "--json"], capsys, hyper, FakeLeases(hosts=LIVE))
    assert code == 0, err
    data = valid(out, "vm-migrate")
    assert (data["to_host_id"], data["to_hostname"], data["downtime_ms"], data["transferred_mib"]) == (3, "192.0.2.3", 120, 80.0)
    assert [p["phase"] for p in data["phases"]] == ["checked", "copying", "switching", "running-there"]
    ((kind, req),) = hyper.calls
    assert kind == "migrate" and isinstance(req, MigrationRequest)
    # localfs: libvirt cannot see the domain is shared; tls by default; the stream to the resolved address
    assert req == MigrationRequest(
        "qemu+tls://192.0.2.3/system", "tcp://192.0.2.3", tls=True, unsafe=True, bandwidth_mib=0, timeout=120.0
    )
    entry = audit.read(str(engine.state_dir / "audit.log"))[-1]
    assert (entry["action"], entry["to_host_id"], entry["result"]) == ("vm-migrate", 3, "migrated")


def test_to_and_options_reach_libvirt(engine: Domain, capsys: pytest.CaptureFixture[str]) -> None:
    cluster(engine)
    hyper = FakeHypervisor("up")
    code, out, err = run(
        engine, ["vm-migrate", "--to", "2", "--timeout", "30", "--bandwidth", "50"], capsys, hyper, FakeLeases(hosts=LIVE)
    )
    assert code == 0, err
    assert out.startswith("engine VM engine migrated from host 1 to host 2 (192.0.2.2) in 1.5 s, paused 120 ms")
    req = hyper.calls[0][1]
    assert isinstance(req, MigrationRequest) and (req.timeout, req.bandwidth_mib) == (30.0, 50)


@pytest.mark.parametrize(
    ("change", "leases", "why"),
    [
        ({"local_maintenance": True}, LIVE, "in local maintenance"),
        ({"score": 0}, LIVE, "score 0"),
        ({"age": 600}, LIVE, "not live"),
        ({"stopped": True}, LIVE, "not live"),
        ({}, {2: "fail", 3: "live"}, "sanlock sees its host id fail: it cannot take the engine lease"),
        ({"hostname": "h2/system?socket=/x"}, LIVE, "is not a DNS name or an IP address"),
    ],
)
def test_a_target_that_cannot_take_the_engine_is_refused_with_5(
    engine: Domain, capsys: pytest.CaptureFixture[str], change: dict[str, object], leases: dict[int, str], why: str
) -> None:
    cluster(engine)
    engine.publish(2, **{"score": 3000, "hostname": "192.0.2.2", **change})  # type: ignore[arg-type]
    hyper = FakeHypervisor("up")
    code, _, err = run(engine, ["vm-migrate", "--to", "2"], capsys, hyper, FakeLeases(hosts=leases))
    assert code == ExitCode.LOCKED and "host 2 cannot take the engine" in err and why in err, err
    assert hyper.calls == []


def test_no_host_able_is_5_naming_each(engine: Domain, capsys: pytest.CaptureFixture[str]) -> None:
    cluster(engine)
    code, _, err = run(engine, ["vm-migrate"], capsys, FakeHypervisor("up"), FakeLeases(hosts={2: "dead", 3: "free"}))
    assert (
        code == ExitCode.LOCKED
        and "host 2: sanlock sees its host id dead" in err
        and "host 3: sanlock sees its host id free" in err
    )


def test_not_running_here_is_6_and_unknown_target_is_2(engine: Domain, capsys: pytest.CaptureFixture[str]) -> None:
    cluster(engine)
    code, _, err = run(engine, ["vm-migrate"], capsys, FakeHypervisor("down"), FakeLeases(hosts=LIVE))
    assert code == ExitCode.VM_STATE, err
    code, _, err = run(engine, ["vm-migrate"], capsys, FakeHypervisor("paused"), FakeLeases(hosts=LIVE))
    assert code == ExitCode.VM_STATE and "only a running VM migrates" in err
    for to in ("7", "1"):
        code, _, err = run(engine, ["vm-migrate", "--to", to], capsys, FakeHypervisor("up"), FakeLeases(hosts=LIVE))
        assert code == ExitCode.USAGE and f"host {to} is not another host" in err


@pytest.mark.parametrize(
    ("error", "code"), [(LockHeld("lease refused"), ExitCode.LOCKED), (WaitTimeout("aborted"), ExitCode.TIMEOUT)]
)
def test_a_failed_migration_keeps_its_exit_code_and_is_audited(
    engine: Domain, capsys: pytest.CaptureFixture[str], error: Exception, code: int
) -> None:
    cluster(engine)
    hyper = FakeHypervisor("up")
    hyper.migrate_error = error
    got, out, _ = run(engine, ["vm-migrate", "--json"], capsys, hyper, FakeLeases(hosts=LIVE))
    assert got == code and valid(out, "error")["error"]["code"] == code
    assert audit.read(str(engine.state_dir / "audit.log"))[-1]["result"].startswith("failed: ")


def test_request_for_tcp_tls_pki_and_ipv6() -> None:
    from hectl.config import VMConfig

    req = migration.request(VMConfig(migration_transport="tcp"), "h2.example", "192.0.2.2", unsafe=False, timeout=60, bandwidth=0)
    assert (req.dest_uri, req.migrate_uri, req.tls) == ("qemu+tcp://h2.example/system", "tcp://192.0.2.2", False)
    req = migration.request(
        VMConfig(migration_pki_dir="/etc/pki/my ca"), "2001:db8::2", "2001:db8::2", unsafe=False, timeout=60, bandwidth=0
    )
    assert (req.dest_uri, req.migrate_uri) == ("qemu+tls://[2001:db8::2]/system?pkipath=/etc/pki/my%20ca", "tcp://[2001:db8::2]")


@pytest.mark.parametrize(
    ("name", "ok"),
    [("h2.example.org", True), ("192.0.2.1", True), ("2001:db8::1", True), ("host-2", True), ("-h", False),
     ("a/b", False), ("h?x=1", False), ("h:1", False), ("", False), ("x" * 64, False), ("h..x", False), ("h@x", False)],
)  # fmt: skip
def test_only_dns_names_and_ip_addresses_become_uris(name: str, ok: bool) -> None:
    assert migration.usable_hostname(name) is ok


def test_resolve_names_a_failure_clearly() -> None:
    assert migration.resolve("localhost") in ("127.0.0.1", "::1")
    with pytest.raises(OperationFailed, match=r"cannot resolve the target's hostname no-such-host\.invalid"):
        migration.resolve("no-such-host.invalid")


@pytest.mark.parametrize(
    ("code", "domain", "message", "after", "error", "words"),
    [
        (38, 42, "Failed to acquire lock: No space left on device", "up", LockHeld, "the target could not take the engine lease"),
        (38, 7, "unable to connect to server at 'h2:16514': refused", "up", OperationFailed, "cannot reach the target's"),
        (1, 10, "operation failed: migration out job: unexpectedly failed", "paused", HypervisorError, "the migration failed"),
    ],
)  # fmt: skip
def test_libvirt_migration_errors_say_what_failed_and_where_the_engine_is(
    code: int, domain: int, message: str, after: str, error: type, words: str
) -> None:
    """libvirt's error codes and domains as measured on the lab (a target without the lockspace: code 38 from the
    locking domain; a refused TLS or TCP connection: the RPC domain)."""
    import libvirt

    from hectl.vm.libvirt import _migration_error

    exc = libvirt.libvirtError(message)
    exc.err = (code, domain, message, libvirt.VIR_ERR_ERROR, "", "", "", 0, 0)
    err = _migration_error(exc, after)
    assert type(err) is error and words in err.message and message in err.message
    assert err.message.endswith("keeps running here" if after == "up" else f"the engine VM is {after} here")
