"""The cluster configuration: the keys every host must agree on, kept once on the domain.

``config/cluster.json`` is a sealed 16 KiB document (``hectl.storage.sealed``):
section -> key -> text, plus a version that grows by one on every change.
Every host merges it over its local file (``hectl.config.load(shared=...)``),
so ``[score]``, the ``[ha]`` timers, ``[timeouts]``, ``[notify]`` and ``[engine]``
cannot differ between hosts. Values are checked when set and again when read:
the domain is untrusted, and a forged value is refused, never used.
"""

from __future__ import annotations

import os

from hectl import config as config_mod
from hectl.errors import ConfigError, Interrupted, StorageError
from hectl.frozen import Frozen
from hectl.storage import sealed
from hectl.storage.directio import WriteUncertain

TYPE_CHECKING = False  # typing.TYPE_CHECKING would import typing (see hectl.frozen)
if TYPE_CHECKING:
    from collections.abc import Mapping

    from hectl.storage.backend import StorageBackend

CLUSTER_FILE = "cluster.json"  # in the domain's config/ directory
CLUSTER_SIZE = 16384


class ClusterConfig(Frozen):
    version: int
    sections: dict[str, dict[str, str]]

    def to_dict(self) -> dict[str, object]:
        return {"version": self.version, "sections": self.sections}


def path(backend: StorageBackend) -> str:
    return os.path.join(backend.paths().config_dir, CLUSTER_FILE)


def check(sections: Mapping[str, Mapping[str, object]]) -> dict[str, dict[str, str]]:
    """Shared keys with valid values as plain text; ``ConfigError`` names the first one that is not."""
    out: dict[str, dict[str, str]] = {}
    for section, keys in sections.items():
        if not isinstance(keys, dict):
            raise ConfigError(f"cluster configuration: [{section}] is not a table of keys")
        for key, value in keys.items():
            if not config_mod.is_shared(section, key):
                raise ConfigError(
                    f"cluster configuration: {section}.{key} is not a shared key",
                    hint=f"shared keys: {config_mod.shared_keys_text()}",
                )
            text = str(value).strip()
            try:
                config_mod.parse_value(section, key, text)
            except ValueError as exc:
                raise ConfigError(f"cluster configuration: {section}.{key} = {text!r}: {exc}") from None
            out.setdefault(section, {})[key] = text
    return out


def decode(data: bytes, where: str) -> ClusterConfig | None:
    try:
        body = sealed.unseal("cluster", data)
        if body is None:
            return None
        version = body.get("version")
        if not isinstance(version, int) or isinstance(version, bool) or version < 1:
            raise sealed.Corrupt("no version")
        return ClusterConfig(version=version, sections=check(body.get("sections") or {}))  # type: ignore[arg-type]
    except (sealed.Corrupt, ConfigError) as exc:
        detail = exc.message if isinstance(exc, ConfigError) else str(exc)
        raise StorageError(
            f"{where}: the cluster configuration is unusable ({detail})",
            hint="rewrite it with 'hectl cluster-config set --replace ...' (global maintenance)",
        ) from None


def read(backend: StorageBackend, timeout: float) -> ClusterConfig | None:
    """The domain's cluster configuration; ``None`` when the domain has none (made before deploy wrote one)."""
    where = path(backend)
    try:
        data = backend.read(where, 0, CLUSTER_SIZE, timeout).data
    except StorageError as exc:
        if exc.errno == 2:  # ENOENT
            return None
        raise
    return decode(data, where)


def update(
    backend: StorageBackend, changes: Mapping[str, Mapping[str, str]], timeout: float, *, replace: bool = False
) -> ClusterConfig:
    """Merge ``changes`` (or, with ``replace``, put them in place of everything) under the domain's update lock.

    An empty value removes a key (its default applies again). Concurrent
    updates queue; readers see the old document or the new, never a mix.
    """
    wanted = {s: {k: v for k, v in keys.items() if str(v).strip()} for s, keys in changes.items()}
    check(wanted)
    where = path(backend)

    def change(old: bytes) -> bytes:
        current = decode(old, where)
        merged: dict[str, dict[str, str]] = (
            {} if replace or current is None else {s: dict(k) for s, k in current.sections.items()}
        )
        for section, keys in changes.items():
            for key, value in keys.items():
                if str(value).strip():
                    merged.setdefault(section, {})[key] = str(value).strip()
                else:
                    merged.get(section, {}).pop(key, None)
        merged = {s: dict(sorted(k.items())) for s, k in sorted(merged.items()) if k}
        body = {"version": (current.version if current else 0) + 1, "sections": merged}
        try:
            return sealed.seal("cluster", body, CLUSTER_SIZE)
        except sealed.Corrupt as exc:
            raise ConfigError(f"cluster configuration is {exc}") from None

    try:
        result = backend.update(where, 0, CLUSTER_SIZE, change, timeout, replace=True)
    except Interrupted as exc:
        exc.message = "the cluster configuration " + (
            "may or may not have been changed (outcome unknown)" if exc.write_started else "is unchanged"
        )
        raise
    except WriteUncertain as exc:
        exc.message = f"the cluster configuration may or may not have been changed (outcome unknown): {exc.message}"
        exc.hint = "check with 'hectl cluster-config show', and repeat the command if needed"
        raise
    new = decode(change(result.data), where)
    if new is None or not result.written:
        raise StorageError(f"{where}: the cluster configuration was not written")
    return new


def save_copy(cache: str, shared: ClusterConfig | None) -> None:
    """Keep this host's copy of the last cluster configuration it read (used while the domain is unreachable)."""
    import contextlib

    from hectl.localstate import write_json

    if shared is None:
        with contextlib.suppress(OSError):
            os.unlink(cache)
        return
    if load_copy(cache) != shared:
        with contextlib.suppress(OSError):  # a read-only state directory costs only the fallback
            write_json(cache, shared.to_dict())


def load_copy(cache: str) -> ClusterConfig | None:
    from hectl.localstate import read_json

    doc = read_json(cache)
    if not doc:
        return None
    try:
        return ClusterConfig(version=int(doc["version"]), sections=check(doc["sections"]))  # type: ignore[arg-type,call-overload]
    except (KeyError, TypeError, ValueError, ConfigError):
        return None
