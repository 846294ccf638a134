"""Configuration: one merge of defaults, file and environment into frozen objects, clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from hectl import config
from hectl.errors import ConfigError, ExitCode


def write(tmp_path: Path, text: str) -> str:
    path = tmp_path / "hectl.conf"
    path.write_text(text)
    return str(path)


MINIMAL = "[host]\nid = 2\n[storage]\npath = /srv/domain\n"


def test_defaults_and_frozen(tmp_path: Path) -> None:
    cfg = config.load(write(tmp_path, MINIMAL), environ={})
    assert cfg.host.id == 2
    assert cfg.storage.type == "localfs" and cfg.storage.timeout == 5.0
    assert cfg.storage.option_map() == {"path": "/srv/domain"}
    assert cfg.paths.state_dir == "/var/lib/hectl" and cfg.audit_log == "/var/lib/hectl/audit.log"
    assert cfg.score.base == 3400 and cfg.score.network_penalty == 1600
    with pytest.raises(AttributeError):
        cfg.host.id = 3  # type: ignore[misc]


def test_file_path_precedence(tmp_path: Path) -> None:
    path = write(tmp_path, MINIMAL)
    assert config.config_path(None, {}) == config.DEFAULT_PATH
    assert config.config_path(None, {"HECTL_CONFIG": path}) == path
    assert config.config_path("/x.conf", {"HECTL_CONFIG": path}) == "/x.conf"


def test_environment_overrides_file(tmp_path: Path) -> None:
    env = {"HECTL_HOST_ID": "7", "HECTL_STORAGE_TIMEOUT": "1.5", "HECTL_STATE_DIR": "/run/x", "HECTL_STORAGE_PATH": "/d"}
    cfg = config.load(write(tmp_path, MINIMAL), environ=env)
    assert (cfg.host.id, cfg.storage.timeout, cfg.paths.state_dir) == (7, 1.5, "/run/x")
    assert cfg.storage.option_map() == {"path": "/d"}


def test_missing_file_names_it(tmp_path: Path) -> None:
    missing = str(tmp_path / "nope.conf")
    with pytest.raises(ConfigError) as info:
        config.load(missing, environ={})
    assert missing in info.value.message and info.value.exit_code == ExitCode.CONFIG


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[host]\nid = abc\n", "[host] id = 'abc': must be a host id from 1 to 2000"),
        ("[host]\nid = 2001\n", "[host] id = '2001': must be a host id from 1 to 2000"),
        ("[host]\nid = 1_0\n", "[host] id = '1_0': must be a host id from 1 to 2000"),
        ("[host]\nid = +1\n", "[host] id = '+1': must be a host id"),
        ("[host]\nid = \u0661\n", "[host] id = '\u0661': must be a host id"),
        ("[host]\nhostname = x\n", "[host] id is required"),
        ("[host]\nid = 1\n[storage]\ntimeout = -3\n", "[storage] timeout = '-3': must be a number from 0.1 to 3600"),
        ("[host]\nid = 1\n[storage]\ntimeout = nan\n", "[storage] timeout = 'nan': must be a number"),
        ("[host]\nid = 1\n[ha]\nloop = inf\n", "[ha] loop = 'inf': must be a number from 0.1 to 3600"),
        ("[host]\nid = 1\n[ha]\nstop = 1e9\n", "[ha] stop = '1e9': must be a number from 0.1 to 86400"),
        ("[host]\nid = 1\n[score]\nbase = 1e20\n", "[score] base = '1e20': must be an integer from 0 to 100000"),
        ("[host]\nid = 1\n[score]\nbase = " + "1" + "0" * 20 + "\n", "[score] base = '1" + "0" * 20 + "': must be an integer"),
        ("[host]\nid = 1\n[score]\nretry_penalty = 1_000\n", "[score] retry_penalty = '1_000': must be an integer"),
        ("[host]\nid = 1\n[score]\ncpu_max = nan\n", "[score] cpu_max = 'nan': must be a number from 0 to 1"),
        ("[host]\nid = 1\n[monitors]\nprobes = 1000000\n", "[monitors] probes = '1000000': must be an integer from 1 to 100"),
        ("[host]\nid = 1\n[ha]\nmetrics_port = 65536\n", "[ha] metrics_port = '65536': must be an integer from 0 to 65535"),
        ("[host]\nid = 1\n[notify]\nsmtp_port = \u00b2\n", "[notify] smtp_port = '\u00b2': must be an integer"),
        ("[host]\nid = 1\n[paths]\nstate_dir = relative\n", "[paths] state_dir = 'relative': must be an absolute path"),
        ("[host]\nid = 1\n[hots]\nx = 1\n", "unknown section [hots]"),
        ("[host]\nid = 1\ncolour = blue\n", "[host] unknown key 'colour'"),
        ("[host]\nid = 1\n[score]\ncpu_min = 0.9\ncpu_max = 0.4\n", "cpu_min (0.9) must not exceed cpu_max (0.4)"),
        ("id = 1\n", "not a valid INI file"),
        ("[host]\nid = 1\n[host]\nid = 2\n", "not a valid INI file"),
    ],
)
def test_invalid_values_name_file_and_key(tmp_path: Path, text: str, expected: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        config.load(path, environ={})
    assert expected in info.value.message
    assert path in info.value.message


def test_invalid_environment_value_names_the_variable(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        config.load(write(tmp_path, MINIMAL), environ={"HECTL_HOST_ID": "zero"})
    assert "environment HECTL_HOST_ID = 'zero'" in info.value.message


def test_plugin_sections_pass_through(tmp_path: Path) -> None:
    cfg = config.load(write(tmp_path, MINIMAL + "[plugin:mailer]\nto = ops@example.org\n"), environ={})
    assert cfg.plugin_sections == (("mailer", (("to", "ops@example.org"),)),)


def test_disabled_plugins() -> None:
    assert config.disabled_plugins({"HECTL_DISABLE_PLUGINS": " a, ,b "}) == frozenset({"a", "b"})
    assert config.disabled_plugins({}) == frozenset()


def test_documented_example_parses(tmp_path: Path) -> None:
    doc = (Path(__file__).resolve().parent.parent / "docs" / "configuration.md").read_text()
    example = doc.split("```ini\n", 1)[1].split("```", 1)[0].replace("[plugin:NAME]", "[plugin:mailer]")
    cfg = config.load(write(tmp_path, example), environ={})
    assert cfg.host.id == 1 and cfg.host.hostname == "h1.example.org"
    assert cfg.storage.option_map() == {"path": "/srv/hectl-domain"} and cfg.storage.timeout == 5.0
    assert cfg.score == config.ScoreConfig() and cfg.timeouts == config.TimeoutsConfig() and cfg.ha == config.HAConfig()
    assert cfg.monitors == config.MonitorsConfig(network_test="ping", gateway="192.0.2.1", bridge="br0")


def _secret(tmp_path: Path, mode: int = 0o600) -> Path:
    path = tmp_path / "smtp-password"
    path.write_text("pw\n")
    path.chmod(mode)
    return path


def _notify(tmp_path: Path, body: str) -> str:
    return write(tmp_path, MINIMAL + "[notify]\nsmtp_server = mail.example.org\n" + body)


def test_smtp_login_settings(tmp_path: Path) -> None:
    secret = _secret(tmp_path)
    cfg = config.load(_notify(tmp_path, f"starttls = yes\nusername = hectl\npassword_file = {secret}\n"), environ={})
    assert (cfg.notify.starttls, cfg.notify.username, cfg.notify.password_file) == (True, "hectl", str(secret))
    assert config.load(write(tmp_path, MINIMAL), environ={}).notify.starttls is False
    cfg = config.load(_notify(tmp_path, f"implicit_tls = yes\nusername = hectl\npassword_file = {secret}\n"), environ={})
    assert (cfg.notify.implicit_tls, cfg.notify.starttls) == (True, False)


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o644, 0o660])
def test_a_password_file_others_may_read_is_refused(tmp_path: Path, mode: int) -> None:
    secret = _secret(tmp_path, mode)
    path = _notify(tmp_path, f"starttls = yes\nusername = hectl\npassword_file = {secret}\n")
    with pytest.raises(ConfigError) as err:
        config.load(path, environ={})
    assert err.value.exit_code == ExitCode.CONFIG
    assert f"[notify] password_file = '{secret}'" in err.value.message and f"mode {mode:04o}" in err.value.message


def test_a_password_file_of_another_user_is_refused(tmp_path: Path) -> None:
    import os

    secret = _secret(tmp_path)
    if os.geteuid() != 0:
        pytest.skip("needs root to give the file to another user")
    os.chown(secret, 65534, 65534)
    with pytest.raises(ConfigError, match=r"\[notify\] password_file = .*must be owned by root or by this user"):
        config.load(_notify(tmp_path, f"starttls = yes\nusername = hectl\npassword_file = {secret}\n"), environ={})


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("starttls = yes\nusername = hectl\n", "username and password_file go together"),
        ("starttls = yes\npassword_file = {secret}\n", "username and password_file go together"),
        ("username = hectl\npassword_file = {secret}\n", "username needs starttls = yes or implicit_tls = yes"),
        ("starttls = yes\nimplicit_tls = yes\n", "starttls and implicit_tls exclude each other"),
        ("starttls = maybe\n", "[notify] starttls = 'maybe': must be yes or no"),
        ("password_file = {secret}.absent\nusername = x\nstarttls = yes\n", "cannot use it: No such file or directory"),
    ],
)
def test_smtp_login_mistakes_name_the_key(tmp_path: Path, body: str, expected: str) -> None:
    secret = _secret(tmp_path)
    with pytest.raises(ConfigError) as err:
        config.load(_notify(tmp_path, body.format(secret=secret)), environ={})
    assert expected in err.value.message and err.value.exit_code == ExitCode.CONFIG


def test_every_numeric_range_is_documented() -> None:
    doc = (Path(__file__).resolve().parent.parent / "docs" / "configuration.md").read_text()
    for key, (low, high, whole) in config.numeric_ranges().items():
        assert f"| `{key}` | {'integer' if whole else 'number'} | {low:.10g} to {high:.10g} |" in doc, key


@pytest.mark.parametrize(
    ("var", "value"), [("HECTL_HOST_ID", "1_0"), ("HECTL_HOST_ID", "\u0661"), ("HECTL_STORAGE_TIMEOUT", "nan")]
)
def test_environment_numbers_are_as_strict_as_the_file(tmp_path: Path, var: str, value: str) -> None:
    with pytest.raises(ConfigError) as info:
        config.load(write(tmp_path, MINIMAL), environ={var: value})
    assert info.value.message.startswith(f"environment {var} = {value!r}: must be a")
