"""Shell completion: generated scripts checked against regeneration and driven in real bash, zsh and fish."""

from __future__ import annotations

import os
import pty
import re
import select
import shlex
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.shell_completion import ShellComplete
from conftest import HECTL, REPO, write_config

from hectl import localstate
from hectl.cli import scripts
from hectl.cli.root import COMMANDS, cli

COMPLETIONS = REPO / "completions"
REGENERATE = "python -m hectl.cli.scripts completions"
ROOT_COMMANDS = sorted(COMMANDS)


def _shell(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.skip(f"{name} is not installed (Debian package: {name})")
    return path


@pytest.fixture
def static_env(tmp_path: Path) -> dict[str, str]:
    """No config; the only ``hectl`` on PATH records that it was called (static completion must not call it)."""
    fake = tmp_path / "fakebin"
    fake.mkdir()
    (fake / "hectl").write_text(f'#!/bin/sh\necho "$@" >> {shlex.quote(str(tmp_path / "hectl-called"))}\n')
    (fake / "hectl").chmod(0o755)
    env = {k: v for k, v in os.environ.items() if not k.startswith("HECTL_")}
    env.update(
        PATH=f"{fake}{os.pathsep}/usr/bin{os.pathsep}/bin", HOME=str(tmp_path), HECTL_CONFIG=str(tmp_path / "missing.conf")
    )
    return env


@pytest.fixture
def cache_env(tmp_path: Path) -> dict[str, str]:
    """PATH leads to the venv's hectl; the config's state_dir holds a completion cache with hosts 1 and 2."""
    state = tmp_path / "state"
    assert localstate.update_completion_cache(str(state), hosts=[[1, "a"], [2, "b"]])
    config = write_config(tmp_path / "hectl.conf", tmp_path / "domain", state)
    env = {k: v for k, v in os.environ.items() if not k.startswith("HECTL_")}
    env.update(PATH=f"{Path(HECTL).parent}{os.pathsep}{env.get('PATH', '')}", HOME=str(tmp_path), HECTL_CONFIG=str(config))
    return env


# --- the generator ---------------------------------------------------------------


def test_scripts_match_regeneration(tmp_path: Path) -> None:
    scripts.write_scripts(str(tmp_path))
    for name in scripts.SCRIPTS:
        checked_in = COMPLETIONS / name
        assert checked_in.exists(), f"completions/{name} is missing; regenerate with: {REGENERATE}"
        assert checked_in.read_bytes() == (tmp_path / name).read_bytes(), (
            f"completions/{name} differs from the click commands; regenerate with: {REGENERATE}"
        )


def test_tree_has_every_command_and_option() -> None:
    tree = {" ".join(c.path): c for c in scripts.command_tree()}
    subcommands = ["hectl ha run", "hectl ha simulate", "hectl vm-config set", "hectl vm-config show"]
    subcommands += ["hectl storage check", "hectl storage connect", "hectl storage disconnect"]
    subcommands += ["hectl cluster-config set", "hectl cluster-config show", "hectl fence check", "hectl fence off"]
    subcommands += ["hectl cluster-config rotate-key", "hectl cluster-config install-key"]
    assert sorted(tree) == sorted(["hectl", *subcommands, *(f"hectl {name}" for name in COMMANDS)])
    assert [name for name, _ in tree["hectl ha"].subcommands] == ["run", "simulate"]
    assert tree["hectl ha"].subcommands[0] == ("run", "Run the HA agent in the foreground (for systemd; logs to stderr)")
    options = {n: o for o in tree["hectl vm-status"].options for n in o.names}
    assert sorted(options) == ["--check", "--format", "--help", "--host-id", "--json", "--timeout", "-h"]
    assert options["--host-id"].dynamic == "host-ids" and options["--host-id"].repeatable
    assert options["--format"].choices == ("table", "json")
    root = {n: o for o in tree["hectl"].options for n in o.names}
    assert root["--config"].paths == "file" and root["--config"].takes_value
    assert not root["-v"].takes_value and root["-v"] is root["--verbose"]


def test_completion_module_does_not_import_click() -> None:
    code = "import sys, hectl.cli.completion; sys.exit('click' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], timeout=60).returncode == 0


# --- bash --------------------------------------------------------------------------

# Source the script, find the function `complete -F` registered, call it as bash would.
BASH_DRIVER = r"""
source "$1"; shift
read -ra spec <<< "$(complete -p hectl)"
for i in "${!spec[@]}"; do [[ ${spec[i]} == -F ]] && fn=${spec[i+1]}; done
COMP_WORDS=("$@"); COMP_CWORD=$(( $# - 1 )); COMP_LINE=$LINE; COMP_POINT=${#LINE}
"$fn" hectl "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD-1]}"
(( ${#COMPREPLY[@]} )) && printf '%s\n' "${COMPREPLY[@]}"
exit 0
"""


def bash_complete(line: str, env: dict[str, str], cwd: Path | None = None) -> list[str]:
    """COMPREPLY for ``line`` (cursor at its end); words split like bash does, "=" being a word of its own."""
    words = re.findall(r"=|[^\s=]+", line) + ([""] if line[-1:].isspace() else [])
    proc = subprocess.run(
        [_shell("bash"), "--norc", "--noprofile", "-c", BASH_DRIVER, "bash", str(COMPLETIONS / "hectl.bash"), *words],
        env=dict(env, LINE=line),
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr
    return proc.stdout.splitlines()


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("hectl set-maintenance --mode ", ["global", "local", "none"]),
        ("hectl vm-", ["vm-config", "vm-migrate", "vm-poweroff", "vm-shutdown", "vm-start", "vm-status"]),
        ("hectl ha ", ["run", "simulate"]),
        ("hectl --config x vm-status --format ", ["table", "json"]),
        ("hectl --config=x -v vm-status --format=j", ["json"]),
        ("hectl vm-status --format=", ["table", "json"]),
        ("hectl -q --config ha ", ROOT_COMMANDS),  # "ha" is the value of --config, not a command
        ("hectl -v ha run --h", ["--help"]),
        ("hectl vm-status --timeout 5 --f", ["--format"]),
        ("hectl set-maintenance --reason ", []),
        ("hectl set-maintenance ", ["--format", "--help", "--json", "--mode", "--reason", "--timeout", "--ttl", "-h"]),
        ("hectl ", ROOT_COMMANDS),
    ],
)
def test_bash_static(line: str, expected: list[str], static_env: dict[str, str], tmp_path: Path) -> None:
    assert bash_complete(line, static_env) == expected
    assert not (tmp_path / "hectl-called").exists(), "static completion must not run hectl"


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("hectl vm-start --wait --he", ["--healthy", "--help"]),  # --wait's value is optional: --he is an option
        ("hectl vm-start --wait --paused --h", ["--healthy", "--help"]),
        ("hectl vm-start --wait 5 --he", ["--healthy", "--help"]),
        ("hectl vm-start --wait=5 --he", ["--healthy", "--help"]),
        ("hectl vm-config set mem", ["memory_mib="]),
        ("hectl vm-config set vcpus=2 graph", ["graphics=", "graphics_listen="]),
        ("hectl vm-config set network=", ["user", "bridge", "none"]),
        ("hectl vm-config set network=b", ["bridge"]),
        ("hectl vm-config set vcpus=", []),
        ("hectl vm-config set --f", ["--format"]),
    ],
)
def test_bash_optional_values_and_key_values(line: str, expected: list[str], static_env: dict[str, str], tmp_path: Path) -> None:
    assert bash_complete(line, static_env) == expected
    assert not (tmp_path / "hectl-called").exists(), "static completion must not run hectl"


