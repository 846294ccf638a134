"""Plugin registration of the ``ctdb`` backend (kept apart so that the backend class imports without pluggy)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from hectl.backends.ctdb.backend import CTDBBackend
from hectl.hookspecs import hookimpl

if TYPE_CHECKING:
    from collections.abc import Callable


@hookimpl
def hectl_register_backends(register: Callable[..., None]) -> None:
    register(CTDBBackend.name, CTDBBackend)
