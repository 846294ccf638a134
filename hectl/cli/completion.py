"""Shell completion: dynamic value providers (fast, local, never raising).

The values come only from fast local state (the completion cache in the state
directory, built-in backend names); never from storage, libvirt or sanlock.
The same providers serve click's in-process completion (``shell_complete=``)
and the generated shell scripts (``hectl.cli.scripts``), which call
``hectl __complete KIND`` (the click-free fast path). Keep this module light.
"""

from __future__ import annotations

import os

from hectl.text import escape

TYPE_CHECKING = False  # typing.TYPE_CHECKING would import typing (see hectl.frozen)
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

DEFAULT_STATE_DIR = "/var/lib/hectl"


def _state_dir(environ: Mapping[str, str]) -> str:
    try:
        from hectl import config

        return config.load(None, environ).paths.state_dir
    except Exception:
        return environ.get("HECTL_STATE_DIR") or DEFAULT_STATE_DIR


def host_ids(environ: Mapping[str, str]) -> list[tuple[str, str]]:
    """(value, description) pairs of host ids last seen on storage."""
    from hectl import localstate, parse

    try:
        cache = localstate.read_completion_cache(_state_dir(environ))
        hosts = cache.get("hosts", [])
        return [(str(parse.host_id(str(h[0]))), str(h[1])) for h in hosts]  # type: ignore[attr-defined]
    except Exception:
        return []


def backends(environ: Mapping[str, str]) -> list[tuple[str, str]]:
    """(value, description) pairs of storage backend names: built-ins plus those last seen from plugins."""
    from hectl import localstate
    from hectl.backends import BUILTIN_BACKENDS

    names = dict.fromkeys(BUILTIN_BACKENDS, "built-in")
    try:
        cached = localstate.read_completion_cache(_state_dir(environ)).get("backends", [])
        for name in cached:  # type: ignore[attr-defined]
            names.setdefault(str(name), "plugin")
    except Exception:
        pass
    return sorted(names.items())


PROVIDERS: dict[str, Callable[[Mapping[str, str]], list[tuple[str, str]]]] = {
    "host-ids": host_ids,
    "backends": backends,
}


def values(kind: str, incomplete: str = "", environ: Mapping[str, str] | None = None) -> list[tuple[str, str]]:
    environ = os.environ if environ is None else environ
    provider = PROVIDERS.get(kind)
    if provider is None:
        return []
    # Escaped: the cache holds names read from storage, and a tab or newline would forge completion lines.
    return [(escape(v), escape(d)) for v, d in provider(environ) if v.startswith(incomplete)]


def _click_callback(kind: str) -> Callable[..., list[object]]:
    def complete(ctx: object, param: object, incomplete: str) -> list[object]:
        from click.shell_completion import CompletionItem

        return [CompletionItem(v, help=d or None) for v, d in values(kind, incomplete)]

    complete.completion_kind = kind  # type: ignore[attr-defined]
    return complete


complete_host_ids = _click_callback("host-ids")
complete_backends = _click_callback("backends")
