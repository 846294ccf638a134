"""Plugins: the manager factory, built-ins, blocking, duplicates, and a real pip-installed third-party plugin."""

from __future__ import annotations

import importlib
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
from conftest import REPO, Domain, run_hectl

from hectl import hookspecs
from hectl.backends import BUILTIN_BACKENDS
from hectl.errors import ConfigError, PluginError
from hectl.hookspecs import hookimpl
from hectl.plugins import BUILTIN_PLUGINS, make_plugin_manager


def test_builtins_are_registered_and_match_the_fast_path_table() -> None:
    plugins = make_plugin_manager(load_entrypoints=False, environ={})
    backends = plugins.backends()
    assert set(backends) == set(BUILTIN_BACKENDS)
    for name, spec in BUILTIN_BACKENDS.items():
        module, _, attr = spec.partition(":")
        assert backends[name].factory is getattr(importlib.import_module(module), attr)
        assert backends[name].plugin in BUILTIN_PLUGINS  # plugin name == what HECTL_DISABLE_PLUGINS blocks
    assert [i.kind for i in plugins.infos] == ["builtin"] * len(BUILTIN_PLUGINS)


def test_disabled_builtin_is_gone() -> None:
    plugins = make_plugin_manager(load_entrypoints=False, environ={"HECTL_DISABLE_PLUGINS": "localfs"})
    assert set(plugins.backends()) == {"ctdb", "glusterfs", "nfs"}
    assert sorted((i.name, i.kind) for i in plugins.infos) == [
        ("ctdb", "builtin"),
        ("glusterfs", "builtin"),
        ("localfs", "blocked"),
        ("monitors", "builtin"),
        ("nfs", "builtin"),
    ]
    with pytest.raises(ConfigError, match="unknown storage type 'localfs'"):
        plugins.backend_factory("localfs")


def test_duplicate_backend_name_names_both_plugins() -> None:
    dup = SimpleNamespace(hectl_register_backends=hookimpl(lambda register: register("localfs", object)))
    plugins = make_plugin_manager(load_entrypoints=False, extra=[("copycat", dup)], environ={})
    with pytest.raises(PluginError, match=r"'localfs' is registered by both '(localfs|copycat)' and '(copycat|localfs)'"):
        plugins.backends()


def test_unknown_hook_is_refused() -> None:
    bad = SimpleNamespace(hectl_no_such_hook=hookimpl(lambda: None))
    with pytest.raises(PluginError, match="unknown hook"):
        make_plugin_manager(load_entrypoints=False, extra=[("bad", bad)], environ={})


def test_failing_notifier_is_contained(caplog: pytest.LogCaptureFixture) -> None:
    seen = []

    def explode(scope: str) -> None:
        raise RuntimeError("mail server down")

    plugins = make_plugin_manager(
        load_entrypoints=False,
        extra=[
            ("bad", SimpleNamespace(hectl_on_maintenance_change=hookimpl(explode))),
            ("good", SimpleNamespace(hectl_on_maintenance_change=hookimpl(lambda new_mode: seen.append(new_mode)))),
        ],
        environ={},
    )
    plugins.notify_maintenance_change(
        scope="global", host_id=None, old_mode="none", new_mode="global", reason="", set_by="a@b", expires_at=None
    )
    assert seen == ["global"] and "mail server down" in caplog.text


def test_every_hookspec_is_documented() -> None:
    doc = (REPO / "docs" / "plugins.md").read_text()
    specs = [name for name in dir(hookspecs) if name.startswith("hectl_")]
    assert specs
    for name in specs:
        assert re.search(rf"^###\s+`{name}\(", doc, re.M), f"docs/plugins.md lacks a section for {name}"


@pytest.fixture(scope="module")
def installed_plugin(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The example plugin, really installed by pip (into a private target directory)."""
    target = tmp_path_factory.mktemp("site")
    source = tmp_path_factory.mktemp("src") / "example_plugin"
    shutil.copytree(REPO / "tests" / "data" / "example_plugin", source)  # the build leaves files behind
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", "--target", str(target), str(source)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    return target


def test_pip_installed_backend_appears_and_works(installed_plugin: Path, domain: Domain, tmp_path: Path) -> None:
    env = dict(domain.env, PYTHONPATH=str(installed_plugin), HECTL_EXAMPLE_EVENTS=str(tmp_path / "events"))
    res = run_hectl(["plugins", "--json"], env=env)
    assert res.returncode == 0, res.stderr
    data = json.loads(res.stdout)
    kinds = {p["name"]: (p["kind"], p["version"]) for p in data["plugins"]}
    assert kinds["example"] == ("external", "1.2.3") and kinds["broken"][0] == "failed"
    assert {"name": "example", "plugin": "example"} in data["backends"]
    assert "this plugin is broken on purpose" in res.stderr  # reported, not fatal

    # The third-party backend serves a real domain, and its notifier hears maintenance changes.
    domain.publish(1, vm="up", health="good")
    cfg = domain.config.read_text().replace("type = localfs\npath =", "type = example\ndir =")
    domain.config.write_text(cfg)
    res = run_hectl(["vm-status", "--json"], env=env)
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["storage"]["type"] == "example"
    assert run_hectl(["set-maintenance", "--mode", "global", "--reason", "via plugin"], env=env).returncode == 0
    events = [json.loads(line) for line in (tmp_path / "events").read_text().splitlines()]
    assert events == [{"scope": "global", "new_mode": "global", "reason": "via plugin"}]

    # HECTL_DISABLE_PLUGINS switches it off again.
    res = run_hectl(["vm-status", "--json"], env=dict(env, HECTL_DISABLE_PLUGINS="example,broken"))
    assert res.returncode == 3 and "unknown storage type 'example'" in res.stderr


def test_plugins_table(domain: Domain) -> None:
    res = run_hectl(["plugins"], env=domain.env)
    assert res.returncode == 0 and "localfs" in res.stdout and "builtin" in res.stdout
    assert os.path.exists(domain.state_dir / "completion-cache.json")
