"""Untrusted text made safe to show: escaping for terminals, logs and mail, and the bounded Nagios line.

Hostnames, reasons and details come from shared storage, written by any host
(or by anyone who can write the file). Shown raw, they could move the cursor,
set the terminal title (ESC ] ... BEL), overwrite a line (CR), reorder what is
read (bidi overrides) or add lines (LF). ``escape`` makes every such character
visible as a Python-style escape, so text views stay one row per item. JSON
output needs none of this: ``json.dumps`` writes ASCII only. No imports: the
fast path loads this module.
"""

from __future__ import annotations

TYPE_CHECKING = False  # typing.TYPE_CHECKING would import typing (see hectl.frozen)
if TYPE_CHECKING:
    from collections.abc import Sequence

NAGIOS_LIMIT = 4096  # bytes; Nagios keeps about 8 KiB of plugin output
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _visible(c: str) -> str:
    if c.isprintable():
        return c
    n = ord(c)
    return _NAMED.get(c) or (f"\\x{n:02x}" if n < 0x100 else f"\\u{n:04x}" if n < 0x10000 else f"\\U{n:08x}")


def escape(text: str) -> str:
    """``text`` with every non-printable character as ``\\n``, ``\\x1b``, ``\\u202e``...; printable text unchanged.

    Non-printable is Python's ``str.isprintable``: C0 and C1 controls, DEL, format characters (bidi
    overrides and isolates, zero-width characters), line and paragraph separators, spaces other than
    ' ', unassigned code points and surrogates. Idempotent: the result is printable.
    """
    return text if text.isprintable() else "".join(map(_visible, text))


def escape_data(data: object) -> object:
    """``data`` (JSON-like: dicts, lists, tuples, scalars) with every string, keys included, escaped."""
    if isinstance(data, str):
        return escape(data)
    if isinstance(data, dict):
        return {escape(k) if isinstance(k, str) else k: escape_data(v) for k, v in data.items()}
    if isinstance(data, (list, tuple)):
        return [escape_data(v) for v in data]
    return data


def _fit(text: str, limit: int) -> str:
    """``text`` cut to at most ``limit`` UTF-8 bytes, marked with '…' when cut."""
    raw = text.encode("utf-8")
    if len(raw) <= limit:
        return text
    return raw[: limit - 3].decode("utf-8", "ignore") + "…" if limit >= 3 else ""


def nagios_line(head: str, items: Sequence[str], tail: str = "", perf: str = "", limit: int = NAGIOS_LIMIT) -> str:
    """One Nagios status line, ``HEAD - item; item; tail | perf``, of at most ``limit`` UTF-8 bytes.

    Items and tail are escaped and '|' (which starts the performance data) becomes '/'. Items
    that do not fit are dropped from the end and counted ("3 more"); ``head``, ``tail`` and
    ``perf`` are kept whole, so the performance data always survives.
    """

    def clean(s: str) -> str:
        return escape(s).replace("|", "/")

    end = ("; " if items and tail else "") + clean(tail) + (f" | {perf}" if perf else "")
    start = f"{head} - "
    room = limit - len(start.encode("utf-8")) - len(end.encode("utf-8"))
    shown: list[str] = []
    for i, item in enumerate(items):
        more = len(items) - i - 1
        text = clean(item)
        reserve = len(f"; {len(items)} more".encode()) if more else 0
        used = len("; ".join([*shown, text]).encode("utf-8"))
        if used + reserve <= room:
            shown.append(text)
            continue
        left = len(items) - len(shown)
        if not shown:  # not even the first item fits whole: cut it
            shown.append(_fit(text, room - reserve))
            left -= 1
        if left:
            shown.append(f"{left} more")
        break
    return start + "; ".join(shown) + end
