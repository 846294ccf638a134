"""Validated ``[storage]`` values of the network backends: server names, mount option lists, mount bases.

They end up in a client's argv, a mount source, a URL or a path, so each is
matched against a strict whitelist (no option or path smuggling); anything
else is a ``ConfigError`` naming the key.
"""

from __future__ import annotations

import os
import re

from hectl.errors import ConfigError

_HOST = re.compile(r"(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*")
_IPV6 = re.compile(r"\[[0-9A-Fa-f:.]{2,45}\]")


def host(value: str, key: str) -> str:
    """``value`` when it is a host name or address (IPv6 in brackets), else ``ConfigError`` naming ``key``."""
    if len(value) <= 253 and (_HOST.fullmatch(value) or _IPV6.fullmatch(value)):
        return value
    raise ConfigError(f"[storage] {key}: {value!r} is not a host name or address")


def connection(options: dict[str, str], kind: str, what: str) -> tuple[str, str]:
    """``[storage] connection = server:/WHAT`` of a ``kind`` backend: the checked server, and WHAT (its path or
    name, without the leading slash, for the backend to check)."""
    text = options.get("connection", "")
    if not text:
        raise ConfigError(f"[storage] connection is required for type {kind} (server:/{what})")
    server, sep, rest = text.rpartition(":/")
    if not sep:
        raise ConfigError(f"[storage] connection = {text!r}: expected server:/{what}")
    return host(server, "connection"), rest


def option_list(text: str, allowed: dict[str, str], key: str = "mount_options") -> tuple[tuple[str, str], ...]:
    """``NAME=VALUE,...`` where every NAME is in ``allowed`` and its VALUE fully matches the pattern given there."""
    out = []
    for item in text.split(","):
        item = item.strip()
        if not item:
            continue
        name, _, value = item.partition("=")
        pattern = allowed.get(name)
        if pattern is None or not re.fullmatch(pattern, value):
            raise ConfigError(f"[storage] {key}: {item!r} is not allowed (known: {', '.join(allowed)}, each NAME=VALUE)")
        out.append((name, value))
    return tuple(out)


def abs_path(value: str, key: str) -> str:
    """A normalised absolute path (no ``..``, no trailing slash games)."""
    if not os.path.isabs(value) or os.path.normpath(value) != value.rstrip("/") or "\0" in value:
        raise ConfigError(f"[storage] {key} = {value!r}: must be a normalised absolute path")
    return value