def test_bash_scenario_completes_files(static_env: dict[str, str], tmp_path: Path) -> None:
    (tmp_path / "power-loss.toml").write_text("")
    assert bash_complete("hectl ha simulate pow", static_env, cwd=tmp_path) == ["power-loss.toml"]
    assert bash_complete("hectl -v ha simulate --json pow", static_env, cwd=tmp_path) == ["power-loss.toml"]


def test_bash_options_of_a_command(static_env: dict[str, str]) -> None:
    assert {"--json", "--check", "--host-id", "--timeout", "--format"} <= set(bash_complete("hectl vm-status --", static_env))


def test_bash_config_completes_files(static_env: dict[str, str], tmp_path: Path) -> None:
    (tmp_path / "site.conf").write_text("")
    assert bash_complete("hectl --config si", static_env, cwd=tmp_path) == ["site.conf"]


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("hectl vm-status --host-id ", ["1", "2"]),
        ("hectl -v vm-status --host-id 1 --host-id=2", ["2"]),
        ("hectl deploy --storage-type ", ["ctdb", "glusterfs", "localfs", "nfs"]),
    ],
)
def test_bash_dynamic(line: str, expected: list[str], cache_env: dict[str, str]) -> None:
    assert bash_complete(line, cache_env) == expected


# --- fish --------------------------------------------------------------------------


