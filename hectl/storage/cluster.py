"""The cluster configuration: the keys every host must agree on, kept once on the domain.

``config/cluster.json`` is a sealed 16 KiB document (``hectl.storage.sealed``)
signed with the cluster key (``hectl.storage.clusterkey``): section -> key ->
text, plus a version that grows by one on every change. Every host merges it
over its local file (``hectl.config.load(shared=...)``), so ``[score]``, the
``[ha]`` timers, ``[timeouts]``, ``[notify]``, ``[engine]`` and ``[fencing]``
cannot differ between hosts. The domain is untrusted: a document this host's
key did not sign, an older version than this host already used, a bad value
or keys that conflict are refused, never used (``hectl.context`` then uses the
last good copy this host kept). Values and their combination are checked before
anything is written.
"""

from __future__ import annotations

import os

from hectl import config as config_mod
from hectl.errors import ConfigError, Interrupted, StorageError, UsageError
from hectl.frozen import Frozen
from hectl.storage import sealed
from hectl.storage.directio import WriteUncertain

TYPE_CHECKING = False  # typing.TYPE_CHECKING would import typing (see hectl.frozen)
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from hectl.storage.backend import StorageBackend
    from hectl.storage.clusterkey import ClusterKey

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


class Unauthenticated(StorageError):
    """The domain's document was not signed with this host's cluster key (forged, or another key): never used."""


class NoKey(ConfigError):
    """This host has no cluster key, so it can use no cluster configuration from the domain."""

    def __init__(self, key_path: str) -> None:
        super().__init__(
            f"this host has no cluster key ({key_path}): it cannot tell the domain's cluster configuration from a forgery",
            hint="install the cluster's key: 'hectl cluster-config install-key --key-file FILE' (docs/configuration.md)",
        )


def decode(data: bytes, where: str, key: ClusterKey | None, key_path: str = "") -> ClusterConfig | None:
    """The document in ``data``, authenticated with ``key``; ``StorageError`` (``Unauthenticated``) when unusable."""
    if key is None and sealed.written(data):
        raise NoKey(key_path)
    try:
        body = sealed.unseal("cluster", data, key)
        if body is None:
            return None
        version = body.get("version")
        if not isinstance(version, int) or isinstance(version, bool) or version < 1:
            raise sealed.Corrupt("no version")
        return ClusterConfig(version=version, sections=check(body.get("sections") or {}))  # type: ignore[arg-type]
    except sealed.Unauthenticated as exc:
        raise Unauthenticated(
            f"{where}: the cluster configuration is refused: {exc}",
            hint="if this host's key is out of date, install the current one: 'hectl cluster-config install-key'",
        ) from None
    except (sealed.Corrupt, ConfigError) as exc:
        detail = exc.message if isinstance(exc, ConfigError) else str(exc)
        raise StorageError(
            f"{where}: the cluster configuration is unusable ({detail})",
            hint="rewrite it with 'hectl cluster-config set --replace ...' (global maintenance)",
        ) from None


def read_bytes(backend: StorageBackend, timeout: float) -> tuple[str, bytes]:
    """The document's path and bytes (``b""`` when the domain has none)."""
    where = path(backend)
    try:
        return where, backend.read(where, 0, CLUSTER_SIZE, timeout).data
    except StorageError as exc:
        if exc.errno == 2:  # ENOENT
            return where, b""
        raise


def read(backend: StorageBackend, timeout: float, key: ClusterKey | None, key_path: str = "") -> ClusterConfig | None:
    """The domain's cluster configuration; ``None`` when the domain has none (made before deploy wrote one)."""
    where, data = read_bytes(backend, timeout)
    return decode(data, where, key, key_path)


