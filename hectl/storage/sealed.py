"""Sealed documents: a small JSON body with a CRC32, in a fixed-size region written in one go.

Shared storage is untrusted: a torn write, a foreign file or a hand edit must
be recognised as such and never half used. ``seal`` gives the bytes of a
region (compact JSON padded with spaces); ``unseal`` gives the body back, or
``None`` for a region that was never written (empty, zeros or spaces).

A checksum only catches accidents. A document hosts act on is also signed
(``signer``: the cluster key, ``hectl.storage.clusterkey``): an HMAC-SHA256 of
its kind and body and the key's id, which a writer without the key cannot forge.
"""

from __future__ import annotations

import json
import zlib

FORMAT = 1
MAC = "hmac_sha256"

TYPE_CHECKING = False
if TYPE_CHECKING:
    from hectl.storage.clusterkey import ClusterKey


class Corrupt(ValueError):
    """The region holds something that is not a sealed document of this format."""


class Unauthenticated(Corrupt):
    """A well-formed document that the signer's key did not sign (forged, unsigned, or signed with another key)."""


def _signed(key: str, body: object) -> bytes:
    return json.dumps({"kind": key, "body": body}, sort_keys=True, separators=(",", ":")).encode()


def _crc(body: object) -> int:
    return zlib.crc32(json.dumps(body, sort_keys=True, separators=(",", ":")).encode())


def seal(key: str, body: dict[str, object], size: int, signer: ClusterKey | None = None) -> bytes:
    """``body`` under ``key`` with its checksum (and ``signer``'s signature), padded to ``size``.

    ``Corrupt`` when it does not fit.
    """
    doc: dict[str, object] = {"format": FORMAT, "crc32": _crc(body), key: body}
    if signer is not None:
        doc.update(key_id=signer.id, **{MAC: signer.sign(_signed(key, body))})
    data = json.dumps(doc, sort_keys=True).encode() + b"\n"
    if len(data) > size:
        raise Corrupt(f"too large ({len(data)} bytes, at most {size})")
    return data.ljust(size, b" ")


def written(data: bytes) -> bool:
    """Whether the region holds anything (a never-written one is empty, zeros or spaces)."""
    return bool(data.rstrip(b"\0 \n"))


def unseal(key: str, data: bytes, signer: ClusterKey | None = None) -> dict[str, object] | None:
    """The body stored under ``key``; ``None`` when nothing was ever written; ``Corrupt`` says what is wrong.

    With ``signer``, a body it did not sign is ``Unauthenticated``.
    """
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
    if signer is not None:
        _verify(doc, key, signer)
    return doc[key]


def _verify(doc: dict[str, object], key: str, signer: ClusterKey) -> None:
    signature, key_id = doc.get(MAC), doc.get("key_id")
    if not isinstance(signature, str) or not isinstance(key_id, str):
        raise Unauthenticated("not signed with a cluster key")
    if key_id != signer.id:
        shown = key_id if len(key_id) == 16 and key_id.isalnum() and key_id.isascii() else "?"
        raise Unauthenticated(f"signed with cluster key {shown}, not with this host's key {signer.id}")
    if not signer.verifies(_signed(key, doc[key]), signature):
        raise Unauthenticated("its signature does not match its content (forged or altered)")
