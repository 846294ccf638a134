"""Bad input gets one line on stderr and a documented exit code, never a traceback, a hang or exit 70.

Run against the real ``hectl`` process: the fast path, click, the interpreter's
own stdout handling and signals all take part.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
from pathlib import Path

import pytest
from conftest import HECTL, Domain, run_hectl

from hectl.errors import ExitCode

# Every float option, with values Python's float() takes but no person means.
FLOAT_OPTIONS = [
    ["vm-status", "--timeout"],
    ["vm-status", "--json", "--timeout"],  # the fast path
    ["vm-status", "--check", "--timeout"],
    ["set-maintenance", "--mode", "global", "--timeout"],
    ["check-liveliness", "--timeout"],
    ["check-liveliness", "--nagios", "--warn"],
    ["vm-start", "--timeout"],
    ["vm-start", "--wait"],
    ["vm-shutdown", "--wait", "--timeout"],
    ["vm-shutdown", "--force-after"],
]


@pytest.mark.parametrize("value", ["nan", "inf", "1_0", "١", "1e1"])
@pytest.mark.parametrize("option", FLOAT_OPTIONS, ids=" ".join)
def test_float_options_take_finite_plain_numbers_only(option: list[str], value: str, domain: Domain) -> None:
    res = run_hectl([*option, value], env=domain.env, timeout=30)
    if "--check" in option or "--nagios" in option:  # monitoring gets usage errors as UNKNOWN on stdout
        assert res.returncode == 3 and res.stdout.count("\n") == 1 and "UNKNOWN - usage" in res.stdout, res.stdout
        assert f"'{value}' must be a number from" in res.stdout
        return
    assert res.returncode == ExitCode.USAGE, res.stderr
    assert res.stderr.count("\n") == 1 and f"'{value}' must be a number from" in res.stderr
    if "--json" in option:  # the error as a JSON document too
        assert json.loads(res.stdout)["error"]["code"] == ExitCode.USAGE
    else:
        assert res.stdout == ""


HOST_ID_OPTIONS = [["vm-status", "--host-id"], ["vm-status", "--json", "--host-id"], ["deploy", "--host-id"]]


@pytest.mark.parametrize("value", ["1_0", "+1", " 1", "١", "²"])
@pytest.mark.parametrize("option", HOST_ID_OPTIONS, ids=" ".join)
def test_host_ids_are_ascii_digits(option: list[str], value: str, domain: Domain) -> None:
    res = run_hectl([*option, value], env=domain.env)
    assert res.returncode == ExitCode.USAGE, res.stderr
    assert res.stderr.count("\n") == 1 and "must be a host id from 1 to 2000" in res.stderr


@pytest.mark.parametrize("value", ["²", "1²m", "١h", "1_0m"])
@pytest.mark.parametrize("option", [["set-maintenance", "--mode", "global", "--ttl"], ["add-console-password", "--expire"]])
def test_durations_are_ascii_digits(option: list[str], value: str, domain: Domain) -> None:
    res = run_hectl([*option, value], env=domain.env)
    assert res.returncode == ExitCode.USAGE, res.stderr
    assert res.stderr.count("\n") == 1 and f"'{value.lower()}' is not a duration" in res.stderr


@pytest.mark.parametrize("change", ["vcpus=1_0", "vcpus=+2", "memory_mib=\u0661\u0660\u0662\u0664", "host_port=8\u00b2"])
def test_vm_spec_integers_are_ascii_digits(change: str, domain: Domain) -> None:
    res = run_hectl(["vm-config", "set", change], env=domain.env)
    assert res.returncode == ExitCode.USAGE, res.stderr
    assert res.stderr.count("\n") == 1 and "must be an integer from" in res.stderr


def test_config_option_and_environment_fail_alike(tmp_path: Path) -> None:
    """An unusable configuration file is exit 3 with the same message, however it was named."""
    for bad in (tmp_path, tmp_path / "absent.conf"):
        via_option = run_hectl(["--config", str(bad), "vm-status"])
        via_env = run_hectl(["vm-status"], env={**os.environ, "HECTL_CONFIG": str(bad)})
        assert via_option.returncode == via_env.returncode == ExitCode.CONFIG, via_option.stderr
        assert via_option.stderr == via_env.stderr and str(bad) in via_env.stderr


def test_config_not_utf8_names_the_file(domain: Domain) -> None:
    domain.config.write_bytes(domain.config.read_bytes() + b"# caf\xe9\n")
    res = run_hectl(["vm-status"], env=domain.env)
    assert res.returncode == ExitCode.CONFIG
    assert res.stderr == f"hectl: error: cannot read configuration file {domain.config}: not UTF-8 text\n"


def test_huge_score_is_refused_at_load(domain: Domain) -> None:
    with domain.config.open("a") as f:
        f.write("\n[score]\nbase = " + "1" + "0" * 20 + "\n")
    res = run_hectl(["vm-status"], env=domain.env)
    assert res.returncode == ExitCode.CONFIG
    assert f"{domain.config}: [score] base = '1{'0' * 20}': must be an integer from 0 to 100000" in res.stderr


# --- stdout that cannot take the output ---------------------------------------------------------


@pytest.mark.parametrize(
    "args", [["vm-status", "--json"], ["vm-status"], ["vm-status", "--check"], ["--help"], ["vm-status", "--help"]], ids=" ".join
)
@pytest.mark.parametrize("stdout", ["closed", "/dev/full"])
def test_stdout_closed_or_full_is_exit_1_with_one_line(args: list[str], stdout: str, domain: Domain) -> None:
    domain.publish(1)
    target = subprocess.DEVNULL if stdout == "closed" else open("/dev/full", "w")  # noqa: SIM115
    close_fds = stdout == "closed"
    try:
        proc = subprocess.run(
            [HECTL, *args],
            env=domain.env,
            stdin=subprocess.DEVNULL,
            stdout=target,
            stderr=subprocess.PIPE,
            text=True,
            timeout=60,
            preexec_fn=(lambda: os.close(1)) if close_fds else None,
        )
    finally:
        if target is not subprocess.DEVNULL:
            target.close()
    reason = "stdout is closed" if stdout == "closed" else "No space left on device"
    assert (proc.returncode, proc.stderr) == (ExitCode.FAILED, f"hectl: error: cannot write the output to stdout: {reason}\n")


# --- SIGINT -------------------------------------------------------------------------------------


def test_sigint_in_a_click_command_exits_130() -> None:
    """check-liveliness against a server that never answers, interrupted: 130 as documented, not click's 1."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        server.settimeout(30)
        url = f"http://127.0.0.1:{server.getsockname()[1]}/"
        proc = subprocess.Popen(
            [HECTL, "check-liveliness", "--url", url, "--timeout", "600"],
            env={**os.environ, "HECTL_CONFIG": "/nonexistent/hectl.conf"},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        conn, _ = server.accept()  # hectl now waits for the answer
        with conn:
            proc.send_signal(signal.SIGINT)
            out, err = proc.communicate(timeout=30)
    assert (proc.returncode, out, err) == (ExitCode.INTERRUPTED, "", "hectl: interrupted\n")


# --- ha run refuses to start rather than run half ---------------------------------------------


def test_ha_run_with_the_metrics_port_in_use_is_exit_3_naming_the_key(domain: Domain) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        with domain.config.open("a") as f:
            f.write(f"\n[ha]\nmetrics_port = {port}\n")
        res = run_hectl(["ha", "run"], env=domain.env)
    assert res.returncode == ExitCode.CONFIG, res.stderr
    assert res.stderr.startswith(f"hectl: error: {domain.config}: [ha] metrics_port = {port}: cannot serve metrics on that port")
    assert res.stderr.count("\n") == 2 and "hint:" in res.stderr  # the error and its hint, nothing else
    assert domain.store().read_slot(1).record is None  # never published


def test_ha_run_without_the_sanlock_binding_refuses_to_start(domain: Domain, tmp_path: Path) -> None:
    shadow = tmp_path / "shadow"
    shadow.mkdir()
    (shadow / "sanlock.py").write_text("raise ImportError('no sanlock here')\n")
    res = run_hectl(["ha", "run"], env={**domain.env, "PYTHONPATH": str(shadow)})
    assert res.returncode == ExitCode.NOT_AVAILABLE, res.stderr
    assert res.stderr == (
        "hectl: error: the sanlock Python binding is not installed\n"
        "hectl: hint: install Debian's python3-sanlock (scripts/install.sh)\n"
    )
    assert domain.store().read_slot(1).record is None  # never ran without its host-id lease
