"""The plugin manager factory and the typed façade every caller uses.

Order: hook specs, blocked names (``HECTL_DISABLE_PLUGINS``), third-party
plugins from entry-point group ``hectl``, then the built-ins, then
``check_pending``. A third-party plugin that fails to import is reported and
skipped; it never takes hectl down.
"""

from __future__ import annotations

import importlib
import logging
import os
from typing import TYPE_CHECKING, NamedTuple

import pluggy

from hectl import hookspecs
from hectl.config import disabled_plugins
from hectl.errors import ConfigError, PluginError

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping

    from hectl.clock import Clock
    from hectl.storage.backend import StorageBackend

log = logging.getLogger(__name__)
ENTRYPOINT_GROUP = "hectl"
# Built-in plugins: name (what HECTL_DISABLE_PLUGINS blocks) -> module with the hookimpls.
BUILTIN_PLUGINS = {
    "ctdb": "hectl.backends.ctdb.plugin",
    "glusterfs": "hectl.backends.glusterfs.plugin",
    "localfs": "hectl.backends.localfs.plugin",
    "nfs": "hectl.backends.nfs.plugin",
    "monitors": "hectl.ha.monitors",
}


class PluginInfo(NamedTuple):
    name: str
    kind: str  # builtin | external | blocked | failed
    version: str = ""
    hooks: tuple[str, ...] = ()
    error: str = ""


class BackendEntry(NamedTuple):
    name: str
    factory: Callable[[Mapping[str, str], Clock], StorageBackend]
    plugin: str


def make_plugin_manager(
    *, load_entrypoints: bool = True, extra: Iterable[tuple[str, object]] = (), environ: Mapping[str, str] | None = None
) -> Plugins:
    """Build a fresh plugin manager (never a global) and wrap it in the façade."""
    environ = os.environ if environ is None else environ
    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    blocked = disabled_plugins(environ)
    for name in blocked:
        pm.set_blocked(name)
    infos: list[PluginInfo] = [PluginInfo(name, "blocked") for name in sorted(blocked)]
    if load_entrypoints:
        infos += _load_entrypoints(pm, blocked)
    for name, module in BUILTIN_PLUGINS.items():
        if name not in blocked:
            pm.register(importlib.import_module(module), name=name)
            infos.append(PluginInfo(name, "builtin", hooks=_hooks_of(pm, name)))
    for name, plugin in extra:
        if name not in blocked:
            pm.register(plugin, name=name)
            infos.append(PluginInfo(name, "external", hooks=_hooks_of(pm, name)))
    try:
        pm.check_pending()
    except pluggy.PluginValidationError as exc:
        raise PluginError(f"plugin {exc.plugin!r} implements an unknown hook: {exc}") from None
    return Plugins(pm, tuple(infos))


def _load_entrypoints(pm: pluggy.PluginManager, blocked: frozenset[str]) -> list[PluginInfo]:
    from importlib.metadata import entry_points

    infos = []
    for ep in entry_points(group=ENTRYPOINT_GROUP):
        if ep.name in blocked or pm.has_plugin(ep.name):
            continue
        version = ep.dist.version if ep.dist is not None else ""
        try:
            pm.register(ep.load(), name=ep.name)
        except Exception as exc:  # a broken third-party plugin must not break hectl
            log.warning("plugin %s could not be loaded: %s", ep.name, exc)
            infos.append(PluginInfo(ep.name, "failed", version, error=f"{type(exc).__name__}: {exc}"))
            continue
        infos.append(PluginInfo(ep.name, "external", version, _hooks_of(pm, ep.name)))
    return infos


def _hooks_of(pm: pluggy.PluginManager, name: str) -> tuple[str, ...]:
    plugin = pm.get_plugin(name)
    callers = pm.get_hookcallers(plugin) or []
    return tuple(sorted(c.name for c in callers))


class Plugins:
    """Typed façade over the plugin manager: no caller spells a hook name."""

    def __init__(self, pm: pluggy.PluginManager, infos: tuple[PluginInfo, ...]) -> None:
        self.pm = pm
        self.infos = infos
        self._backends: dict[str, BackendEntry] | None = None

    def backends(self) -> dict[str, BackendEntry]:
        """Every registered backend by name; a duplicate name is a ``PluginError``."""
        if self._backends is None:
            found: dict[str, BackendEntry] = {}
            for impl in self.pm.hook.hectl_register_backends.get_hookimpls():

                def register(name: str, factory: Callable[..., StorageBackend], _plugin: str = impl.plugin_name) -> None:
                    if name in found:
                        raise PluginError(
                            f"storage backend '{name}' is registered by both '{found[name].plugin}' and '{_plugin}'",
                            hint="disable one with HECTL_DISABLE_PLUGINS",
                        )
                    found[name] = BackendEntry(name, factory, _plugin)

                impl.function(register=register)
            self._backends = dict(sorted(found.items()))
        return self._backends

    def backend_factory(self, name: str) -> Callable[[Mapping[str, str], Clock], StorageBackend]:
        backends = self.backends()
        if name not in backends:
            known = ", ".join(backends) or "none"
            raise ConfigError(f"unknown storage type '{name}' (available: {known})")
        return backends[name].factory

    def monitors(self, config: object, clock: Clock) -> dict[str, object]:
        """Every registered monitor, built from ``config``; a plugin whose monitors fail to build is skipped."""
        found: dict[str, object] = {}
        for impl in self.pm.hook.hectl_register_monitors.get_hookimpls():

            def register(name: str, factory: Callable[..., object]) -> None:
                found[name] = factory(config, clock)

            try:
                impl.function(register=register)
            except Exception:
                log.exception("plugin %s: monitors not registered", impl.plugin_name)
        return found

    def fence_methods(self) -> dict[str, Callable[..., object]]:
        """Every plugin's fence method by name; a duplicate or a ``fence_*`` name is a ``PluginError``."""
        found: dict[str, tuple[Callable[..., object], str]] = {}
        for impl in self.pm.hook.hectl_register_fence_methods.get_hookimpls():

            def register(name: str, factory: Callable[..., object], _plugin: str = impl.plugin_name) -> None:
                if name in found or name.startswith("fence_"):
                    why = f"also registered by '{found[name][1]}'" if name in found else "fence_* names are fence agents"
                    raise PluginError(f"fence method '{name}' of plugin '{_plugin}': {why}")
                found[name] = (factory, _plugin)

            try:
                impl.function(register=register)
            except PluginError:
                raise
            except Exception:
                log.exception("plugin %s: fence methods not registered", impl.plugin_name)
        return {name: factory for name, (factory, _) in sorted(found.items())}

    def add(self, name: str, plugin: object) -> None:
        """Register a plugin built at run time (e.g. the mail notifier from ``[notify]``)."""
        self.pm.register(plugin, name=name)

    def notify_maintenance_change(self, **event: object) -> None:
        self._notify(self.pm.hook.hectl_on_maintenance_change, event)

    def notify_state_transition(self, **event: object) -> None:
        self._notify(self.pm.hook.hectl_on_state_transition, event)

    def _notify(self, caller: pluggy.HookCaller, event: Mapping[str, object]) -> None:
        for impl in caller.get_hookimpls():
            try:
                impl.function(**{k: v for k, v in event.items() if k in impl.argnames})
            except Exception:
                log.exception("plugin %s failed in %s", impl.plugin_name, caller.name)
