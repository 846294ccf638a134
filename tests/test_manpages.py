"""Man pages: checked against regeneration, one per command, valid roff."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import REPO

from hectl import __version__, config
from hectl.cli import manpages, scripts
from hectl.errors import ExitCode

MAN = REPO / "docs" / "man"
REGENERATE = "python -m hectl.cli.scripts --man docs/man"


def test_pages_match_regeneration(tmp_path: Path) -> None:
    manpages.write_man_pages(str(tmp_path))
    fresh = sorted(p.name for p in tmp_path.glob("*.1"))
    assert sorted(p.name for p in MAN.glob("*.1")) == fresh, (
        f"docs/man/ has other pages than the commands; regenerate with: {REGENERATE}"
    )
    for name in fresh:
        assert (MAN / name).read_bytes() == (tmp_path / name).read_bytes(), (
            f"docs/man/{name} is stale; regenerate with: {REGENERATE}"
        )


def test_one_page_per_command_lazy_and_nested_included() -> None:
    expected = {"-".join(c.path) + ".1" for c in scripts.command_tree()}
    assert {p.name for p in MAN.glob("*.1")} == expected
    assert "hectl-ha-run.1" in expected
    assert r"\fBhectl-ha-run(1)\fP" in (MAN / "hectl-ha.1").read_text()


def test_date_is_fixed_not_today(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "0")  # click-man's own default would follow this
    manpages.write_man_pages(str(tmp_path))
    assert (tmp_path / "hectl.1").read_text().splitlines()[
        0
    ] == f'.TH "HECTL" "1" "{manpages.DATE}" "{__version__}" "hectl Manual"'


def test_regeneration_removes_stale_pages(tmp_path: Path) -> None:
    (tmp_path / "hectl-gone.1").write_text("old")
    (tmp_path / "other.1").write_text("not ours")
    manpages.write_man_pages(str(tmp_path))
    assert not (tmp_path / "hectl-gone.1").exists() and (tmp_path / "other.1").exists()


def test_pages_render_without_groff_warnings() -> None:
    groff = shutil.which("groff")
    if groff is None:
        pytest.skip("groff is not installed (Debian package: groff-base)")
    for page in sorted(MAN.glob("*.1")):
        proc = subprocess.run([groff, "-man", "-Tutf8", "-ww", "-z", str(page)], capture_output=True, text=True, timeout=30)
        assert (proc.returncode, proc.stderr) == (0, ""), f"{page.name}: {proc.stderr}"


def test_generating_pages_leaves_the_commands_as_they_were(tmp_path: Path) -> None:
    """click-man's contexts know only '--help': the real commands must not cache that help option."""
    manpages.write_man_pages(str(tmp_path))
    for spec in scripts.command_tree():
        assert any("-h" in o.names for o in spec.options), " ".join(spec.path)


def section(page: str, name: str) -> str:
    text = (MAN / page).read_text()
    return text.split(f".SH {name}\n", 1)[1].split("\n.SH ", 1)[0]


def test_exit_status_lists_every_exit_code_on_every_page() -> None:
    for page in sorted(MAN.glob("*.1")):
        codes = re.findall(r"^\\fB(\d+)\\fP (\w+)$", section(page.name, "EXIT STATUS"), re.M)
        assert codes == [(str(int(c)), c.name) for c in ExitCode], page.name


def test_environment_names_every_variable_the_code_reads() -> None:
    read = set()
    for path in (REPO / "hectl").rglob("*.py"):
        read |= set(re.findall(r"""environ(?:\.get\(|\[)"([A-Z][A-Z0-9_]+)"|_ENV = "([A-Z][A-Z0-9_]+)\"""", path.read_text()))
    names = {n for pair in read for n in pair if n} | set(config.ENV_OVERRIDES)
    assert {"HECTL_CONFIG", "HECTL_CONSOLE_PASSWORD", "NOTIFY_SOCKET", "JOURNAL_STREAM"} <= names
    documented = set(re.findall(r"^\\fB([A-Z_]+)\\fP", section("hectl.1", "ENVIRONMENT"), re.M))
    assert documented == names
    assert "NOTIFY_SOCKET" in section("hectl-ha-run.1", "ENVIRONMENT")  # a command's own variables on its page,
    assert "NOTIFY_SOCKET" not in section("hectl-vm-status.1", "ENVIRONMENT")  # not on the others'
    assert "HECTL_CONFIG" in section("hectl-vm-status.1", "ENVIRONMENT")


def test_files_are_the_configuration_defaults() -> None:
    files = re.findall(r"^\\fI(.+)\\fP$", section("hectl-set-maintenance.1", "FILES"), re.M)
    paths = [f.replace("\\-", "-") for f in files]
    assert paths[0] == config.DEFAULT_PATH and "/var/lib/hectl/audit.log" in paths
    assert "lib/systemd/system/hectl-ha.service" in paths
