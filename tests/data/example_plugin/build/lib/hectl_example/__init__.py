"""A third-party hectl plugin, as a user would write it: one backend and a maintenance notifier."""

import json
import os

from hectl.backends.localfs.backend import LocalFSBackend
from hectl.errors import ConfigError
from hectl.hookspecs import hookimpl


class ExampleBackend(LocalFSBackend):
    """A directory domain named by ``[storage] dir`` instead of ``path``."""

    name = "example"

    def __init__(self, options, clock):
        if "dir" not in options:
            raise ConfigError("[storage] dir is required for type example")
        super().__init__({"path": options["dir"]}, clock)


@hookimpl
def hectl_register_backends(register):
    register("example", ExampleBackend)


@hookimpl
def hectl_on_maintenance_change(scope, new_mode, reason):
    path = os.environ.get("HECTL_EXAMPLE_EVENTS")
    if path:
        with open(path, "a") as f:
            f.write(json.dumps({"scope": scope, "new_mode": new_mode, "reason": reason}) + "\n")
