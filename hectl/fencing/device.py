"""A host's fence device: ``[fencing] host<N>`` (shared, no secrets) plus ``<secrets_dir>/host<N>`` (local, 0600).

The device line names a fence agent (``fence_ipmilan``: any program of the
fence-agents family in ``[fencing] agents_dir``) or a method a plugin
registers, then its parameters. Secrets (``password=``, ``identity_file=``...)
come only from the host's secrets file: ``key=value`` lines, owned by root,
readable by root alone. They reach the method on stdin, never argv, and every
message the method prints is scrubbed of them before anyone sees it.
"""

from __future__ import annotations

import os
import stat

from hectl import parse
from hectl.errors import ConfigError
from hectl.frozen import Frozen

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from hectl.config import FencingConfig

ACTIONS = ("off", "on", "status", "monitor", "metadata", "validate-all")
POWER_ON, POWER_OFF = 0, 2  # what 'status' exits with (fence-agents' convention)
SECRETS_MAX = 16384


class Answer(Frozen):
    """What one action of a fence method said: its exit code (None: timed out) and its last words."""

    code: int | None
    message: str
    elapsed: float


class FenceMethod:
    """What every fence method offers: ``run(action, timeout)`` answering like a fence agent.

    ``off``/``on``/``monitor``/``validate-all`` exit 0 on success; ``status`` exits
    0 when the host is on and 2 when it is off; anything else is a failure.
    """

    name = ""

    def run(self, action: str, timeout: float) -> Answer:  # pragma: no cover - interface
        raise NotImplementedError


class FenceDevice(Frozen):
    host_id: int
    method: str
    params: tuple[tuple[str, str], ...]

    def describe(self) -> str:
        """The device for people: its method and where it is (never a secret: they are not in ``params``)."""
        where = dict(self.params)
        place = next((f"{k}={where[k]}" for k in ("ip", "ipaddr", "hostname", "plug", "port") if k in where), "")
        return f"{self.method} {place}".strip()


def configured(cfg: FencingConfig, host_id: int) -> FenceDevice:
    """Host ``host_id``'s device from the configuration; ``ConfigError`` when it has none."""
    text = cfg.device(host_id)
    if not text:
        known = ", ".join(str(h) for h, _ in cfg.devices) or "none"
        raise ConfigError(
            f"host {host_id} has no fence device (hosts with one: {known})",
            hint=f"hectl cluster-config set fencing.host{host_id}='fence_ipmilan ip=... username=... lanplus=1'",
        )
    method, params = parse.fence_device(text)  # checked when the configuration was read
    return FenceDevice(host_id, method, params)


def read_secrets(cfg: FencingConfig, host_id: int) -> dict[str, str]:
    """The secrets file of host ``host_id``'s device (``{}`` when there is none); ``ConfigError`` when unsafe or bad."""
    path = os.path.join(cfg.secrets_dir, f"host{host_id}")
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise ConfigError(f"fence secrets {path}: {exc.strerror}") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise ConfigError(f"fence secrets {path}: not a regular file")
        if st.st_uid != 0 and st.st_uid != os.geteuid():
            raise ConfigError(f"fence secrets {path}: owned by uid {st.st_uid}, not root")
        if st.st_mode & 0o077:
            mode = stat.S_IMODE(st.st_mode)
            raise ConfigError(f"fence secrets {path}: mode {mode:04o} lets others read it", hint=f"chmod 600 {path}")
        data = os.read(fd, SECRETS_MAX + 1)
    finally:
        os.close(fd)
    if len(data) > SECRETS_MAX:
        raise ConfigError(f"fence secrets {path}: larger than {SECRETS_MAX} bytes")
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


def build(cfg: FencingConfig, host_id: int, methods: Mapping[str, Callable[..., object]] | None = None) -> FenceMethod:
    """The runnable method for host ``host_id``: a fence agent, or a plugin's method of that name."""
    from hectl.fencing.agent import FenceAgent

    dev = configured(cfg, host_id)
    secrets = read_secrets(cfg, host_id)
    if dev.method.startswith("fence_"):
        return FenceAgent(dev, secrets, cfg.agents_dir)
    factory = (methods or {}).get(dev.method)
    if factory is None:
        known = ", ".join(sorted(methods or {})) or "none"
        raise ConfigError(
            f"host {host_id}: unknown fence method '{dev.method}' (fence agents are named fence_*; plugin methods: {known})"
        )
    method = factory(dev, secrets, cfg)
    if not callable(getattr(method, "run", None)):
        raise ConfigError(f"host {host_id}: fence method '{dev.method}' gave no run(action, timeout)")
    return method  # type: ignore[return-value]
