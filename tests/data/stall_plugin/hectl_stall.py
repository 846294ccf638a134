"""A test backend plugin: a localfs domain whose storage layer reports a stall of ``[storage] stall`` seconds.

``connect`` creates the file ``[storage] flag`` and ``disconnect`` removes it,
standing in for a mount, so that connect/disconnect have something to change.
"""

import os

from hectl.backends.localfs.backend import LocalFSBackend
from hectl.hookspecs import hookimpl
from hectl.storage.doctor import Stall


class StallBackend(LocalFSBackend):
    name = "stall"

    def __init__(self, options, clock):
        self.stall = float(options.get("stall", "0"))
        self.flag = options["flag"]
        super().__init__({"path": options["path"]}, clock)

    def connect(self, timeout):
        super().connect(timeout)
        open(self.flag, "a").close()

    def disconnect(self, timeout):
        if os.path.exists(self.flag):
            os.unlink(self.flag)

    def is_connected(self):
        return os.path.exists(self.flag)

    def stall_budget(self, timeout):
        return [Stall("test layer", self.stall, "[storage] stall", "set [storage] stall = 30")]


@hookimpl
def hectl_register_backends(register):
    register("stall", StallBackend)
