"""Hook specifications: the contract between hectl and its plugins.

Plugins implement hooks with ``@hookimpl`` (``from hectl.hookspecs import hookimpl``)
and are found through the ``hectl`` entry-point group. Hooks are called with
keyword arguments; an implementation may accept fewer arguments than the spec,
so specs can grow without breaking plugins. Every spec below states who calls
it, when, what it returns and what happens when it raises.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    from collections.abc import Callable

PROJECT = "hectl"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


# --- Registration: called once per plugin manager, by hectl.plugins -------------------------


@hookspec
def hectl_register_backends(register: Callable[..., None]) -> None:
    """Register storage backends.

    Call ``register(name, factory)`` once per backend. ``name`` is what users
    write as ``[storage] type``; ``factory(options, clock)`` returns a
    ``hectl.storage.backend.StorageBackend``, validating ``options`` (the ``[storage]``
    keys) and raising ``hectl.errors.ConfigError`` naming a bad key.

    Called by: ``hectl.plugins.Plugins.backends`` when a backend is looked up.
    Returns: ignored. A name registered twice is a ``PluginError`` naming both
    plugins; an exception raised here disables only this plugin's backends.
    """


@hookspec
def hectl_register_monitors(register: Callable[..., None]) -> None:
    """Register host-health monitors for the HA agent.

    Call ``register(name, factory)``; ``factory(config, clock)`` (the whole ``Config``)
    returns a monitor whose ``sample()`` gives one ``Reading`` per agent cycle. The
    ``engine`` monitor is sampled only while the engine VM runs here.

    Called by: the HA agent (``hectl ha run``) at start-up and on reload.
    Returns: ignored. Exceptions disable this plugin's monitors and are logged.
    """


@hookspec
def hectl_register_fence_methods(register: Callable[..., None]) -> None:
    """Register fence methods: ways to power a host off that are not programs of the fence-agents family.

    Call ``register(name, factory)``; ``name`` is what ``[fencing] host<N>`` starts with
    (never ``fence_*``: those are fence agents). ``factory(device, secrets, fencing)``
    gets the ``FenceDevice`` (method and parameters), the host's secrets (a dict) and
    the ``[fencing]`` configuration, and returns a ``hectl.fencing.device.FenceMethod``:
    ``run(action, timeout)`` answers ``Answer(code, message, elapsed)`` like a fence
    agent (``status``: 0 on, 2 off; other actions: 0 success; ``code=None``: timed out).
    The message must not contain a secret.

    Called by: ``hectl fence`` and the HA agent, when a host's device is used.
    Returns: ignored. A name registered twice is a ``PluginError``; an exception here
    disables only this plugin's methods (logged).
    """


# --- Runtime notifications: called from the HA loop and commands; must be fast ---------------


@hookspec
def hectl_on_state_transition(host_id: int, old_state: str, new_state: str, reason: str) -> None:
    """The HA agent of ``host_id`` moved from ``old_state`` to ``new_state`` because of ``reason``.

    Called by: the HA agent, once per transition, after the new state is published.
    Returns: ignored. Exceptions are logged and swallowed: a notifier never stops the loop.
    """


@hookspec
def hectl_on_maintenance_change(
    scope: str, host_id: int | None, old_mode: str, new_mode: str, reason: str, set_by: str, expires_at: float | None
) -> None:
    """Maintenance changed: ``scope`` is ``"global"`` or ``"local"`` (then ``host_id`` says which host).

    ``old_mode``/``new_mode`` are ``"global"``, ``"local"`` or ``"none"``;
    ``expires_at`` is a wall-clock time or ``None``.

    Called by: ``hectl set-maintenance`` after the change is stored.
    Returns: ignored. Exceptions are logged and swallowed.
    """
