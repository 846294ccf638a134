"""Golden scenarios: the simulated cluster's timeline for each scenario file must match its .expected file.

Regenerate after an intended behaviour change with:
    HECTL_UPDATE_GOLDEN=1 .venv/bin/python -m pytest tests/ha/test_scenarios.py
and review the diff: each changed line is a changed decision.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from conftest import run_hectl

from hectl.errors import ConfigError
from hectl.ha import fsm, scenario

HERE = Path(__file__).parent / "scenarios"
FILES = sorted(HERE.glob("*.toml"))
UPDATE = os.environ.get("HECTL_UPDATE_GOLDEN") == "1"


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_golden_timeline(path: Path) -> None:
    lines = scenario.run(scenario.load(str(path))).lines()
    expected = path.with_suffix(".expected")
    if UPDATE:
        expected.write_text("\n".join(lines) + "\n")
    assert expected.exists(), f"{expected.name} missing; create it with HECTL_UPDATE_GOLDEN=1"
    assert lines == expected.read_text().splitlines(), "timeline changed; see the module docstring to regenerate"
    assert lines[-1].startswith("safety: never two engines; liveness: up again within")


def test_at_least_15_scenarios_cover_every_state_and_fault() -> None:
    assert len(FILES) >= 15
    reached: set[str] = set()
    for path in FILES:
        reached |= set(re.findall(r"-> (\w+)", path.with_suffix(".expected").read_text()))
        reached |= set(re.findall(r"^\s*[\d.]+\s+h\d+\s+(\w+) ->", path.with_suffix(".expected").read_text(), re.M))
    assert set(fsm.ALL_STATES) <= reached
    used = {ev.action for path in FILES for ev in scenario.load(str(path)).events}
    assert used == set(scenario.ACTIONS)


def test_failover_after_engine_host_power_loss_within_160_s() -> None:
    result = scenario.run(scenario.load(str(HERE / "engine-host-power-loss.toml")))
    up = [e.t for e in result.timeline if e.host == 2 and e.what == "EngineStarting -> EngineUp"]
    assert result.engine_host == 2 and up and up[0] - 120 <= 160


def test_cli_prints_the_timeline() -> None:
    path = HERE / "vm-crash-moves.toml"
    res = run_hectl(["ha", "simulate", str(path)])
    assert res.returncode == 0, res.stderr
    assert res.stdout.splitlines() == path.with_suffix(".expected").read_text().splitlines()


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("hosts = 0\n", "'hosts' must be a whole number from 1 to 64 (got 0)"),
        ("hosts = 65\n", "'hosts' must be a number from 0 to 64 (got 65)"),
        ("hosts = 2.5\n", "'hosts' must be a whole number from 1 to 64 (got 2.5)"),
        ("hosts = nan\n", "'hosts' must be a number from 0 to 64 (got nan)"),
        ("duration = 1e300\n", "'duration' must be a number from 0 to 86400 (got 1e+300)"),
        ("duration = inf\n", "'duration' must be a number from 0 to 86400 (got inf)"),
        ("[[event]]\nat = nan\nhost = 1\naction = 'power-off'\n", "'at' must be a number from 0 to 316224000 (got nan)"),
        ("[[event]]\nat = 1\nhost = 1\naction = 'clock-jump'\nseconds = -inf\n", "'seconds' must be a number from -316224000"),
        ("[[event]]\nat = 1\naction = 'global-maintenance'\nttl = 1e12\n", "'ttl' must be a number from 0 to 31622400 (got"),
        ("[sim]\nio_timeout = 0\n", "[sim]: 'io_timeout' must be more than 0 (got 0)"),
        ("[ha]\nloop = 0\n", "[ha]: 'loop' must be a number from 0.1 to 3600 (got 0)"),
        ("[ha]\nstop = 1e5\n", "[ha]: 'stop' must be a number from 0.1 to 86400 (got 100000.0)"),
        ("hosts = 2\nengine_host = 3\n", "'engine_host' 3 is not one of the 2 hosts"),
        ("colour = 1\n", "unknown key 'colour'"),
        ("[[event]]\nat = 1\nhost = 1\naction = 'explode'\n", "unknown action 'explode'"),
        ("[[event]]\nat = 1\nhost = 9\naction = 'power-off'\n", "'host' must be one of 1..3"),
        ("[[event]]\nat = -1\nhost = 1\naction = 'power-off'\n", "'at' must be a number from 0 to"),
        ("[[event]]\nat = 1\nhost = 1\naction = 'power-off'\nduration = 5\n", "'duration' does not go with action power-off"),
        ("[[event]]\nat = 1\nhost = 1\naction = 'storage-stall'\n", "'duration' must be a number from 0 to"),
        ("[[event]]\nat = 1\nhost = 1\naction = 'vm-migrate'\nto = 7\n", "'to' must be one of 1..3"),
        (
            "[[event]]\nat = 1\nhost = 1\naction = 'agent-rogue'\nscore = 3e10\n",
            "'score' must be a number from -2147483647 to 2147483647",
        ),
        ("[sim]\nio_timeout = 'x'\n", "'io_timeout' must be a number from 0 to 86400 (got 'x')"),
        ("[ha]\nloop_delay = 3\n", "unknown key 'loop_delay'"),
        ("hosts = [\n", "not valid TOML"),
    ],
)
def test_bad_scenarios_name_the_problem(tmp_path: Path, text: str, words: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        scenario.load(str(path))
    assert words in info.value.message and str(path) in info.value.message


@pytest.mark.parametrize("content", [b"hosts = 0\n", b"duration = 1e12\n", b"hosts = 1000\n", b"description = 'caf\xe9'\n"])
def test_bad_scenario_exits_3(tmp_path: Path, content: bytes) -> None:
    """Whatever is wrong with the file, it is named, with exit 3 (a directory or a missing file too)."""
    path = tmp_path / "bad.toml"
    path.write_bytes(content)
    res = run_hectl(["ha", "simulate", str(path)], timeout=30)
    assert res.returncode == 3 and res.stderr.count("\n") == 1 and "Traceback" not in res.stderr
    assert res.stderr.startswith(f"hectl: error: {path}") or f"scenario {path}:" in res.stderr


def test_every_action_is_documented() -> None:
    doc = (Path(__file__).resolve().parents[2] / "docs" / "simulate.md").read_text()
    table = doc.split("| action | extra key |", 1)[1].split("\n## ", 1)[0]
    documented = set(re.findall(r"`([a-z-]+)`", "\n".join(line.split("|")[1] for line in table.splitlines()[2:] if "|" in line)))
    assert documented == set(scenario.ACTIONS)


@pytest.mark.parametrize("name", ["a-directory", "missing.toml"])
def test_unreadable_scenario_exits_3_naming_it(tmp_path: Path, name: str) -> None:
    (tmp_path / "a-directory").mkdir()
    res = run_hectl(["ha", "simulate", str(tmp_path / name)])
    assert res.returncode == 3 and res.stderr.startswith(f"hectl: error: cannot read scenario {tmp_path / name}: ")
    assert res.stderr.count("\n") == 1


@pytest.mark.parametrize("name", ["global-maintenance-clock-ahead", "global-maintenance-clock-behind", "global-maintenance-ttl"])
def test_maintenance_ttl_ends_together_whatever_the_wall_clocks(name: str) -> None:
    """Set at 60 s with a 300 s TTL: no host acts before 360 s, and all leave it within one loop of each other."""
    result = scenario.run(scenario.load(str(HERE / f"{name}.toml")))
    assert not result.violations
    ends = [e.t for e in result.timeline if e.what.startswith("GlobalMaintenance ->")]
    starts = [e.t for e in result.timeline if e.what.endswith("-> EngineStart")]
    assert len(ends) == result.scenario.hosts and min(ends) >= 360 and max(ends) - min(ends) <= result.scenario.timings.loop
    assert starts and min(starts) >= 360


@pytest.mark.parametrize("name", ["rogue-max-score", "rogue-top-rival", "rogue-yield"])
def test_no_record_holds_the_cluster_hostage(name: str) -> None:
    result = scenario.run(scenario.load(str(HERE / f"{name}.toml")))
    rogues = {e.host for e in result.scenario.events if e.action == "agent-rogue"}
    assert not result.violations and result.engine_host is not None and result.engine_host not in rogues


def test_every_host_tried_then_all_say_they_failed() -> None:
    """A start that never becomes healthy is an engine failure: every host gets its turn, then each says when it retries."""
    result = scenario.run(scenario.load(str(HERE / "engine-never-healthy.toml")))
    tried = {e.host for e in result.timeline if e.what == "EngineDown -> EngineStart"}
    waits = [e for e in result.timeline if e.what.endswith("-> EngineRetryWait")]
    assert tried == {1, 2, 3} and {e.host for e in waits} == {1, 2, 3}
    assert all(
        re.search(r"^retry here in \d+ s: engine failed here \d+ times, no other host can start it$", e.detail) for e in waits
    )