def fish_complete(line: str, env: dict[str, str], cwd: Path | None = None) -> list[str]:
    """The values fish offers for ``line`` (description column dropped)."""
    script = "source $argv[1]; and complete -C $argv[2]"
    proc = subprocess.run(
        [_shell("fish"), "--no-config", "-c", script, str(COMPLETIONS / "hectl.fish"), line],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr
    return sorted(out.split("\t")[0] for out in proc.stdout.splitlines())


def test_fish_syntax() -> None:
    proc = subprocess.run(
        [_shell("fish"), "--no-execute", str(COMPLETIONS / "hectl.fish")], capture_output=True, text=True, timeout=30
    )
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("hectl set-maintenance --mode ", ["global", "local", "none"]),
        ("hectl --config x vm-status --format ", ["json", "table"]),
        ("hectl -q --config ha ha ", ["run", "simulate"]),
        ("hectl vm-status --t", ["--timeout"]),
    ],
)
def test_fish_static(line: str, expected: list[str], static_env: dict[str, str], tmp_path: Path) -> None:
    assert fish_complete(line, static_env) == expected
    assert not (tmp_path / "hectl-called").exists(), "static completion must not run hectl"


def test_fish_dynamic(cache_env: dict[str, str]) -> None:
    assert fish_complete("hectl --config x vm-status --host-id ", cache_env) == ["1", "2"]
    assert fish_complete("hectl vm-status --host-id=", cache_env) == ["--host-id=1", "--host-id=2"]
    assert fish_complete("hectl vm-status --host-id=2", cache_env) == ["--host-id=2"]


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("hectl vm-config set mem", ["memory_mib="]),
        ("hectl vm-config set vcpus=2 network=", ["network=bridge", "network=none", "network=user"]),
        ("hectl vm-config set graphics=s", ["graphics=spice"]),
        ("hectl ha simulate pow", ["power-loss.toml"]),
    ],
)
def test_fish_key_values_and_files(line: str, expected: list[str], static_env: dict[str, str], tmp_path: Path) -> None:
    (tmp_path / "power-loss.toml").write_text("")
    assert fish_complete(line, static_env, cwd=tmp_path) == expected
    assert not (tmp_path / "hectl-called").exists(), "static completion must not run hectl"


# --- zsh ---------------------------------------------------------------------------


def test_zsh_syntax() -> None:
    proc = subprocess.run([_shell("zsh"), "-n", str(COMPLETIONS / "_hectl")], capture_output=True, text=True, timeout=30)
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr


def test_zsh_compinit_registers_hectl(static_env: dict[str, str]) -> None:
    script = f"fpath=({shlex.quote(str(COMPLETIONS))} $fpath); autoload -Uz compinit; compinit -u -D; print -r -- $_comps[hectl]"
    proc = subprocess.run([_shell("zsh"), "-f", "-c", script], env=static_env, capture_output=True, text=True, timeout=30)
    assert (proc.stdout, proc.stderr) == ("_hectl\n", "")


