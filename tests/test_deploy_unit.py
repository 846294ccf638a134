"""Deploy's systemd steps where systemd runs (a fake systemctl at the edge): the unit is enabled and started,
pointed at a non-default configuration by a drop-in; a second run changes nothing; --remove disables it."""

from __future__ import annotations

from pathlib import Path

import pytest

from hectl.deploy import plan, steps
from hectl.deploy.steps import Deployment

FAKE = """#!/bin/sh
echo "$*" >> "{log}"
case "$1" in
  is-enabled) grep -qx enabled "{state}" 2>/dev/null ;;
  is-active) grep -qx active "{state}" 2>/dev/null ;;
  enable) echo enabled >> "{state}" ;;
  restart) echo active >> "{state}" ;;
  disable) rm -f "{state}" ;;
esac
"""


@pytest.fixture
def systemd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    bin_dir, running = tmp_path / "bin", tmp_path / "run-systemd"
    bin_dir.mkdir()
    running.mkdir()
    log = tmp_path / "systemctl.log"
    fake = bin_dir / "systemctl"
    fake.write_text(FAKE.format(log=log, state=tmp_path / "unit-state"))
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:/usr/bin:/bin")
    monkeypatch.setattr(steps, "SYSTEMD_RUNNING", str(running))
    monkeypatch.setattr(steps, "DROPIN", str(tmp_path / "dropin" / "hectl-config.conf"))
    return log


def test_agent_unit_enabled_with_a_dropin_then_unchanged_then_removed(systemd: Path, tmp_path: Path) -> None:
    config = tmp_path / "etc" / "hectl.conf"
    config.parent.mkdir()
    config.write_text(f"[host]\nid = 2\n[storage]\npath = {tmp_path}\n[paths]\nstate_dir = {tmp_path / 'state'}\n")
    d = Deployment.for_removal(str(config), {}, lambda _line: None)
    unit = [d._step("agent-unit")]
    assert plan.preview(unit)[0]["state"] == "to do"
    rows = plan.run(unit, d.app.clock)
    assert rows[-1]["state"] == "changed"
    assert systemd.read_text().splitlines()[-3:] == ["daemon-reload", "enable hectl-ha.service", "restart hectl-ha.service"]
    dropin = Path(steps.DROPIN).read_text()
    assert f"Environment=HECTL_CONFIG={config}" in dropin and f"ConditionPathExists={config}" in dropin
    assert plan.run(unit, d.app.clock)[-1]["state"] == "done"  # a second run changes nothing
    removed = plan.run([d._step("unit-removed")], d.app.clock)
    assert removed[-1]["state"] == "changed" and not Path(steps.DROPIN).exists()
    assert systemd.read_text().splitlines()[-1] == "disable --now hectl-ha.service"


def test_a_config_path_systemd_cannot_hold_is_refused(systemd: Path, tmp_path: Path) -> None:
    config = tmp_path / "my conf" / "hectl.conf"
    config.parent.mkdir()
    config.write_text(f"[host]\nid = 2\n[storage]\npath = {tmp_path}\n")
    d = Deployment.for_removal(str(config), {}, lambda _line: None)
    with pytest.raises(plan.StepFailed, match="cannot be written into a systemd unit"):
        plan.run([d._step("agent-unit")], d.app.clock)
