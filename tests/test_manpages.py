"""Man pages: checked against regeneration, one per command, valid roff."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import REPO

from hectl import __version__
from hectl.cli import manpages, scripts

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
