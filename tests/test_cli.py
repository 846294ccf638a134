"""The CLI contract: help, usage errors, exit codes, stdout/stderr, and the fast path's parity with click."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import click
import pytest
from conftest import HECTL, REPO, Domain, run_hectl

from hectl import errors, localstate, output
from hectl.cli import fastpath
from hectl.cli import root as cli
from hectl.errors import ExitCode

COMMAND_PATHS = [[name] for name in cli.COMMANDS if name not in ("ha", "vm-config")] + [
    ["ha"],
    ["ha", "run"],
    ["ha", "simulate"],
    ["vm-config"],
    ["vm-config", "show"],
    ["vm-config", "set"],
]


def in_process(args: list[str], capsys: pytest.CaptureFixture[str], env: dict[str, str]) -> tuple[int, str, str]:
    from hectl.context import AppContext

    code = cli.main(args, AppContext(environ=env))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_root_help_lists_commands_and_exit_codes() -> None:
    res = run_hectl(["--help"])
    assert res.returncode == 0
    for name in cli.COMMANDS:
        assert name in res.stdout
    for code, text in errors.EXIT_CODE_HELP.items():
        assert re.search(rf"^\s+{int(code)}\s+{re.escape(text)}$", res.stdout, re.M), text


@pytest.mark.parametrize("path", COMMAND_PATHS, ids=" ".join)
def test_every_command_has_help(path: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = in_process([*path, "--help"], capsys, {})
    assert code == 0 and out.startswith("Usage: hectl " + " ".join(path)) and err == ""


@pytest.mark.parametrize("path", COMMAND_PATHS, ids=" ".join)
def test_bad_arguments_exit_2_with_one_line(path: list[str]) -> None:
    res = run_hectl([*path, "--no-such-option"])
    assert res.returncode == ExitCode.USAGE
    assert res.stdout == ""
    assert res.stderr.count("\n") == 1 and "Traceback" not in res.stderr
    assert res.stderr.startswith("hectl ") and "No such option" in res.stderr and "--no-such-option" in res.stderr


@pytest.mark.parametrize(
    "args",
    [
        ["nosuch"],
        ["set-maintenance"],
        ["set-maintenance", "--mode", "bogus"],
        ["set-maintenance", "--mode", "global", "--ttl", "5x"],
        ["set-maintenance", "--mode", "none", "--ttl", "5m"],
        ["set-maintenance", "--mode", "global", "--reason", "two\nlines"],
        ["vm-status", "--host-id", "0"],
        ["vm-status", "--host-id", "2001"],
        ["vm-status", "--timeout", "abc"],
        ["vm-status", "--format", "yaml"],
        ["vm-status", "--json", "extra-argument"],
        ["--config"],
        ["deploy", "--host-id", "x"],
    ],
)
def test_bad_values_exit_2_with_one_line(args: list[str], domain: Domain) -> None:
    res = run_hectl(args, env=domain.env)
    assert res.returncode == ExitCode.USAGE, res.stderr
    assert res.stderr.count("\n") == 1 and "Traceback" not in res.stderr
    if "--json" in args:  # the parser knew JSON was wanted: the error is a JSON document too
        assert json.loads(res.stdout)["error"]["name"] == "USAGE"
    else:
        assert res.stdout == ""


def test_no_arguments_shows_help_and_exits_2() -> None:
    res = run_hectl([])
    assert res.returncode == ExitCode.USAGE and "Usage: hectl" in res.stderr and res.stdout == ""


def test_version_and_python_m() -> None:
    res = run_hectl(["--version"])
    assert res.returncode == 0 and re.fullmatch(r"hectl \d+\.\d+\.\d+\n", res.stdout)
    res = subprocess.run([sys.executable, "-m", "hectl", "--version"], capture_output=True, text=True)
    assert res.returncode == 0 and res.stdout.startswith("hectl ")


# --- exit codes, each proven -------------------------------------------------------------------


def test_exit_0_status_read(domain: Domain) -> None:
    domain.publish(1, vm="up", health="good")
    res = run_hectl(["vm-status"], env=domain.env)
    assert res.returncode == 0 and "host1.example" in res.stdout and res.stderr == ""


def test_exit_1_operation_failed(domain: Domain) -> None:
    domain.state_dir.parent.joinpath("state").write_text("not a directory")
    res = run_hectl(["set-maintenance", "--mode", "local"], env=domain.env)
    assert res.returncode == ExitCode.FAILED
    assert res.stderr.startswith("hectl: error: cannot write local maintenance state") and "Traceback" not in res.stderr


def test_exit_3_missing_config(tmp_path: Path) -> None:
    missing = str(tmp_path / "absent.conf")
    res = run_hectl(["vm-status", "--json"], env={**os.environ, "HECTL_CONFIG": missing})
    assert res.returncode == ExitCode.CONFIG
    assert missing in res.stderr and "Traceback" not in res.stderr
    error = json.loads(res.stdout)["error"]  # --json: the error is a JSON document on stdout too
    assert error["code"] == ExitCode.CONFIG and error["name"] == "CONFIG" and missing in error["message"]
    res = run_hectl(["--config", missing, "vm-status"])
    assert res.returncode == ExitCode.CONFIG and missing in res.stderr


def test_exit_3_not_deployed(domain: Domain) -> None:
    os.unlink(domain.root / "ha" / "metadata")
    for args in (["vm-status"], ["vm-status", "--json"], ["set-maintenance", "--mode", "global"]):
        res = run_hectl(args, env=domain.env)
        assert res.returncode == ExitCode.CONFIG, args
        assert res.stderr.startswith(f"hectl: error: no hectl domain at {domain.root}") and "Traceback" not in res.stderr
    check = run_hectl(["vm-status", "--check"], env=domain.env)
    assert check.returncode == 3 and check.stdout.startswith("HECTL UNKNOWN - configuration problem: no hectl domain")


def test_exit_4_storage_unreachable(domain: Domain) -> None:
    os.rename(domain.root, domain.root.with_name("moved"))
    for args, prefix in (
        (["vm-status"], ""),
        (["vm-status", "--json"], ""),
        (["set-maintenance", "--mode", "global"], "global maintenance unchanged: "),
    ):
        res = run_hectl(args, env=domain.env)
        assert res.returncode == ExitCode.STORAGE, args
        assert res.stderr == f"hectl: error: {prefix}domain directory {domain.root} does not exist\n"
    res = run_hectl(["vm-status", "--check"], env=domain.env)
    assert res.returncode == 2 and res.stdout.startswith("HECTL CRITICAL - storage unreachable")


@pytest.mark.parametrize(
    ("exc", "code"),
    [
        (errors.OperationFailed("x"), 1),
        (errors.ConfigError("x"), 3),
        (errors.NotDeployed("x"), 3),
        (errors.StorageError("x"), 4),
        (errors.StorageTimeout("x"), 4),
        (errors.LockHeld("x"), 5),
        (errors.VMStateError("x"), 6),
        (errors.WaitTimeout("x"), 7),
        (errors.NotAvailable("x"), 8),
        (errors.PluginError("x"), 3),
        (ZeroDivisionError("x"), 70),
        (KeyboardInterrupt(), 130),
    ],
)
def test_error_to_exit_code_mapping(exc: BaseException, code: int, capsys: pytest.CaptureFixture[str]) -> None:
    def boom() -> int:
        raise exc

    assert output.run(boom, lambda: 0) == code
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert output.run(boom, lambda: 1) == code
    if code != 130:
        assert "Traceback" in capsys.readouterr().err  # -v shows it


def test_readme_exit_code_table_matches_the_enum() -> None:
    readme = (REPO / "README.md").read_text()
    table = dict(re.findall(r"^\|\s*(\d+)\s*\|\s*`?(\w+)`?\s*\|", readme, re.M))
    assert {int(k): v for k, v in table.items()} == {int(c): c.name for c in ExitCode}


# --- vm-status over every kind of slot -----------------------------------------------------------


def corrupt_domain(domain: Domain) -> None:
    from hectl.storage import records

    domain.publish(1, vm="up", health="good")
    domain.publish(2)
    domain.publish(3)
    domain.publish(4)
    domain.publish(5, hostname="five.example")
    path = domain.root / "ha" / "metadata"
    with open(path, "r+b") as f:
        f.seek(4096 * 3 + 60)
        f.write(b"\x00\xff")  # host 3: bad CRC
        f.seek(4096 * 4)
        f.write(os.urandom(4096))  # host 4: garbage
        newer = bytearray(records.encode_host(records.HostRecord(6, 1, 0, 1, "S", records.EngineStatus(), "six")))
        newer[8:12] = b"\x00\x09\x00\x09"
        f.seek(4096 * 6)
        f.write(newer)  # host 6: written by a future hectl
        f.seek(4096 * 7)
        f.write(records.encode_host(records.HostRecord(5, 1, 0, 1, "S", records.EngineStatus(), "copy-of-five")))
        f.seek(4096 * 9)
        f.write(records.encode_host(records.HostRecord(9, 1, 0, 1, "S", records.EngineStatus(), "nine"))[:4096])
        f.truncate(4096 * 9 + 200)  # host 9: cut short by the end of the file


def test_vm_status_reports_every_slot_kind_in_json_and_text(domain: Domain) -> None:
    corrupt_domain(domain)
    res = run_hectl(["vm-status", "--json"], env=domain.env)
    assert res.returncode == 0, res.stderr
    data = json.loads(res.stdout)
    hosts = {h["host_id"]: h for h in data["hosts"]}
    assert data["schema"] == "hectl.vm-status/1"
    assert data["storage"]["truncated"] is True
    expected = {
        1: ("valid", True, None),
        2: ("valid", True, None),
        3: ("corrupt", False, "slot-corrupt"),
        4: ("corrupt", False, "slot-corrupt"),
        5: ("valid", True, None),
        6: ("version-too-new", False, "version-too-new"),
        7: ("wrong-host-id", False, "wrong-host-id"),
        9: ("corrupt", False, "slot-corrupt"),
    }
    assert {k: (h["slot"], h["live"], h["stale_reason"]) for k, h in hosts.items()} == expected
    assert hosts[3]["problem"] == "bad CRC" and "truncated" in hosts[9]["problem"]
    assert data["summary"] == {"hosts": 8, "live": 3, "stale": 5, "problem_slots": 5, "engine_up_on": [1]}

    text = run_hectl(["vm-status"], env=domain.env)
    assert text.returncode == 0
    lines = {line.split()[0].rstrip("*"): line for line in text.stdout.splitlines() if line[:1].isdigit()}
    assert "STALE: slot-corrupt (bad CRC)" in lines["3"]
    assert "STALE: version-too-new" in lines["6"] and "STALE: wrong-host-id" in lines["7"]
    assert "live" in lines["1"] and "metadata file truncated (" in text.stdout


def test_global_maintenance_banner_and_field(domain: Domain) -> None:
    domain.publish(1, vm="up", health="good")
    assert (
        run_hectl(["set-maintenance", "--mode", "global", "--reason", "upgrade", "--ttl", "1h"], env=domain.env).returncode == 0
    )
    text = run_hectl(["vm-status"], env=domain.env).stdout
    assert text.startswith("!! GLOBAL MAINTENANCE") and "reason: upgrade" in text
    data = json.loads(run_hectl(["vm-status", "--json"], env=domain.env).stdout)
    assert data["global_maintenance"]["active"] is True and data["global_maintenance"]["reason"] == "upgrade"
    check = run_hectl(["vm-status", "--check"], env=domain.env)
    assert check.returncode == 1 and "GLOBAL MAINTENANCE" in check.stdout


def test_set_maintenance_quiet_and_json(domain: Domain) -> None:
    res = run_hectl(["-q", "set-maintenance", "--mode", "local"], env=domain.env)
    assert (res.returncode, res.stdout, res.stderr) == (0, "", "")
    res = run_hectl(["set-maintenance", "--mode", "none", "--json"], env=domain.env)
    data = json.loads(res.stdout)
    assert data["mode"] == "none" and data["changes"][0]["scope"] == "local"


# --- the fast path -------------------------------------------------------------------------------


def normalise(report: dict[str, Any]) -> dict[str, Any]:
    report = json.loads(json.dumps(report))
    report["storage"]["read_ms"] = report["read_at"] = None
    for h in report["hosts"]:
        h["age_s"] = None
    return report


def test_fast_path_and_click_path_give_the_same_json(domain: Domain, capsys: pytest.CaptureFixture[str]) -> None:
    corrupt_domain(domain)
    fast = run_hectl(["vm-status", "--json"], env=domain.env)
    code, out, _ = in_process(["vm-status", "--json"], capsys, domain.env)  # cli.main: always the click path
    assert code == 0 and normalise(json.loads(fast.stdout)) == normalise(json.loads(out))


def test_fast_path_loads_neither_click_nor_plugins(domain: Domain) -> None:
    domain.publish(1)
    probe = (
        "import sys; sys.argv = ['hectl', 'vm-status', '--json']\n"
        "from hectl.__main__ import main\n"
        "try:\n    main()\nexcept SystemExit as e:\n    code = e.code\n"
        "heavy = ('click', 'pluggy', 'tabulate', 'importlib.metadata', 'dataclasses', 'inspect', 'signal', 'typing')\n"
        "heavy = sorted(m for m in heavy if m in sys.modules)\n"
        "print('HEAVY', code, heavy, file=sys.stderr)\n"
    )
    res = subprocess.run([sys.executable, "-c", probe], env=domain.env, capture_output=True, text=True)
    assert "HEAVY 0 []" in res.stderr, res.stderr


def test_fast_path_knows_exactly_the_click_options() -> None:
    from hectl.commands.vm_status import command

    def names(params: list[click.Parameter], flags: bool) -> set[str]:
        return {o for p in params if isinstance(p, click.Option) and (p.is_flag or p.count) == flags for o in p.opts} - {
            "-h",
            "--help",
        }

    root = [p for p in cli.cli.params if p.name != "version"]
    assert names(root, False) == fastpath.ROOT_VALUE_OPTIONS
    assert names(root, True) == fastpath.ROOT_FLAGS
    assert names(command.params, False) == fastpath.VM_STATUS_VALUE_OPTIONS
    assert names(command.params, True) == fastpath.VM_STATUS_FLAGS


@pytest.mark.parametrize(
    "argv",
    [
        ["vm-status"],
        ["vm-status", "--help"],
        ["vm-status", "--format", "table"],
        ["vm-status", "--json", "--bogus"],
        ["vm-status", "--host-id", "x", "--json"],
        ["--version"],
        ["plugins"],
        ["-x", "vm-status", "--json"],
    ],
)
def test_fast_path_hands_over_what_it_does_not_own(argv: list[str]) -> None:
    assert fastpath.try_run(argv) is None


def test_fast_path_options(domain: Domain) -> None:
    for i in (1, 2, 3):
        domain.publish(i)
    res = run_hectl(
        ["--config", str(domain.config), "-q", "vm-status", "--format=json", "--host-id", "2", "--host-id=3", "--timeout", "2"]
    )
    assert res.returncode == 0, res.stderr
    assert [h["host_id"] for h in json.loads(res.stdout)["hosts"]] == [2, 3]


def test_console_script_is_the_venv_one() -> None:
    assert os.path.exists(HECTL)


def documented_fields(section: str) -> set[str]:
    """Field names in the table under ``## section`` of docs/vm-status-json.md."""
    doc = (REPO / "docs" / "vm-status-json.md").read_text()
    body = doc.split(f"## {section}\n", 1)[1].split("\n## ", 1)[0]
    names: set[str] = set()
    for row in re.findall(r"^\| (`[^|]+`) \|", body, re.M):
        names.update(re.findall(r"`([\w\[\]]+)`", row))
    return names


def test_vm_status_json_fields_are_exactly_the_documented_ones(domain: Domain) -> None:
    corrupt_domain(domain)
    domain.publish(2, wall_time=time.time() + 600)  # clock skew
    domain.publish(3, details=("fenced host=1 by=3 at=2026-12-04T00:00:00Z reason=judged dead",))  # a fencing
    assert run_hectl(["set-maintenance", "--mode", "local"], env=domain.env).returncode == 0  # pending on host 1
    seq = domain.store().read_slot(1).record.seq  # type: ignore[union-attr]
    view = localstate.AgentView(
        1,
        "EngineUp",
        localstate.boot_id(),
        time.monotonic(),
        time.time(),
        {
            1: localstate.HostView(True, seq, 0.0, "live"),
        },
    )
    localstate.write_agent_view(str(domain.state_dir), view)  # a running local agent adds sanlock's view
    data = json.loads(run_hectl(["vm-status", "--json"], env=domain.env).stdout)
    assert set(data) == documented_fields("Top level")
    assert set(data["global_maintenance"]) | {"problem"} == documented_fields("`global_maintenance`")
    host_keys = set().union(*(h.keys() for h in data["hosts"]))
    assert host_keys == documented_fields("`hosts[]`")
