"""Deploy's answers: every key documented, every bad value one message and exit 2 or 3, nothing changed;
missing answers without a terminal are exit 2; secrets only from a root-only file."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from hectl.cli import root as cli
from hectl.context import AppContext
from hectl.deploy import answers as answers_mod

DOCS = Path(__file__).resolve().parents[1] / "docs" / "deploy.md"

# A bad value for every key (the test below makes sure none is missing).
BAD = {
    "host.id": "0", "host.hostname": "two words",
    "storage.type": "no/such", "storage.timeout": "0",
    "paths.state_dir": "relative/dir", "paths.audit_log": "audit.log", "paths.cluster_key": "cluster.key",
    "timeouts.liveness_window": "0", "timeouts.agent_silent_after": "-1",
    "ha.loop": "0", "ha.history": "nan", "ha.starting": "1e99", "ha.bad_health": "x", "ha.stop": "-1", "ha.maybe_away": "-5",
    "ha.retry_window": "a lot", "ha.yield_margin": "-1", "ha.io_timeout": "0.5", "ha.engine_mem_mib": "0",
    "ha.metrics_port": "65536",
    "monitors.network_test": "icmp", "monitors.gateway": "-gw", "monitors.tcp_port": "0", "monitors.dns_name": "a b",
    "monitors.probes": "0", "monitors.probe_timeout": "0", "monitors.bridge": "br 0", "monitors.cpu_window": "0",
    "notify.smtp_server": "-mx", "notify.smtp_port": "99999", "notify.timeout": "0", "notify.source": "nobody",
    "notify.destinations": "a b@c", "notify.events": "(", "notify.starttls": "maybe", "notify.implicit_tls": "perhaps",
    "notify.smtp_ca": "ca.pem", "notify.username": "two words", "notify.password_file": "/nonexistent/pw",
    "vm.uri": "nouri", "vm.accelerator": "fast", "vm.console_log": "console.log", "vm.start_timeout": "0",
    "vm.migration_transport": "ssh", "vm.migration_pki_dir": "pki", "vm.migration_timeout": "1", "vm.migration_bandwidth": "-1",
    "fencing.enabled": "sometimes", "fencing.dead_after": "0", "fencing.timeout": "0.5", "fencing.secrets_dir": "rel",
    "fencing.agents_dir": "sbin", "fencing.agents": "fence_openstack",
    "engine.fqdn": "-engine", "engine.health_url": "ftp://engine/", "engine.health_ca": "ca.pem",
    "engine.health_timeout": "0",
    "score.base": "-1", "score.network_penalty": "x", "score.config_penalty": "1e9", "score.bridge_penalty": "-1",
    "score.memory_penalty": "1.5", "score.cpu_penalty": "x", "score.cpu_min": "2", "score.cpu_max": "-0.1",
    "score.retry_penalty": "many",
    "engine_vm.name": "bad name", "engine_vm.memory_mib": "1", "engine_vm.vcpus": "0", "engine_vm.cmdline": "a\x01b",
    "engine_vm.network": "wifi", "engine_vm.bridge": "b" * 20, "engine_vm.mac": "01:00:5e:00:00:01",
    "engine_vm.host_port": "70000", "engine_vm.guest_port": "0", "engine_vm.graphics": "rdp",
    "engine_vm.graphics_listen": "nohost",
    "appliance.image": "/nonexistent.qcow2", "appliance.kernel": "vmlinuz", "appliance.initrd": "/nonexistent",
    "cloud_init.enabled": "maybe", "cloud_init.hostname": "-host", "cloud_init.ssh_key": "not a key",
}  # fmt: skip


def run(args: list[str], capsys: pytest.CaptureFixture[str], env: dict[str, str]) -> tuple[int, str, str]:
    code = cli.main(args, AppContext(environ=env))
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.fixture
def base(tmp_path: Path) -> dict[str, object]:
    image = tmp_path / "image.raw"
    image.write_bytes(b"\0" * 1024 * 1024)
    good = {
        "host": {"id": "1"},
        "storage": {"type": "localfs", "path": str(tmp_path / "domain")},
        "paths": {"state_dir": str(tmp_path / "state")},
        "engine": {"fqdn": "engine.example"},
        "engine_vm": {"network": "user", "host_port": "8080", "memory_mib": "256", "vcpus": "1"},
        "appliance": {"image": str(image)},
    }
    return {"tmp": tmp_path, "good": good, "env": {"HECTL_CONFIG": str(tmp_path / "hectl.conf"), "PATH": "/usr/bin:/bin"}}


def write(path: Path, sections: dict[str, dict[str, str]]) -> Path:
    path.write_text("".join(f"[{s}]\n" + "".join(f"{k} = {v}\n" for k, v in keys.items()) for s, keys in sections.items()))
    return path


def test_every_key_has_a_bad_value_here_and_a_row_in_the_docs() -> None:
    keys = {f"{k.section}.{k.name}" for k in answers_mod.KEYS if not k.secret}
    assert set(BAD) == keys
    doc = DOCS.read_text()
    for key in answers_mod.KEYS:
        assert re.search(rf"^\| `{re.escape(key.section)}\.{re.escape(key.name)}`", doc, re.M), key


@pytest.mark.parametrize("key", sorted(BAD))
def test_a_bad_value_is_one_message_naming_the_key_and_changes_nothing(
    key: str, base: dict[str, object], capsys: pytest.CaptureFixture[str]
) -> None:
    tmp: Path = base["tmp"]  # type: ignore[assignment]
    section, name = key.split(".")
    sections = {s: dict(k) for s, k in base["good"].items()}  # type: ignore[attr-defined]
    sections.setdefault(section, {})[name] = BAD[key]
    answers = write(tmp / "answers.ini", sections)
    code, out, err = run(["deploy", "--answers", str(answers), "--dry-run"], capsys, base["env"])  # type: ignore[arg-type]
    assert code in (2, 3), (key, err)
    lines = [line for line in err.splitlines() if not line.startswith("hectl: hint:")]
    assert len(lines) == 1 and "Traceback" not in err, err
    assert f"[{section}] {name}" in err or name in err, err
    assert out == ""
    assert sorted(p.name for p in tmp.iterdir()) == ["answers.ini", "image.raw"]  # nothing written, nothing created


def test_missing_answers_without_a_terminal_are_exit_2(base: dict[str, object], capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(["deploy", "--dry-run"], capsys, base["env"])  # type: ignore[arg-type]
    assert code == 2 and "deploy needs [host] id" in err and "--host-id" in err


def test_a_secret_is_refused_in_an_answers_file_and_on_the_command_line(
    base: dict[str, object], capsys: pytest.CaptureFixture[str]
) -> None:
    tmp: Path = base["tmp"]  # type: ignore[assignment]
    sections = {**base["good"], "cloud_init": {"enabled": "yes", "root_password": "hunter2"}}  # type: ignore[dict-item]
    code, _, err = run(["deploy", "--answers", str(write(tmp / "a.ini", sections)), "--dry-run"], capsys, base["env"])  # type: ignore[arg-type]
    assert code == 3 and "is never read from an answers file" in err and "hunter2" not in err
    code, _, err = run(["deploy", "--cloud-init-root-password", "hunter2"], capsys, base["env"])  # type: ignore[arg-type]
    assert code == 2 and "hunter2" not in err
    loose = tmp / "pw"
    loose.write_text("hunter2\n")
    loose.chmod(0o644)
    code, _, err = run(["deploy", "--cloud-init-root-password-file", str(loose), "--dry-run"], capsys, base["env"])  # type: ignore[arg-type]
    assert code == 3 and "chmod 600" in err and "hunter2" not in err


def test_answers_out_holds_the_effective_answers_without_secrets(
    base: dict[str, object], capsys: pytest.CaptureFixture[str]
) -> None:
    tmp: Path = base["tmp"]  # type: ignore[assignment]
    pw = tmp / "pw"
    pw.write_text("hunter2\n")
    pw.chmod(0o600)
    sections = {**base["good"], "cloud_init": {"enabled": "yes"}}  # type: ignore[dict-item]
    out = tmp / "out.ini"
    args = ["deploy", "--answers", str(write(tmp / "a.ini", sections)), "--cloud-init-root-password-file", str(pw)]
    run([*args, "--engine-vm-vcpus", "1", "--answers-out", str(out), "--dry-run"], capsys, base["env"])  # type: ignore[arg-type]
    text = out.read_text()
    assert "hunter2" not in text and "root_password" not in text
    assert "fqdn = engine.example" in text and "[cloud_init]\nenabled = yes" in text
    # it is a valid answers file: read back, it gives the same answers
    values, storage = answers_mod.read_file(str(out))
    assert values[("engine", "fqdn")] == "engine.example" and storage["path"] == str(tmp / "domain")


def test_a_joining_host_takes_no_shared_or_engine_answers(base: dict[str, object], capsys: pytest.CaptureFixture[str]) -> None:
    args = ["deploy", "--join", "--host-id", "2", "--storage-option", f"path={base['tmp']}", "--dry-run"]
    code, _, err = run([*args, "--score-base", "3000"], capsys, base["env"])  # type: ignore[arg-type]
    assert code == 2 and "comes from the domain" in err
    code, _, err = run([*args, "--engine-vm-vcpus", "2"], capsys, base["env"])  # type: ignore[arg-type]
    assert code == 2 and "comes from the domain" in err


def test_join_and_remove_exclude_each_other(base: dict[str, object], capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(["deploy", "--join", "--remove"], capsys, base["env"])  # type: ignore[arg-type]
    assert code == 2 and "exclude each other" in err


def test_on_a_terminal_missing_answers_are_prompted_with_defaults_and_secrets_hidden(base: dict[str, object]) -> None:
    """A real pseudo-terminal: deploy asks for what is required and missing; the password is not echoed."""
    import os
    import pty
    import select
    import subprocess
    import time

    from tests.conftest import HECTL

    tmp: Path = base["tmp"]  # type: ignore[assignment]
    good = {s: dict(k) for s, k in base["good"].items()}  # type: ignore[attr-defined]
    del good["host"], good["engine"]
    good["cloud_init"] = {"enabled": "yes"}
    answers = write(tmp / "a.ini", good)
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [HECTL, "deploy", "--answers", str(answers), "--dry-run", "--answers-out", str(tmp / "out.ini")],
        stdin=slave, stdout=slave, stderr=slave, env=base["env"], close_fds=True,  # type: ignore[arg-type]
    )  # fmt: skip
    os.close(slave)
    screen = b""
    replies = {b"[host] id": b"7\n", b"[engine] fqdn": b"engine.example\n", b"root_password": b"s3cret-pw\n"}
    deadline = time.monotonic() + 30
    while proc.poll() is None and time.monotonic() < deadline:
        if select.select([master], [], [], 0.2)[0]:
            try:
                screen += os.read(master, 4096)
            except OSError:
                break
            for prompt, reply in list(replies.items()):
                if prompt in screen and screen.rstrip().endswith((b":", b"]:")):
                    os.write(master, reply)
                    del replies[prompt]
    proc.wait(10)
    os.close(master)
    text = screen.decode(errors="replace")
    assert replies == {}, text  # every required answer was asked for
    assert b"s3cret-pw" not in screen  # hidden: not echoed
    out = (tmp / "out.ini").read_text()
    assert "id = 7" in out and "fqdn = engine.example" in out and "s3cret-pw" not in out
