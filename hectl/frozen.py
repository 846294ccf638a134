"""``Frozen``: typed, immutable records without importing ``typing`` at run time.

Type checkers see ``typing.NamedTuple``. At run time the same class statement
builds a ``collections.namedtuple`` (fields from the annotations, defaults from
the assignments, methods kept), which is what ``typing.NamedTuple`` does too,
minus the 3-5 ms that importing ``typing`` and its class machinery cost every
short-lived command (cron checks, TAB completion) before it does any work.
"""

from __future__ import annotations

import collections

TYPE_CHECKING = False  # typing.TYPE_CHECKING would import typing
if TYPE_CHECKING:
    from typing import NamedTuple as Frozen
else:

    class _FrozenMeta(type):
        def __new__(mcls, name, bases, namespace):
            if not bases:  # Frozen itself
                return super().__new__(mcls, name, bases, namespace)
            fields = list(namespace.get("__annotations__", {}))
            defaults = [namespace[f] for f in fields if f in namespace]
            base = collections.namedtuple(name, fields, defaults=defaults, module=namespace.get("__module__"))
            body = {k: v for k, v in namespace.items() if k not in fields and k != "__annotations__"}
            body["__slots__"] = ()
            return type(name, (base,), body)

    class Frozen(metaclass=_FrozenMeta):
        """Base of a frozen record: ``class Point(Frozen): x: int; y: int = 0``."""
