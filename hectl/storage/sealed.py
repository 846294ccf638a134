"""Sealed documents: a small JSON body with a CRC32, in a fixed-size region written in one go.

Shared storage is untrusted: a torn write, a foreign file or a hand edit must
be recognised as such and never half used. ``seal`` gives the bytes of a
region (compact JSON padded with spaces); ``unseal`` gives the body back, or
``None`` for a region that was never written (empty, zeros or spaces).
"""

from __future__ import annotations

import json
import zlib

FORMAT = 1


class Corrupt(ValueError):
    """The region holds something that is not a sealed document of this format."""


def _crc(body: object) -> int:
    return zlib.crc32(json.dumps(body, sort_keys=True, separators=(",", ":")).encode())


def seal(key: str, body: dict[str, object], size: int) -> bytes:
    """``body`` under ``key`` with its checksum, padded to ``size``; ``Corrupt`` when it does not fit."""
    data = json.dumps({"format": FORMAT, "crc32": _crc(body), key: body}, sort_keys=True).encode() + b"\n"
    if len(data) > size:
        raise Corrupt(f"too large ({len(data)} bytes, at most {size})")
    return data.ljust(size, b" ")


def unseal(key: str, data: bytes) -> dict[str, object] | None:
    """The body stored under ``key``; ``None`` when nothing was ever written; ``Corrupt`` says what is wrong."""
    text = data.rstrip(b"\0 \n")
    if not text:
        return None
    try:
        doc = json.loads(text)
    except (ValueError, UnicodeDecodeError):
        raise Corrupt("not JSON (torn or foreign)") from None
    if not isinstance(doc, dict) or not isinstance(doc.get(key), dict):
        raise Corrupt(f"no '{key}' object")
    if doc.get("format") != FORMAT or doc.get("crc32") != _crc(doc[key]):
        raise Corrupt("checksum or format mismatch")
    return doc[key]
