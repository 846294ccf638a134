"""AppContext: what every command receives; builds config, plugins and storage lazily, once."""

from __future__ import annotations

import importlib
import os

from hectl import config as config_mod
from hectl.backends import BUILTIN_BACKENDS
from hectl.clock import Clock, SystemClock

TYPE_CHECKING = False  # typing.TYPE_CHECKING would import typing (see hectl.frozen)
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from hectl.config import Config
    from hectl.lease import SanlockLeases
    from hectl.plugins import Plugins
    from hectl.storage.backend import StorageBackend
    from hectl.storage.metadata import MetadataStore
    from hectl.vm.hypervisor import Hypervisor


class AppContext:
    """Per-invocation state. Nothing is loaded until a command asks for it."""

    def __init__(
        self,
        *,
        config_path: str | None = None,
        environ: Mapping[str, str] | None = None,
        clock: Clock | None = None,
        verbose: int = 0,
        quiet: bool = False,
    ) -> None:
        self.config_path = config_path
        self.environ = os.environ if environ is None else environ
        self.clock = clock or SystemClock()
        self.verbose = verbose
        self.quiet = quiet
        self.storage_timeout: float | None = None  # a --timeout flag overrides [storage] timeout
        self.json_output = False  # --json / --format json was given: errors are JSON documents too
        self._config: Config | None = None
        self._plugins: Plugins | None = None
        self._backend: StorageBackend | None = None
        self._hypervisor: Hypervisor | None = None
        self._leases: SanlockLeases | None = None

    @property
    def config(self) -> Config:
        if self._config is None:
            self._config = config_mod.load(self.config_path, self.environ)
        return self._config

    @property
    def plugins(self) -> Plugins:
        if self._plugins is None:
            from hectl.plugins import make_plugin_manager

            self._plugins = make_plugin_manager(environ=self.environ)
        return self._plugins

    @property
    def timeout(self) -> float:
        return self.storage_timeout if self.storage_timeout is not None else self.config.storage.timeout

    def backend(self, connect: bool = True) -> StorageBackend:
        """The configured storage backend, connected (within the storage timeout) unless asked not to."""
        if self._backend is None:
            self._backend = self._backend_factory()(self.config.storage.option_map(), self.clock)
        if connect and not self._backend.is_connected():
            self._backend.connect(self.timeout)
        return self._backend

    def _backend_factory(self) -> Callable[[Mapping[str, str], Clock], StorageBackend]:
        name = self.config.storage.type
        # Built-in backends are built without pluggy and entry points: status and completion stay fast.
        if self._plugins is None and name in BUILTIN_BACKENDS and name not in config_mod.disabled_plugins(self.environ):
            module, _, attr = BUILTIN_BACKENDS[name].partition(":")
            return getattr(importlib.import_module(module), attr)
        return self.plugins.backend_factory(name)

    def store(self, connect: bool = True) -> MetadataStore:
        """The domain's metadata; ``connect=False`` for readers a backend can serve without connecting
        (glusterfs reads through libgfapi when the volume is not mounted)."""
        from hectl.storage.metadata import MetadataStore

        return MetadataStore(self.backend(connect), self.clock, self.timeout)

    def hypervisor(self) -> Hypervisor:
        """This host's hypervisor (libvirt at ``[vm] uri``), connected on first use."""
        if self._hypervisor is None:
            from hectl.vm.connect import connect

            self._hypervisor = connect(self.config.vm.uri)
        return self._hypervisor

    def leases(self) -> SanlockLeases:
        """sanlock through this host's daemon: the lockspace and the engine lease."""
        if self._leases is None:
            from hectl.lease import SanlockLeases

            backend = self.backend()
            self._leases = SanlockLeases(
                backend.paths(),
                self.config.host.id,
                int(self.config.ha.io_timeout),
                lambda path: backend.check_file(path, self.timeout),
            )
        return self._leases
