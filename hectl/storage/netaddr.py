"""Server names in ``[storage]`` options: a host name, an IPv4 address or a bracketed IPv6 address, nothing else.

Network backends put them into a client's argv, a mount source or a URL, so
they are matched against a strict whitelist (no option or path smuggling).
"""

from __future__ import annotations

import re

from hectl.errors import ConfigError

_HOST = re.compile(r"(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*")
_IPV6 = re.compile(r"\[[0-9A-Fa-f:.]{2,45}\]")


def host(value: str, key: str) -> str:
    """``value`` when it is a host name or address (IPv6 in brackets), else ``ConfigError`` naming ``key``."""
    if len(value) <= 253 and (_HOST.fullmatch(value) or _IPV6.fullmatch(value)):
        return value
    raise ConfigError(f"[storage] {key}: {value!r} is not a host name or address")
