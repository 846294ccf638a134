"""A host's fence device: ``[fencing] host<N>`` (shared, no secrets) plus ``<secrets_dir>/host<N>`` (local, 0600).

The device line names a fence agent (``fence_ipmilan``: one of the agents
hectl supports, ``hectl.fencing.families``, listed in this host's ``[fencing]
agents``, run from ``[fencing] agents_dir``) or a method a plugin registers,
then its parameters: for an agent, only those its family takes. Secrets and
key files (``password=``, ``identity_file=``...) come only from the host's
secrets file: ``key=value`` lines, owned by root, readable by root alone. They
reach the method on stdin, never argv, and every message the method prints is
scrubbed of them before anyone sees it.
"""

from __future__ import annotations

import os
import shlex

from hectl import parse, privatefile
from hectl.errors import ConfigError
from hectl.frozen import Frozen
from hectl.text import escape

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from hectl.config import FencingConfig

ACTIONS = ("off", "on", "status", "monitor", "metadata", "validate-all")
POWER_ON, POWER_OFF = 0, 2  # what 'status' exits with (fence-agents' convention)
SECRETS_MAX = 16384


class Answer(Frozen):
    """What one action of a fence method said: its exit code (None: timed out or killed) and its last words.

    ``interrupted``: the signal that came while the action ran (0: none). The action was then
    waited for, so that what it did is known, unless a second signal (or its time running out)
    killed it: then ``code`` is None and nobody knows whether it acted.
    """

    code: int | None
    message: str
    elapsed: float
    interrupted: int = 0


class FenceMethod:
    """What every fence method offers: ``run(action, timeout)`` answering like a fence agent.

    ``off``/``on``/``monitor``/``validate-all`` exit 0 on success; ``status`` exits
    0 when the host is on and 2 when it is off; anything else is a failure.
    """

    name = ""
    on_wait: Callable[[str], None] = staticmethod(lambda _message: None)  # told when an interrupted action is awaited

    def run(self, action: str, timeout: float) -> Answer:  # pragma: no cover - interface
        raise NotImplementedError


class FenceDevice(Frozen):
    host_id: int
    method: str
    params: tuple[tuple[str, str], ...]
    secrets: tuple[str, ...] = ()  # the names of the secrets file's keys (never their values)

    def describe(self) -> str:
        """The device for people: its method, every parameter and every secret's name with ``***`` for its value."""
        words = [f"{k}={shlex.quote(v)}" for k, v in self.params] + [f"{k}=***" for k in self.secrets]
        return escape(" ".join([self.method, *words]))


def configured(cfg: FencingConfig, host_id: int) -> FenceDevice:
    """Host ``host_id``'s device from the configuration; ``ConfigError`` when it has none or this host may not run it."""
    text = cfg.device(host_id)
    if not text:
        known = ", ".join(str(h) for h, _ in cfg.devices) or "none"
        raise ConfigError(
            f"host {host_id} has no fence device (hosts with one: {known})",
            hint=f"hectl cluster-config set fencing.host{host_id}='fence_ipmilan ip=... username=... lanplus=1'",
        )
    try:
        method, params = parse.fence_device(text)  # checked when the configuration was read, and again now
    except ValueError as exc:
        raise ConfigError(f"[fencing] host{host_id}: {exc}") from None
    if method.startswith("fence_") and method not in cfg.agents:
        raise ConfigError(
            f"[fencing] host{host_id}: fence agent {method} is not in this host's [fencing] agents "
            f"({', '.join(cfg.agents) or 'none'})",
            hint=f"add {method} to [fencing] agents in this host's configuration file if this host may run it",
        )
    return FenceDevice(host_id, method, params)


def read_secrets(cfg: FencingConfig, host_id: int) -> dict[str, str]:
    """The secrets file of host ``host_id``'s device (``{}`` when there is none); ``ConfigError`` when unsafe or bad."""
    path = os.path.join(cfg.secrets_dir, f"host{host_id}")
    data = privatefile.read(path, "fence secrets", limit=SECRETS_MAX)
    if data is None:
        return {}
    secrets: dict[str, str] = {}
    for number, line in enumerate(data.decode("utf-8", "replace").splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        try:
            if not sep:
                raise ValueError("not key=value")
            key = parse.fence_key(key.strip())
            if key in ("action", "option"):
                raise ValueError("hectl sets the action")
            secrets[key] = parse.fence_value(key, value.strip())
        except ValueError as exc:
            raise ConfigError(f"fence secrets {path} line {number}: {exc}") from None  # the value is never shown
    return secrets


def scrub(text: str, secrets: Mapping[str, str]) -> str:
    """``text`` with every secret value replaced by ``***``."""
    for value in secrets.values():
        if len(value) >= 3:
            text = text.replace(value, "***")
    return text


def build(
    cfg: FencingConfig, host_id: int, methods: Mapping[str, Callable[..., object]] | None = None
) -> tuple[FenceDevice, FenceMethod]:
    """Host ``host_id``'s device (with its secrets' names) and its runnable method: a fence agent or a plugin's."""
    from hectl.fencing.agent import FenceAgent

    dev = configured(cfg, host_id)
    secrets = read_secrets(cfg, host_id)
    dev = dev._replace(secrets=tuple(secrets))
    if dev.method.startswith("fence_"):
        return dev, FenceAgent(dev, secrets, cfg.agents_dir)
    factory = (methods or {}).get(dev.method)
    if factory is None:
        known = ", ".join(sorted(methods or {})) or "none"
        raise ConfigError(
            f"host {host_id}: unknown fence method '{dev.method}' (fence agents are named fence_*; plugin methods: {known})"
        )
    method = factory(dev, secrets, cfg)
    if not callable(getattr(method, "run", None)):
        raise ConfigError(f"host {host_id}: fence method '{dev.method}' gave no run(action, timeout)")
    return dev, method  # type: ignore[return-value]