def update(
    backend: StorageBackend,
    changes: Mapping[str, Mapping[str, str]],
    timeout: float,
    key: ClusterKey,
    *,
    replace: bool = False,
    validate: Callable[[dict[str, dict[str, str]]], object] = lambda _sections: None,
    floor: int = 0,
    old_key: ClusterKey | None = None,
) -> ClusterConfig:
    """Merge ``changes`` (or, with ``replace``, put them in place of everything) under the domain's update lock.

    An empty value removes a key (its default applies again). ``validate`` checks the
    whole result before anything is written (``SharedConfigError``: keys that conflict,
    exit 2). The new version is above both the current one and ``floor`` (the version
    this host used last). With ``replace`` a torn, forged or foreign document is
    overwritten; otherwise it must verify with ``old_key`` (default ``key``; the key
    rotation signs with a new one). Concurrent updates queue; readers see the old
    document or the new, never a mix.
    """
    from hectl.errors import SharedConfigError

    wanted = {s: {k: v for k, v in keys.items() if str(v).strip()} for s, keys in changes.items()}
    check(wanted)
    where = path(backend)

    def change(old: bytes) -> bytes:
        try:
            current = decode(old, where, old_key or key)
        except (StorageError, ConfigError):
            if not replace:
                raise
            current = None
        merged: dict[str, dict[str, str]] = (
            {} if replace or current is None else {s: dict(k) for s, k in current.sections.items()}
        )
        for section, keys in changes.items():
            for name, value in keys.items():
                if str(value).strip():
                    merged.setdefault(section, {})[name] = str(value).strip()
                else:
                    merged.get(section, {}).pop(name, None)
        merged = {s: dict(sorted(k.items())) for s, k in sorted(merged.items()) if k}
        try:
            validate(merged)
        except SharedConfigError as exc:
            raise UsageError(f"refused, nothing written: {exc.message}", hint=exc.hint) from None
        body = {"version": max(current.version if current else 0, floor) + 1, "sections": merged}
        try:
            return sealed.seal("cluster", body, CLUSTER_SIZE, key)
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
    new = decode(change(result.data), where, key)
    if new is None or not result.written:
        raise StorageError(f"{where}: the cluster configuration was not written")
    return new


def save_copy(cache: str, shared: ClusterConfig | None) -> None:
    """Keep this host's copy of the last cluster configuration it used (when the domain's is unreachable or refused)."""
    import contextlib

    from hectl.localstate import write_json

    if shared is not None and load_copy(cache) != shared:
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


def rotate_key(backend: StorageBackend, timeout: float, key_path: str, cache: str) -> tuple[ClusterConfig, ClusterKey]:
    """Sign the domain's document (verified with this host's key) with a new key, and keep that key here.

    The new key is saved beside the old one (``<key>.new``) before the document is
    written and put in place after it, so no moment leaves a document that no
    file on this host can verify.
    """
    from hectl.storage import clusterkey

    old = clusterkey.load(key_path)
    if old is None:
        raise NoKey(key_path)
    new = clusterkey.generate()
    clusterkey.save(key_path + ".new", new)
    kept = load_copy(cache)
    try:
        shared = update(backend, {}, timeout, new, old_key=old, floor=kept.version if kept else 0)
    except (WriteUncertain, Interrupted) as exc:
        if isinstance(exc, WriteUncertain) or exc.write_started:
            exc.message += f" (the new key is kept in {key_path}.new: if 'cluster-config show' refuses, use it)"
        raise
    except Exception:
        os.unlink(key_path + ".new")  # nothing was written: the old key stays in force
        raise
    try:
        os.replace(key_path + ".new", key_path)
    except OSError as exc:
        raise ConfigError(
            f"the cluster configuration is signed with the new key, kept in {key_path}.new, but it could not be "
            f"put in place of {key_path}: {exc.strerror}",
            hint=f"mv {key_path}.new {key_path}",
        ) from None
    save_copy(cache, shared)
    return shared, new


def install_key(
    backend: StorageBackend, timeout: float, key: ClusterKey, key_path: str, cache: str, *, force: bool = False
) -> ClusterConfig | None:
    """Make ``key`` this host's cluster key once it verifies the domain's document (``force``: even when not)."""
    from hectl.storage import clusterkey

    try:
        shared = read(backend, timeout, key, key_path)
    except Unauthenticated as exc:
        if not force:
            raise ConfigError(
                f"this key ({key.id}) is not the one the domain's cluster configuration is signed with: {exc.message}",
                hint="take the key from a host that reads the configuration ('hectl cluster-config show' there), or --force",
            ) from None
        shared = None
    clusterkey.save(key_path, key)
    if shared is not None:
        save_copy(cache, shared)
    return shared
