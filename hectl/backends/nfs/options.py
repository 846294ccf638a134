"""Validation of the ``[storage]`` keys of the nfs backend: strict character sets, nothing smuggled.

``connection = server:/export`` (IPv6 as ``[addr]:/export``), ``nfs_version``
``auto|3|4|4.1|4.2``, ``mount_options`` (known kernel mount options with typed
values), ``mount_base`` (where the kernel mount goes). The values reach a
``mount`` argv or libnfs, so each is matched against a whitelist; anything
else is a ``ConfigError`` naming the key.
"""

from __future__ import annotations

import re

from hectl.errors import ConfigError
from hectl.frozen import Frozen
from hectl.storage import values
from hectl.storage.values import abs_path, option_list

_EXPORT = re.compile(r"/(?:[A-Za-z0-9._+-]+(?:/[A-Za-z0-9._+-]+)*)?")
VERSIONS = ("auto", "3", "4", "4.1", "4.2")
_UINT = r"[0-9]{1,7}"
# kernel mount options a domain may set (values fully matched); hectl sets vers=, and hard,noac itself
MOUNT_OPTIONS = {
    "timeo": _UINT,
    "retrans": _UINT,
    "rsize": _UINT,
    "wsize": _UINT,
    "port": _UINT,
    "proto": r"(?:tcp|tcp6|rdma)",
    "nconnect": r"[0-9]{1,2}",
}


class NFSOptions(Frozen):
    server: str  # as configured (IPv6 in brackets)
    export: str
    version: str = "auto"
    mount_options: tuple[tuple[str, str], ...] = ()
    mount_base: str = "/run/hectl/mnt"

    @property
    def address(self) -> str:
        """The server for libnfs and sockets (IPv6 without brackets)."""
        return self.server.strip("[]")


def parse(options: dict[str, str], mount_base: str) -> NFSOptions:
    server, export = values.connection(options, "nfs", "export")
    export = "/" + export
    if not _EXPORT.fullmatch(export) or ".." in export.split("/") or "." in export.split("/"):
        raise ConfigError(
            f"[storage] connection = {options['connection']!r}: the export path allows A-Z a-z 0-9 . _ + - and '/' only"
        )
    version = options.get("nfs_version", "auto").strip()
    if version not in VERSIONS:
        raise ConfigError(f"[storage] nfs_version = {version!r}: must be one of {', '.join(VERSIONS)}")
    mount_options = option_list(options.get("mount_options", ""), MOUNT_OPTIONS)
    base = abs_path(options.get("mount_base", mount_base), "mount_base")
    return NFSOptions(
        server=server, export=export.rstrip("/") or "/", version=version, mount_options=mount_options, mount_base=base
    )
