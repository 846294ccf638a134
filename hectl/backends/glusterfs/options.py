"""Validation of the ``[storage]`` keys of the glusterfs backend: strict character sets, nothing smuggled.

Every value ends up in the argv of ``glusterfs`` (the FUSE client) or in a
path, so each part is matched against a whitelist: a host name, an IPv4
address or a bracketed IPv6 address; a volume name; a few known client
options with typed values. Anything else is a ``ConfigError`` naming the key.
"""

from __future__ import annotations

import re

from hectl.errors import ConfigError
from hectl.frozen import Frozen
from hectl.storage import values
from hectl.storage.values import host, option_list

_VOLUME = re.compile(r"[A-Za-z0-9_-]{1,64}")
_UINT = r"[0-9]{1,6}"
# client options a domain may need, passed to glusterfs as --NAME=VALUE (values fully matched)
MOUNT_OPTIONS = {
    "log-level": r"(?:CRITICAL|ERROR|WARNING|INFO|DEBUG|TRACE|NONE)",
    "attribute-timeout": _UINT,
    "entry-timeout": _UINT,
    "negative-timeout": _UINT,
    "background-qlen": _UINT,
    "reader-thread-count": _UINT,
}


class GlusterOptions(Frozen):
    """The validated connection: volfile servers in configured order, the volume, client options."""

    servers: tuple[str, ...]
    volume: str
    mount_options: tuple[tuple[str, str], ...] = ()


def parse(options: dict[str, str]) -> GlusterOptions:
    server, volume = values.connection(options, "glusterfs", "volume")
    if not _VOLUME.fullmatch(volume):
        raise ConfigError(f"[storage] connection = {options['connection']!r}: the volume name allows A-Z a-z 0-9 _ - only")
    servers = [server]
    for backup in options.get("backup_servers", "").replace(",", " ").split():
        if host(backup, "backup_servers") not in servers:
            servers.append(backup)
    mount_options = option_list(options.get("mount_options", ""), MOUNT_OPTIONS)
    return GlusterOptions(servers=tuple(servers), volume=volume, mount_options=mount_options)
