"""Every ``--json`` output, produced for real, validates against its JSON Schema in docs/schemas/.

The commands run as real processes on a real localfs domain; the VM commands
run in-process against the fake hypervisor (tests/virt/ covers them on real
libvirt). The schemas are strict: ``valid`` also checks that renaming or
leaving out any field of any object in the document makes it invalid.
"""

from __future__ import annotations

import io
import json
import shutil
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from conftest import REPO, Domain, run_hectl

from hectl import localstate, output
from hectl.cli import root as cli
from hectl.clock import VirtualClock
from hectl.errors import ExitCode
from hectl.vm import spec as vmspec
from tests.fakevirt import FakeHypervisor
from tests.test_storage_check import install_stall_plugin
from tests.test_vm_commands import SPEC, FakeLeases

SCHEMAS = REPO / "docs" / "schemas"

# Fields a document may lack (documented as "only present when ..."), per kind.
OPTIONAL = {
    "vm-status": {"problem", "local_maintenance_pending", "clock_skew_s", "lease", "root", "fencing"},
    "vm-action": {"healthy"},
    "vm-migrate": {"audit_problem"},
    "explain": {"read_ok", "read_ms", "read_error", "direct_io", "write_ok", "write_ms", "write_error"},
    "deploy": {"failed_step", "error", "seconds"},
    "set-maintenance": {"storage_action"},  # failed_step and error when it failed; seconds: not a dry run
    # each action has its own facts
    "repair": {"lockspace", "engine_lease", "io_timeout", "host_id", "slot", "hostname", "written_at", "state", "audit_problem"},
}
OPEN = {
    ("vm-status", ("storage",)),
    ("storage-check", ("storage",)),
    ("storage-connect", ("storage",)),
}  # the backend's describe(): each backend adds its own fields
MAPS = {("cluster-config", "sections")}  # objects that map names to values: any key may be absent or added


def load_schema(kind: str) -> dict[str, Any]:
    return json.loads((SCHEMAS / f"{kind}.schema.json").read_text())  # type: ignore[no-any-return]


def errors_of(doc: dict[str, Any], kind: str) -> list[str]:
    validator = jsonschema.Draft202012Validator(load_schema(kind))
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(doc)]


def valid(text: str, kind: str) -> dict[str, Any]:
    """The JSON document in ``text``: of ``kind``, valid against its schema, and invalid with any field renamed or left out."""
    doc = json.loads(text)
    assert doc["schema"] == f"hectl.{kind}/{output.SCHEMA_VERSIONS[kind]}"
    assert doc["schema_version"] == output.SCHEMA_VERSIONS[kind]
    assert errors_of(doc, kind) == [], text
    assert_strict(doc, kind)
    return doc  # type: ignore[no-any-return]


def test_every_json_kind_has_a_valid_schema_file() -> None:
    files = {p.name.removesuffix(".schema.json") for p in SCHEMAS.glob("*.schema.json")}
    assert files == set(output.SCHEMA_VERSIONS)
    for kind, version in output.SCHEMA_VERSIONS.items():
        schema = load_schema(kind)
        jsonschema.Draft202012Validator.check_schema(schema)
        assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
        assert schema["properties"]["schema"] == {"const": f"hectl.{kind}/{version}"}
        assert schema["properties"]["schema_version"] == {"const": version}
        assert schema["additionalProperties"] is False
    text_only = {"text"}  # console --log and metrics print text, never JSON
    assert set(output._TEXT_VIEWS) - text_only == set(output.SCHEMA_VERSIONS) - {"error"}


def test_error_schema_lists_every_exit_code_with_its_name() -> None:
    pairs = load_schema("error")["properties"]["error"]["oneOf"]
    listed = {(p["properties"]["code"]["const"], p["properties"]["name"]["const"]) for p in pairs}
    assert listed == {(int(c), c.name) for c in ExitCode if c != ExitCode.OK}


def test_vm_status(domain: Domain) -> None:
    domain.publish(1, vm="up", health="good")
    domain.publish(2, wall_time=time.time() + 600)  # clock skew
    domain.publish(3, age=600)  # stale
    assert run_hectl(["set-maintenance", "--mode", "local"], env=domain.env).returncode == 0  # pending on host 1
    valid(run_hectl(["vm-status", "--json"], env=domain.env).stdout, "vm-status")
    seq = domain.store().read_slot(1).record.seq  # type: ignore[union-attr]
    view = localstate.AgentView(1, "EngineUp", localstate.boot_id(), time.monotonic(), time.time(),
                                {1: localstate.HostView(True, seq, 0.0, "live")})  # fmt: skip
    localstate.write_agent_view(str(domain.state_dir), view)
    doc = valid(run_hectl(["vm-status", "--json", "--host-id", "1"], env=domain.env).stdout, "vm-status")
    assert doc["hosts"][0]["lease"] == "live" and doc["local_agent"]["status"] == "running"
    doc = valid(run_hectl(["vm-status", "--check", "--json"], env=domain.env).stdout, "check")
    assert doc["status"] == "WARNING"


