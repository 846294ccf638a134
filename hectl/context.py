"""AppContext: what every command receives; builds config, plugins and storage lazily, once."""

from __future__ import annotations

import importlib
import os

from hectl import config as config_mod
from hectl.backends import BUILTIN_BACKENDS
from hectl.clock import Clock, SystemClock
from hectl.errors import ConfigError, HectlError, StorageTimeout

TYPE_CHECKING = False  # typing.TYPE_CHECKING would import typing (see hectl.frozen)
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from hectl.config import Config
    from hectl.lease import SanlockLeases
    from hectl.plugins import Plugins
    from hectl.storage.backend import StorageBackend
    from hectl.storage.cluster import ClusterConfig
    from hectl.storage.clusterkey import ClusterKey
    from hectl.storage.metadata import MetadataStore
    from hectl.vm.hypervisor import Hypervisor


class AppContext:
    """Per-invocation state. Nothing is loaded until a command asks for it."""

    def __init__(
        self,
        *,
        config_path: str | None = None,
        config_text: str | None = None,
        environ: Mapping[str, str] | None = None,
        clock: Clock | None = None,
        verbose: int = 0,
        quiet: bool = False,
    ) -> None:
        self.config_path = config_path
        self.config_text = config_text  # the configuration file's content, when it is not (yet) on disk
        self.environ = os.environ if environ is None else environ
        self.clock = clock or SystemClock()
        self.verbose = verbose
        self.quiet = quiet
        self.storage_timeout: float | None = None  # a --timeout flag overrides [storage] timeout
        self.json_output = False  # --json / --format json was given: errors are JSON documents too
        self._local: Config | None = None
        self._config: Config | None = None
        self.cluster_version = 0  # of the cluster configuration merged into ``config`` (0: none)
        self.cluster_problem = ""  # why the domain's copy was not read (the cached copy was used)
        self.storage_hung: StorageTimeout | None = None  # storage did not answer in this command: fail at once next time
        self._plugins: Plugins | None = None
        self._backend: StorageBackend | None = None
        self._hypervisor: Hypervisor | None = None
        self._leases: SanlockLeases | None = None

    @property
    def local_config(self) -> Config:
        """This host's file (and environment) alone: enough to reach the storage."""
        if self._local is None:
            self._local = config_mod.load(self.config_path, self.environ, text=self.config_text)
        return self._local

    @property
    def config(self) -> Config:
        """The local configuration with the domain's cluster configuration merged in (``load_config``)."""
        if self._config is None:
            self._config = self.load_config()
        return self._config

    def load_config(self) -> Config:
        """Read the configuration anew: the local file, then the cluster configuration on the domain.

        The domain's document is used only when this host's cluster key signed it, it is not
        older than the copy this host used last, and it makes a valid configuration with the
        local file; it then becomes the copy. Otherwise that copy is used (else the local file
        alone) and ``cluster_problem`` says why: a command that needs the storage fails on its
        own access (at once, if this one timed out). A fault of the local file is raised.
        """
        from hectl.errors import SharedConfigError
        from hectl.storage import cluster

        self._local = None
        local = self.local_config
        cache = self.cluster_cache
        kept = cluster.load_copy(cache)
        try:
            shared = cluster.read(self.backend(connect=False), self.timeout, self.cluster_key(), local.cluster_key)
            if kept is not None and (shared is None or shared.version < kept.version):
                what = f"version {shared.version} is older than" if shared else "the domain has none, yet this host used"
                raise cluster.Unauthenticated(
                    f"{cluster.path(self.backend(connect=False))}: the cluster configuration is refused: {what} "
                    f"version {kept.version} (an old document put back, or one removed)"
                )
            cfg = self._merged(shared)
            self.cluster_problem = ""
            cluster.save_copy(cache, shared)
            return cfg
        except HectlError as exc:
            if isinstance(exc, ConfigError) and not isinstance(exc, (SharedConfigError, cluster.NoKey)):
                raise  # this host's own file (or key file) is wrong: say so
            if isinstance(exc, StorageTimeout):
                self.storage_hung = exc
            problem = exc.message
        for fallback in (kept, None):
            try:
                cfg = self._merged(fallback)
            except SharedConfigError:
                continue  # the copy no longer fits this host's file
            used = f"this host's copy of version {fallback.version}" if fallback else "the local file alone"
            self.cluster_problem = f"{problem} (using {used})"
            return cfg
        raise AssertionError("the local file alone has no shared keys to conflict")  # pragma: no cover

    def cluster_key(self) -> ClusterKey | None:
        """This host's cluster key (``None``: it has none); ``ConfigError`` when its file is unsafe."""
        from hectl.storage import clusterkey

        return clusterkey.load(self.local_config.cluster_key)

    @property
    def cluster_cache(self) -> str:
        """This host's copy of the last cluster configuration it used."""
        return os.path.join(self.local_config.paths.state_dir, "cluster-config.json")

    def _merged(self, shared: ClusterConfig | None) -> Config:
        """The local configuration with ``shared`` merged in; ``SharedConfigError`` when ``shared`` does not fit."""
        self.cluster_version = shared.version if shared else 0
        if shared is None:
            return self.local_config
        return config_mod.load(
            self.config_path,
            self.environ,
            shared=shared.sections,
            shared_source=f"cluster configuration v{shared.version}",
            text=self.config_text,
        )

    def _fail_if_hung(self) -> None:
        """A second storage wait in one command would double its --timeout: report the first one's error now."""
        if self.storage_hung is not None:
            raise self.storage_hung

    def use_config(self, cfg: Config) -> None:
        """Use ``cfg`` as this command's configuration (deploy: the one it is about to write)."""
        self._config = cfg

    @property
    def plugins(self) -> Plugins:
        if self._plugins is None:
            from hectl.plugins import make_plugin_manager

            self._plugins = make_plugin_manager(environ=self.environ)
        return self._plugins

    @property
    def timeout(self) -> float:
        return self.storage_timeout if self.storage_timeout is not None else self.local_config.storage.timeout

    def backend(self, connect: bool = True) -> StorageBackend:
        """The configured storage backend, connected (within the storage timeout) unless asked not to."""
        if self._backend is None:
            self._backend = self._backend_factory()(self.local_config.storage.option_map(), self.clock)
        if connect and not self._backend.is_connected():
            self._fail_if_hung()
            self._backend.connect(self.timeout)
        return self._backend

    def _backend_factory(self) -> Callable[[Mapping[str, str], Clock], StorageBackend]:
        name = self.local_config.storage.type
        # Built-in backends are built without pluggy and entry points: status and completion stay fast.
        if self._plugins is None and name in BUILTIN_BACKENDS and name not in config_mod.disabled_plugins(self.environ):
            module, _, attr = BUILTIN_BACKENDS[name].partition(":")
            return getattr(importlib.import_module(module), attr)
        return self.plugins.backend_factory(name)

    def store(self, connect: bool = True) -> MetadataStore:
        """The domain's metadata; ``connect=False`` for readers a backend can serve without connecting
        (glusterfs reads through libgfapi when the volume is not mounted)."""
        from hectl.storage.metadata import MetadataStore

        self._fail_if_hung()
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
