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
