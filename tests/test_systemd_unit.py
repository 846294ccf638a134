"""The shipped unit (systemd/hectl-ha.service): what it runs, verified and rated by systemd-analyze offline.

No systemd runs here: ``systemd-analyze verify`` and ``security --offline`` read the
unit from a scratch root (this system's own units for the dependencies, stubs for
the commands it runs, the generated man page for its Documentation=).
"""

from __future__ import annotations

import configparser
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import REPO, run_hectl

from hectl import config
from hectl.errors import ExitCode
from hectl.ha import daemon

UNIT = REPO / "systemd" / "hectl-ha.service"
EXPOSURE = 2.3  # systemd-analyze security of the unit (it was 9.6 UNSAFE before hardening): never worse


def service() -> configparser.SectionProxy:
    unit = configparser.ConfigParser(interpolation=None, strict=False)
    unit.optionxform = str  # type: ignore[assignment,method-assign]
    unit.read(UNIT)
    return unit["Service"]


def unit_values(key: str) -> list[str]:
    """Every value of ``key`` (a directive may repeat; configparser keeps only the last)."""
    return [line.split("=", 1)[1] for line in UNIT.read_text().splitlines() if line.startswith(f"{key}=")]


def test_unit_runs_the_agent_reloads_with_sighup_and_orders_after_its_services() -> None:
    argv = service()["ExecStart"].split()
    assert argv == ["hectl", "ha", "run"]  # systemd looks in /usr/bin (a package) and /usr/local/bin (pip)
    assert run_hectl([*argv[1:], "--help"]).returncode == 0  # the command the unit runs exists
    assert service()["ExecReload"] == "kill -HUP $MAINPID"
    after, wants = set(unit_values("After")[0].split()), set(unit_values("Wants")[0].split())
    assert {"sanlock.service", "libvirtd.service", "network-online.target"} <= after & wants


def test_notify_watchdog_restart_policy_and_umask() -> None:
    svc = service()
    assert (svc["Type"], svc["NotifyAccess"], svc["UMask"]) == ("notify", "main", "0077")
    assert {int(c) for c in svc["RestartPreventExitStatus"].split()} == {ExitCode.USAGE, ExitCode.CONFIG, ExitCode.NOT_AVAILABLE}
    # One cycle at the default timeouts, gateway pings included, twice over. The loop also pings while it
    # sleeps, so [ha] loop does not count.
    cfg = config.load(None, {"HECTL_CONFIG": "/dev/null", "HECTL_HOST_ID": "1"})._replace(
        monitors=config.MonitorsConfig(network_test="ping", gateway="192.0.2.1")
    )
    assert daemon.cycle_bound(cfg) == 60.0
    assert float(svc["WatchdogSec"]) >= 2 * daemon.cycle_bound(cfg)
    assert float(svc["TimeoutStartSec"]) >= 2 * daemon.cycle_bound(cfg)  # READY=1 comes after the first cycle


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """A scratch root holding the unit, the system's units, stub commands and the man page."""
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze is not installed (Debian package: systemd)")
    (tmp_path / "etc/systemd/system").mkdir(parents=True)
    shutil.copy(UNIT, tmp_path / "etc/systemd/system")
    shutil.copytree("/usr/lib/systemd/system", tmp_path / "usr/lib/systemd/system", symlinks=True)
    (tmp_path / "usr/bin").mkdir(parents=True)
    for command in ("hectl", "kill"):
        stub = tmp_path / "usr/bin" / command
        stub.write_text("#!/bin/sh\n")
        stub.chmod(0o755)
    (tmp_path / "man/man1").mkdir(parents=True)
    shutil.copy(REPO / "docs/man/hectl-ha-run.1", tmp_path / "man/man1")
    return tmp_path


def analyze(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, MANPATH=str(root / "man"), SYSTEMD_COLORS="0")
    return subprocess.run(
        ["systemd-analyze", *args, f"--root={root}", "hectl-ha.service"], capture_output=True, text=True, env=env, timeout=60
    )


@pytest.mark.integration
def test_systemd_analyze_verify_is_clean(root: Path) -> None:
    res = analyze(root, "verify")
    assert (res.returncode, res.stdout + res.stderr) == (0, "")


@pytest.mark.integration
def test_hardening_exposure_stays_at_most_the_reached_level(root: Path) -> None:
    res = analyze(root, "security", "--offline=true", "--no-pager")
    assert res.returncode == 0, res.stderr
    level = re.search(r"Overall exposure level for hectl-ha\.service: (\d+\.\d+)", res.stdout)
    assert level is not None, res.stdout
    assert float(level[1]) <= EXPOSURE, res.stdout