def test_vm_status_and_explain_of_a_truncated_metadata_file(domain: Domain) -> None:
    import os

    domain.publish(1, vm="up", health="good")
    os.truncate(domain.root / "ha" / "metadata", 6000)
    doc = valid(run_hectl(["vm-status", "--json"], env=domain.env).stdout, "vm-status")
    assert doc["storage"]["metadata_size"] == 6000 and "truncated" in doc["storage"]["problem"]
    monitor = {
        "read_ok": True,
        "read_ms": 1.0,
        "direct_io": True,
        "read_error": "",
        "metadata_problem": doc["storage"]["problem"],
    }
    storage_schema = load_schema("explain")["properties"]["storage"]  # the agent's storage monitor, as explain shows it
    assert list(jsonschema.Draft202012Validator(storage_schema).iter_errors(monitor)) == []


def test_explain(domain: Domain) -> None:
    domain.publish(1, vm="up", health="bad")
    valid(run_hectl(["explain", "--json"], env=domain.env).stdout, "explain")
    rec = domain.store().read_slot(1).record
    view = localstate.AgentView(
        1, "EngineUpBadHealth", localstate.boot_id(), time.monotonic(), time.time(),
        {1: localstate.HostView(True, rec.seq, 0.0, "live")},  # type: ignore[union-attr]
        reason="engine health bad", state_age=10.0, score=3400, score_lines=("base 3400",),
        timers=(("EngineStop: engine unhealthy too long", 200.0),),
        storage=(("read_ok", True), ("read_ms", 1.5), ("direct_io", True), ("write_ok", False), ("write_error", "timed out")),
    )  # fmt: skip
    localstate.write_agent_view(str(domain.state_dir), view)
    doc = valid(run_hectl(["explain", "--json"], env=domain.env).stdout, "explain")
    assert doc["score"]["total"] == 3400 and doc["timers"]


def test_set_maintenance(domain: Domain) -> None:
    for args in (["--mode", "global", "--ttl", "1h", "--reason", "upgrade"], ["--mode", "local"], ["--mode", "none"]):
        valid(run_hectl(["set-maintenance", *args, "--json"], env=domain.env).stdout, "set-maintenance")
    doc = valid(run_hectl(["set-maintenance", "--mode", "none", "--json"], env=domain.env).stdout, "set-maintenance")
    assert doc["changes"] == []


def test_plugins(domain: Domain) -> None:
    doc = valid(run_hectl(["plugins", "--json"], env=domain.env).stdout, "plugins")
    assert {"name": "localfs", "plugin": "localfs"} in doc["backends"]


def test_vm_config(domain: Domain) -> None:
    pairs = [f"{k}={v}" for k, v in SPEC.items()]
    valid(run_hectl(["vm-config", "set", *pairs, "--json"], env=domain.env).stdout, "vm-config")
    valid(run_hectl(["vm-config", "show", "--format", "json"], env=domain.env).stdout, "vm-config")


def test_cluster_config(domain: Domain) -> None:
    valid(run_hectl(["cluster-config", "show", "--json"], env=domain.env).stdout, "cluster-config")
    valid(run_hectl(["cluster-config", "set", "score.base=3000", "--json"], env=domain.env).stdout, "cluster-config")


def test_repair(domain: Domain) -> None:
    domain.publish(2, age=600)
    assert run_hectl(["set-maintenance", "--mode", "global"], env=domain.env).returncode == 0
    for extra in ([], ["--yes"]):
        valid(run_hectl(["clean-metadata", "--host-id", "2", "--json", *extra], env=domain.env).stdout, "repair")


def test_deploy_plan_and_a_failed_run(domain: Domain, tmp_path: Path) -> None:
    image = tmp_path / "image.raw"
    image.write_bytes(bytes(1024 * 1024))
    answers = ["--host-id", "1", "--storage-option", f"path={domain.root}", "--engine-fqdn", "engine.example"]
    answers += ["--engine-vm-network", "user", "--engine-vm-host-port", "8080", "--engine-vm-memory-mib", "256"]
    answers += ["--engine-vm-vcpus", "1", "--appliance-image", str(image), "--paths-state-dir", str(tmp_path / "s")]
    env = dict(domain.env, HECTL_CONFIG=str(tmp_path / "new.conf"), HECTL_LIBVIRT_URI="test:///default")
    env["SANLOCK_RUN_DIR"] = str(tmp_path / "no-sanlock")
    doc = valid(run_hectl(["deploy", *answers, "--dry-run", "--json"], env=env).stdout, "deploy")
    assert doc["result"] == "planned"
    res = run_hectl(["deploy", *answers, "--json"], env=env)  # no sanlock daemon: the host step is blocked
    doc = valid(res.stdout, "deploy")
    assert res.returncode == 1 and doc["result"] == "failed" and doc["failed_step"] == "host"


