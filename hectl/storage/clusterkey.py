"""The cluster key: a secret every host keeps locally, which authenticates what hosts act on from the domain.

Anyone who can write the storage export can write ``config/cluster.json``; only a
holder of the cluster key can sign it. The key is 32 random bytes kept as 64 hex
digits in a private file (``[paths] cluster_key``, default ``cluster.key`` beside
the configuration file: ``/etc/hectl/cluster.key``), made by the first
``hectl deploy`` and given to the other hosts by the admin (``deploy --join
--cluster-key-file``, ``hectl cluster-config install-key``). Documents carry the
key's id (a hash of the key, which reveals nothing of it) and an HMAC-SHA256.
"""

from __future__ import annotations

import hashlib
import hmac
import os

from hectl import privatefile
from hectl.errors import ConfigError
from hectl.frozen import Frozen

KEY_BYTES = 32
HEX = frozenset("0123456789abcdef")
WHAT = "cluster key"


class ClusterKey(Frozen):
    secret: bytes

    @property
    def id(self) -> str:
        """16 hex digits naming the key (safe to show and to store on the domain)."""
        return hashlib.sha256(b"hectl cluster key id\0" + self.secret).hexdigest()[:16]

    def sign(self, data: bytes) -> str:
        return hmac.new(self.secret, data, hashlib.sha256).hexdigest()

    def verifies(self, data: bytes, signature: str) -> bool:
        return hmac.compare_digest(self.sign(data), signature)

    def text(self) -> bytes:
        """The key as its file holds it."""
        return self.secret.hex().encode() + b"\n"


def generate() -> ClusterKey:
    return ClusterKey(os.urandom(KEY_BYTES))


def parse(data: bytes, where: str) -> ClusterKey:
    """A key from its text (64 hex digits, surrounding white space ignored); ``ConfigError`` otherwise."""
    text = data.decode("ascii", "replace").strip().lower()
    if len(text) != 2 * KEY_BYTES or not set(text) <= HEX:
        raise ConfigError(f"{where}: not a cluster key (64 hexadecimal digits)")  # the text is never shown
    return ClusterKey(bytes.fromhex(text))


def load(path: str) -> ClusterKey | None:
    """This host's key (``None`` when it has none); ``ConfigError`` when the file is unsafe or not a key."""
    data = privatefile.read(path, WHAT, limit=4096)
    return None if data is None else parse(data, f"{WHAT} {path}")


def save(path: str, key: ClusterKey) -> None:
    privatefile.write(path, key.text(), WHAT)
