"""``pip install`` puts the man pages, the completion scripts and the unit where their tools look.

A wheel is built from a copy of the sources (the checkout stays clean) and
installed into a scratch prefix, as ``pip install`` as root would into /usr/local.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import HECTL, REPO

pytestmark = pytest.mark.integration

# installed path under the prefix -> the repository file it is
EXPECTED = {
    "share/bash-completion/completions/hectl.bash": "completions/hectl.bash",
    "share/zsh/site-functions/_hectl": "completions/_hectl",
    "share/fish/vendor_completions.d/hectl.fish": "completions/hectl.fish",
    "lib/systemd/system/hectl-ha.service": "systemd/hectl-ha.service",
    **{f"share/man/man1/{p.name}": f"docs/man/{p.name}" for p in (REPO / "docs/man").glob("*.1")},
}


def pip(*args: str) -> None:
    res = subprocess.run([sys.executable, "-m", "pip", "--disable-pip-version-check", *args], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr


def test_wheel_installs_man_pages_completions_and_unit(tmp_path: Path) -> None:
    src = tmp_path / "src"
    for name in ("hectl", "docs", "completions", "systemd"):
        shutil.copytree(REPO / name, src / name, ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("setup.cfg", "pyproject.toml", "README.md"):
        shutil.copy(REPO / name, src)
    pip("wheel", "-q", "--no-deps", "--no-build-isolation", "-w", str(tmp_path / "dist"), str(src))
    (wheel,) = (tmp_path / "dist").glob("hectl-*.whl")
    prefix = tmp_path / "prefix"
    # --ignore-installed: without it pip would uninstall the venv's own (editable) hectl first
    pip("install", "-q", "--no-deps", "--no-index", "--ignore-installed", "--prefix", str(prefix), str(wheel))
    installed = {str(p.relative_to(prefix)) for p in prefix.rglob("*") if p.is_file() and "site-packages" not in p.parts}
    assert installed - {"bin/hectl"} == set(EXPECTED)
    for path, source in EXPECTED.items():
        assert (prefix / path).read_bytes() == (REPO / source).read_bytes(), path
    assert "share/man/man1/hectl-ha-run.1" in EXPECTED  # the unit's Documentation=man:hectl-ha-run(1)
    assert Path(HECTL).exists()  # the venv's own hectl was left alone