def test_storage_check_and_connect(domain: Domain, tmp_path: Path) -> None:
    for name in ("lockspace", "engine.lease"):
        (domain.root / "ha" / name).write_bytes(bytes(1024 * 1024))
    doc = valid(run_hectl(["storage", "check", "--json"], env=domain.env).stdout, "storage-check")
    assert doc["status"] == "ok" and doc["findings"]
    (domain.root / "ha" / "lockspace").unlink()
    doc = valid(run_hectl(["storage", "check", "--json"], env=domain.env).stdout, "storage-check")
    assert doc["status"] == "fail" and any(f["fix"] for f in doc["findings"])
    for action in ("connect", "disconnect"):
        valid(run_hectl(["storage", action, "--json"], env=domain.env).stdout, "storage-connect")
    install_stall_plugin(tmp_path / "site")
    env = dict(domain.env, PYTHONPATH=str(tmp_path / "site"))
    stalling = domain.config.read_text().replace("type = localfs\n", f"type = stall\nflag = {tmp_path / 'flag'}\nstall = 70\n")
    domain.config.write_text(stalling)
    doc = valid(run_hectl(["storage", "check", "--json"], env=env).stdout, "storage-check")
    assert doc["status"] == "fail" and doc["stalls"]
    domain.config.write_text(domain.config.read_text().replace(f"path = {domain.root}", f"path = {tmp_path / 'gone'}"))
    doc = valid(run_hectl(["storage", "check", "--json"], env=env).stdout, "storage-check")
    assert doc["status"] == "unreachable"


def test_simulate() -> None:
    scenario = str(REPO / "tests" / "ha" / "scenarios" / "clock-jump.toml")
    doc = valid(run_hectl(["ha", "simulate", scenario, "--json"]).stdout, "simulate")
    assert doc["timeline"]


class _Health(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"DB Up!Welcome to Health Status!")

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def health_url() -> Iterator[str]:
    server = HTTPServer(("127.0.0.1", 0), _Health)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}/health"
    server.shutdown()
    server.server_close()


def test_check_liveliness(health_url: str) -> None:
    assert valid(run_hectl(["check-liveliness", "--url", health_url, "--json"]).stdout, "liveliness")["healthy"]
    refused = run_hectl(["check-liveliness", "--url", "http://127.0.0.1:1/", "--json"])
    assert refused.returncode == 1 and not valid(refused.stdout, "liveliness")["healthy"]
    doc = valid(run_hectl(["check-liveliness", "--url", health_url, "--nagios", "--json"]).stdout, "check")
    assert doc["status"] == "OK"