def zsh_complete(line: str, env: dict[str, str], workdir: Path, timeout: float = 20) -> list[str]:
    """Press TAB after ``line`` in an interactive zsh on a pty, in ``workdir``; return the matches that reached compadd."""
    zsh = _shell("zsh")
    matches, ready, done = workdir / "zsh-matches", workdir / "zsh-ready", workdir / "zsh-done"
    rc = workdir / "zsh-setup"
    rc.write_text(
        f"fpath=({shlex.quote(str(COMPLETIONS))} $fpath)\n"
        "autoload -Uz compinit && compinit -u -D\n"
        "bindkey -e; unsetopt autolist\n"
        # Record every match offered (calls with -O/-A/-D only compute, they add nothing).
        "compadd() {\n"
        "  if (( ! ${@[(I)-[OAD]]} )); then\n"
        f'    local -a m; builtin compadd -O m "$@"; print -rl -- $m >> {shlex.quote(str(matches))}\n'
        "  fi\n"
        '  builtin compadd "$@"\n'
        "}\n"
        # Ready only once the line editor runs: typed earlier, ^U would be the tty's own line kill.
        f"zle-line-init() {{ : > {shlex.quote(str(ready))} }}; zle -N zle-line-init\n"
    )
    pid, fd = pty.fork()
    if pid == 0:  # pragma: no cover - the child
        os.chdir(workdir)
        os.execve(zsh, [zsh, "-f", "-i"], dict(env, TERM="dumb"))
    transcript = bytearray()

    def wait_for(path: Path) -> None:
        deadline = time.monotonic() + timeout
        while not path.exists():
            if time.monotonic() > deadline:
                pytest.fail(f"zsh did not get to {path.name}; terminal: {bytes(transcript)!r}")
            if select.select([fd], [], [], 0.05)[0]:
                transcript.extend(os.read(fd, 4096))

    try:
        os.write(fd, f"source {shlex.quote(str(rc))}\n".encode())
        wait_for(ready)
        # TAB, then ^U kills the line and a marker command shows that completion has finished.
        os.write(fd, f"{line}\t\x15: > {shlex.quote(str(done))}\n".encode())
        wait_for(done)
    finally:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        os.close(fd)
    return sorted(set(matches.read_text().split())) if matches.exists() else []


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("hectl set-maintenance --mode ", ["global", "local", "none"]),
        ("hectl --config x vm-status --format ", ["json", "table"]),
        ("hectl -v ha ", ["run", "simulate"]),
    ],
)
def test_zsh_static(line: str, expected: list[str], static_env: dict[str, str], tmp_path: Path) -> None:
    assert zsh_complete(line, static_env, tmp_path) == expected
    assert not (tmp_path / "hectl-called").exists(), "static completion must not run hectl"


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("hectl vm-start --wait --he", ["--healthy", "--help"]),  # --wait's value is optional: --he is an option
        ("hectl vm-start --wait 5 --he", ["--healthy", "--help"]),
        ("hectl vm-config set mem", ["memory_mib"]),  # offered as "memory_mib=", without a space
        ("hectl vm-config set vcpus=2 network=", ["bridge", "none", "user"]),
        ("hectl ha simulate pow", ["power-loss.toml"]),
    ],
)
def test_zsh_optional_values_key_values_and_files(
    line: str, expected: list[str], static_env: dict[str, str], tmp_path: Path
) -> None:
    (tmp_path / "power-loss.toml").write_text("")
    assert zsh_complete(line, static_env, tmp_path) == expected
    assert not (tmp_path / "hectl-called").exists(), "static completion must not run hectl"


def test_zsh_dynamic(cache_env: dict[str, str], tmp_path: Path) -> None:
    assert zsh_complete("hectl vm-status --host-id ", cache_env, tmp_path) == ["1", "2"]


# --- in-process: click's own completion through the same providers --------------------


def click_complete(args: list[str], incomplete: str) -> list[str]:
    return [item.value for item in ShellComplete(cli, {}, "hectl", "_HECTL_COMPLETE").get_completions(args, incomplete)]


def test_click_choice() -> None:
    assert click_complete(["set-maintenance", "--mode"], "") == ["global", "local", "none"]


def test_click_key_values() -> None:
    assert click_complete(["vm-config", "set"], "net") == ["network="]
    assert click_complete(["vm-config", "set", "vcpus=2"], "graphics=") == ["graphics=vnc", "graphics=spice", "graphics=none"]


def test_click_host_ids(cache_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HECTL_CONFIG", cache_env["HECTL_CONFIG"])
    assert click_complete(["vm-status", "--host-id"], "") == ["1", "2"]
    assert click_complete(["vm-status", "--host-id", "1", "--host-id"], "2") == ["2"]


def test_click_host_ids_without_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HECTL_CONFIG", str(tmp_path / "missing.conf"))
    monkeypatch.setenv("HECTL_STATE_DIR", str(tmp_path / "no-state"))
    assert click_complete(["vm-status", "--host-id"], "") == []


@pytest.mark.parametrize(
    "garbage",
    ["", "not json", "[1, 2]", '{"hosts": 3}', '{"hosts": [["x", "a"]]}', '{"hosts": [[]]}', '{"hosts": [["1_0", "a"]]}'],
)
def test_click_host_ids_with_garbage_cache(
    garbage: str, cache_env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "state" / localstate.COMPLETION_CACHE).write_text(garbage)
    monkeypatch.setenv("HECTL_CONFIG", cache_env["HECTL_CONFIG"])
    assert click_complete(["vm-status", "--host-id"], "") == []
