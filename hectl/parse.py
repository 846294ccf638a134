"""Strict parsers for the numbers people type: on the command line, in the config file, in caches.

ASCII digits only: Python's ``int``/``float`` also take ``1_0``, ``+1``, `` 1``,
``nan``, ``inf`` and other scripts' digits (``١``), and ``str.isdigit`` is true
for ``²``. One parser per kind of value, used everywhere (CLI, config, fast
path, completion cache), so that a value means the same thing wherever it is
given. Errors are ``ValueError`` with a short reason; callers name the place.
Imports nothing: the fast paths use it.
"""

from __future__ import annotations

MAX_HOST_ID = 2000
MAX_TTL = 366 * 86400  # the longest duration (maintenance TTL, console password)
DIGITS = frozenset("0123456789")
_LOWER = frozenset("abcdefghijklmnopqrstuvwxyz")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def _digits(text: str) -> bool:
    return bool(text) and set(text) <= DIGITS


def integer(text: str, low: int, high: int) -> int:
    """A whole number in ``low..high`` written in ASCII digits (no sign, spaces or ``_``)."""
    if not _digits(text) or len(text) > 20 or not low <= int(text) <= high:
        raise ValueError(f"must be an integer from {low} to {high}")
    return int(text)


def host_id(text: str) -> int:
    """A host id, ``1..MAX_HOST_ID``."""
    try:
        return integer(text, 1, MAX_HOST_ID)
    except ValueError:
        raise ValueError(f"must be a host id from 1 to {MAX_HOST_ID}") from None


def number(text: str, low: float, high: float) -> float:
    """A finite decimal number in ``low..high``: ASCII digits with at most one '.' (no sign, exponent, nan or inf)."""
    whole, _, frac = text.partition(".")
    if not (_digits(whole) or _digits(frac)) or not set(whole + frac) <= DIGITS or len(text) > 32:
        raise ValueError(f"must be a number from {low:g} to {high:g}")
    value = float(text)
    if not low <= value <= high:
        raise ValueError(f"must be a number from {low:g} to {high:g}")
    return value


def duration(text: str, low: float = 1, high: float = MAX_TTL) -> float:
    """``90``, ``90s``, ``30m``, ``2h``, ``1d`` or combinations like ``1h30m`` -> seconds in ``low..high``."""
    text = text.strip().lower()
    if len(text) > 32:
        raise ValueError(f"'{text[:32]}...' is not a duration")
    total, num = 0, ""
    for ch in text:
        if ch in DIGITS:
            num += ch
        elif ch in _UNITS and num:
            total += int(num) * _UNITS[ch]
            num = ""
        else:
            raise ValueError(f"'{text}' is not a duration (examples: 90, 90s, 30m, 2h, 1d, 1h30m)")
    if num and total:
        raise ValueError(f"'{text}' is not a duration: a number needs a unit at the end")
    total += int(num or 0)
    if not text or not low <= total <= high:
        raise ValueError(f"must be between {_human(low)} and {_human(high)}")
    return float(total)


def _human(seconds: float) -> str:
    for unit, size in (("days", 86400), ("hours", 3600), ("minutes", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds // size:g} {unit}"
    return f"{seconds:g} second" + ("" if seconds == 1 else "s")


# Fence device parameters refused for every method, plugin methods included: hectl sets the action, and
# secrets, programs, files and logs never come from the shared (untrusted) domain. Fence agents (fence_*) are
# further held to an allowlist per agent family (hectl.fencing.families).
FENCE_RESERVED = frozenset(
    {"action", "option", "password", "passwd", "debug", "debug_file", "verbose", "verbose_level", "use_sudo"}
    | {"identity_file", "ssh_options", "password_script", "plug_script", "quiet"}
)
FENCE_RESERVED_SUFFIXES = ("_path", "_script", "_file", "_cmd")


def fence_key(key: str) -> str:
    """A fence-agent parameter name: lower-case letters, digits and ``_``, starting with a letter."""
    ok = 0 < len(key) <= 64 and key[0] in _LOWER and all(c in _LOWER or c in DIGITS or c == "_" for c in key)
    if not ok:
        raise ValueError(f"'{key[:64]}' is not a parameter name (lower-case letters, digits and '_')")
    return key


def fence_value(key: str, value: str) -> str:
    """A parameter's value: printable text of at most 512 characters (it travels as one ``key=value`` line)."""
    if len(value) > 512 or any(ord(c) < 32 or ord(c) == 127 for c in value):
        raise ValueError(f"{key}: the value must be printable text of at most 512 characters")
    return value


def fence_device(text: str) -> tuple[str, tuple[tuple[str, str], ...]]:
    """``METHOD key=value ...`` -> (method, parameters), shell-style quoting allowed in values.

    ``METHOD`` is a fence agent (``fence_ipmilan``) or a fence method a plugin registers.
    Reserved keys (``FENCE_RESERVED``, names ending in ``FENCE_RESERVED_SUFFIXES``) are refused:
    they belong in the host's secrets file or to hectl. A fence agent must be one hectl runs, given
    only the parameters its family takes (``hectl.fencing.families``); a plugin checks its own.
    """
    import shlex

    if len(text) > 4096:
        raise ValueError("a fence device is at most 4096 characters")
    try:
        words = shlex.split(text)
    except ValueError as exc:
        raise ValueError(f"not a fence device: {exc}") from None
    if not words:
        raise ValueError("names no fence agent (example: fence_ipmilan ip=192.0.2.11 username=admin lanplus=1)")
    method = words[0]
    if len(method) > 64 or not method[0].isalpha() or not all(c.isascii() and (c.isalnum() or c in "_-") for c in method):
        raise ValueError(f"'{method[:64]}' is not a fence agent or method name")
    params: dict[str, str] = {}
    for word in words[1:]:
        key, sep, value = word.partition("=")
        if not sep:
            raise ValueError(f"'{word[:64]}' is not key=value")
        key = fence_key(key)
        if key in FENCE_RESERVED or key.endswith(FENCE_RESERVED_SUFFIXES):
            raise ValueError(f"{key} may not be set here (secrets go in the host's secrets file; hectl sets the action)")
        if key in params:
            raise ValueError(f"{key} is given twice")
        params[key] = fence_value(key, value)
    if method.startswith("fence_"):
        from hectl.fencing import families

        families.check(method, tuple(params.items()))
    return method, tuple(params.items())