def _vm(domain: Domain, args: list[str], state: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    app = domain.app(clock=VirtualClock(wall=time.time()))
    app._hypervisor = FakeHypervisor(state)  # type: ignore[assignment]
    app._leases = FakeLeases()  # type: ignore[assignment]
    code = cli.main(args, app)
    return code, capsys.readouterr().out


def test_vm_actions_and_console_password(
    domain: Domain, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    vmspec.update(domain.app().backend(), SPEC, 5)
    for args, state in (
        (["vm-start", "--json"], "down"),
        (["vm-start", "--json", "--wait", "5"], "down"),
        (["vm-start", "--json"], "up"),
        (["vm-start", "--json"], "paused"),
        (["vm-shutdown", "--json"], "up"),
        (["vm-shutdown", "--json", "--force-after", "1"], "up"),
        (["vm-poweroff", "--json"], "up"),
    ):
        code, out = _vm(domain, args, state, capsys)
        assert code == 0 and valid(out, "vm-action")
    monkeypatch.setattr("sys.stdin", io.StringIO("secret\n"))
    code, out = _vm(domain, ["add-console-password", "--password-stdin", "--json"], "up", capsys)
    assert code == 0 and "secret" not in out and valid(out, "console-password")


# --- errors ------------------------------------------------------------------------------------


def test_errors_are_json_documents_with_the_exit_code(domain: Domain, capsys: pytest.CaptureFixture[str]) -> None:
    cases = [
        (["vm-status", "--host-id", "0", "--json"], ExitCode.USAGE),  # click: usage error after --json
        (["set-maintenance", "--format", "json"], ExitCode.USAGE),  # missing --mode
        (["vm-start", "--json", "--healthy"], ExitCode.USAGE),  # raised in the command body
        (["--config", str(domain.root / "absent.conf"), "explain", "--json"], ExitCode.CONFIG),
    ]
    for args, code in cases:
        res = run_hectl(args, env=domain.env)
        doc = valid(res.stdout, "error")
        assert res.returncode == code == doc["error"]["code"] and doc["error"]["name"] == code.name, args
        assert res.stderr.count("\n") in (1, 2) and doc["error"]["message"] in " ".join(res.stderr.split())
    vmspec.update(domain.app().backend(), SPEC, 5)
    code, out = _vm(domain, ["vm-shutdown", "--json"], "down", capsys)
    assert code == ExitCode.VM_STATE and valid(out, "error")["error"]["name"] == "VM_STATE"


class Broken(FakeHypervisor):
    def __init__(self, exc: BaseException) -> None:
        super().__init__("down")
        self.exc = exc

    def info(self, name: str):  # type: ignore[no-untyped-def]
        raise self.exc


@pytest.mark.parametrize("exc", [RuntimeError("a bug"), KeyboardInterrupt()], ids=["bug", "interrupt"])
def test_a_bug_or_an_interrupt_is_a_json_error_too(
    domain: Domain, capsys: pytest.CaptureFixture[str], exc: BaseException
) -> None:
    vmspec.update(domain.app().backend(), SPEC, 5)
    app = domain.app(clock=VirtualClock(wall=time.time()))
    app._hypervisor = Broken(exc)  # type: ignore[assignment]
    code = cli.main(["vm-start", "--json"], app)
    out = capsys.readouterr()
    doc = valid(out.out, "error")
    assert code != 0 and (doc["error"]["code"], doc["error"]["name"]) == (code, ExitCode(code).name)
    assert len(out.err.strip().splitlines()) == 1  # stderr keeps its one line
    if isinstance(exc, RuntimeError):
        assert code == ExitCode.INTERNAL and "a bug" in doc["error"]["message"]


def test_without_json_errors_leave_stdout_empty(domain: Domain) -> None:
    res = run_hectl(["vm-status", "--host-id", "0"], env=domain.env)
    assert res.returncode == ExitCode.USAGE and res.stdout == ""
    shutil.rmtree(domain.root)
    res = run_hectl(["vm-status"], env=domain.env)
    assert res.returncode == ExitCode.STORAGE and res.stdout == ""


def test_storage_unreachable_in_the_fast_path_is_a_json_error(domain: Domain) -> None:
    shutil.rmtree(domain.root)
    res = run_hectl(["vm-status", "--json"], env=domain.env)
    doc = valid(res.stdout, "error")
    assert res.returncode == ExitCode.STORAGE and doc["error"]["name"] == "STORAGE"
    assert res.stderr.startswith("hectl: error: ") and doc["error"]["message"] in res.stderr
    # --check answers in Nagios codes even then, as a check document
    res = run_hectl(["vm-status", "--check", "--json"], env=domain.env)
    assert res.returncode == 2 and valid(res.stdout, "check")["status"] == "CRITICAL"


def test_fast_path_error_is_the_same_as_clicks(domain: Domain) -> None:
    shutil.rmtree(domain.root)
    fast = run_hectl(["vm-status", "--json"], env=domain.env)
    slow = run_hectl(["-qq", "vm-status", "--json"], env=domain.env)  # "-qq" is click's: the fast path hands over
    assert json.loads(fast.stdout) == json.loads(slow.stdout) and fast.returncode == slow.returncode == ExitCode.STORAGE


# --- strictness --------------------------------------------------------------------------------


def _objects(node: object, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], dict[str, Any]]]:
    if isinstance(node, dict):
        yield path, node
        for key, value in node.items():
            yield from _objects(value, (*path, key))
    elif isinstance(node, list):
        for item in node:
            yield from _objects(item, (*path, "[]"))


def assert_strict(doc: dict[str, Any], kind: str) -> None:
    """Every field of every object in ``doc``: renamed, or left out (unless optional), the document is invalid."""
    for path, obj in list(_objects(doc)):
        if path and (kind, path[0]) in MAPS:
            continue
        for key in list(obj):
            value = obj.pop(key)
            if key not in OPTIONAL.get(kind, set()):
                assert errors_of(doc, kind), f"{kind}: {'/'.join(path)}/{key} left out, still valid"
            obj[key + "_renamed"] = value
            if (kind, path) not in OPEN:
                assert errors_of(doc, kind), f"{kind}: {'/'.join(path)}/{key} renamed, still valid"
            del obj[key + "_renamed"]
            obj[key] = value


def test_a_renamed_field_fails_validation(domain: Domain) -> None:
    domain.publish(1)
    doc = valid(run_hectl(["vm-status", "--json"], env=domain.env).stdout, "vm-status")
    doc["hosts"][0]["age"] = doc["hosts"][0].pop("age_s")
    problems = errors_of(doc, "vm-status")
    assert any("'age_s' is a required property" in e for e in problems), problems
    assert any("('age' was unexpected)" in e for e in problems), problems
