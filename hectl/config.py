"""Configuration: defaults < INI file < HECTL_* environment, merged once into frozen records.

The records are typed ``NamedTuple``s rather than frozen dataclasses: same
immutability and typing, a third of the start-up cost (``dataclasses`` imports
``inspect``), which the fast paths (cron checks, TAB completion) cannot afford.

Command-line flags that override configuration are applied by the CLI on top,
with ``._replace``. Nothing else reads the file or the environment.
"""

from __future__ import annotations

import configparser
import os
import stat

from hectl import parse
from hectl.errors import ConfigError, SharedConfigError
from hectl.fencing import families
from hectl.frozen import Frozen

TYPE_CHECKING = False  # typing.TYPE_CHECKING would import typing (see hectl.frozen)
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

DEFAULT_PATH = "/etc/hectl/hectl.conf"
MAX_HOST_ID = parse.MAX_HOST_ID
MAX_SCORE = 100_000  # [score] base and each penalty (oVirt's base is 3400)


class HostConfig(Frozen):
    id: int
    hostname: str


class StorageConfig(Frozen):
    type: str = "localfs"
    timeout: float = 5.0
    options: tuple[tuple[str, str], ...] = ()  # backend-specific keys of [storage], validated by the backend

    def option_map(self) -> dict[str, str]:
        return dict(self.options)


class PathsConfig(Frozen):
    state_dir: str = "/var/lib/hectl"
    audit_log: str = ""  # default: <state_dir>/audit.log
    cluster_key: str = ""  # default: cluster.key beside the configuration file (hectl.storage.clusterkey)


class TimeoutsConfig(Frozen):
    liveness_window: float = 30.0
    agent_silent_after: float = 30.0


class ScoreConfig(Frozen):
    base: int = 3400
    network_penalty: int = 1600
    config_penalty: int = 1000
    bridge_penalty: int = 600
    memory_penalty: int = 400
    cpu_penalty: int = 1000
    cpu_min: float = 0.4
    cpu_max: float = 0.9
    retry_penalty: int = 50


class HAConfig(Frozen):
    """The HA agent's timers (seconds) and sanlock settings; ``[ha]``."""

    loop: float = 10.0
    history: float = 30.0  # observe this long before ever starting the engine
    starting: float = 300.0  # EngineStarting -> EngineStop when not healthy by then
    bad_health: float = 300.0  # EngineUpBadHealth -> EngineStop
    stop: float = 120.0  # EngineStop -> EngineForceStop
    maybe_away: float = 40.0  # EngineMaybeAway -> EngineUnexpectedlyDown
    retry_window: float = 600.0  # engine failures older than this are forgotten
    yield_margin: float = 800.0  # EngineUp yields to a live host scoring at least this much more
    io_timeout: float = 10.0  # sanlock io_timeout of the lockspace (written at initialisation)
    engine_mem_mib: float = 4096.0  # memory the engine VM needs (free-memory penalty)
    metrics_port: int = 0  # > 0: serve OpenMetrics on 127.0.0.1:<port>/metrics


class MonitorsConfig(Frozen):
    """``[monitors]``: what the host monitors measure."""

    network_test: str = "none"  # ping | dns | tcp | none
    gateway: str = ""  # probed by ping and tcp
    tcp_port: int = 22
    dns_name: str = "localhost"  # resolved by the dns test
    probes: int = 5
    probe_timeout: float = 2.0
    bridge: str = ""  # the management bridge (none: not monitored)
    cpu_window: float = 900.0  # the CPU load is averaged over this many seconds


class NotifyConfig(Frozen):
    """``[notify]``: e-mail on state transitions and maintenance changes (off while smtp_server is empty)."""

    smtp_server: str = ""
    smtp_port: int = 25
    timeout: float = 10.0
    source: str = "root@localhost"
    destinations: tuple[str, ...] = ("root@localhost",)
    # a regular expression searched in "OldState-NewState" and in "maintenance-<scope>-<mode>"
    events: str = "maintenance|EngineStart|EngineUp|EngineDown|EngineStop|Unexpectedly"
    starttls: bool = False  # upgrade the connection with STARTTLS (the server's certificate is verified)
    implicit_tls: bool = False  # TLS from the first byte (SMTPS, usually port 465) instead of STARTTLS
    smtp_ca: str = ""  # CA bundle for the server's certificate (default: the system's)
    username: str = ""  # log in (needs TLS) with this name and the password in password_file
    password_file: str = ""  # first line is the password; mode 0600 or stricter, owned by root or this user


class VMConfig(Frozen):
    """``[vm]``: how this host runs the engine VM (libvirt)."""

    uri: str = "qemu:///system"  # libvirt connection URI
    accelerator: str = "auto"  # auto | kvm | tcg
    console_log: str = ""  # the serial console's log (default: <state_dir>/engine-console.log)
    start_timeout: float = 120.0  # vm-start and the agent give up a start after this (lease wait included)
    migration_transport: str = "tls"  # tls (qemu+tls:// and an encrypted migration stream) | tcp (unencrypted)
    migration_pki_dir: str = ""  # cacert.pem, clientcert.pem, clientkey.pem for qemu+tls (default: libvirt's)
    migration_timeout: float = 120.0  # a live migration not finished by then is aborted (the engine stays)
    migration_bandwidth: int = 0  # MiB/s for the migration stream (0: no limit)


class EngineConfig(Frozen):
    """``[engine]``: the engine's address and its health page."""

    fqdn: str = ""
    health_url: str = ""  # default: http://<fqdn>/ovirt-engine/services/health
    health_ca: str = ""  # CA bundle for an https health URL (default: the system's)
    health_timeout: float = 5.0

    def url(self) -> str:
        if self.health_url:
            return self.health_url
        return f"http://{self.fqdn}/ovirt-engine/services/health" if self.fqdn else ""


class FencingConfig(Frozen):
    """``[fencing]``: power a dead engine host off through its fence device, then take over before sanlock's wait."""

    enabled: bool = False  # the agent's fast path (hectl fence works without it)
    dead_after: float = 15.0  # a host whose record and sanlock renewals stopped this long is judged dead
    timeout: float = 30.0  # one fence action (off, status, monitor)
    secrets_dir: str = "/etc/hectl/fencing"  # host-local: <secrets_dir>/host<N> holds host N's device secrets
    agents_dir: str = "/usr/sbin"  # host-local: fence agents are run from here only
    agents: tuple[str, ...] = families.SUPPORTED  # host-local: the fence agents this host runs
    devices: tuple[tuple[int, str], ...] = ()  # (host id, device) from the host<N> keys

    def device(self, host_id: int) -> str:
        """Host ``host_id``'s fence device ('' when it has none)."""
        return dict(self.devices).get(host_id, "")


class Config(Frozen):
    source: str
    host: HostConfig
    storage: StorageConfig
    paths: PathsConfig
    timeouts: TimeoutsConfig
    score: ScoreConfig
    ha: HAConfig = HAConfig()
    monitors: MonitorsConfig = MonitorsConfig()
    notify: NotifyConfig = NotifyConfig()
    vm: VMConfig = VMConfig()
    engine: EngineConfig = EngineConfig()
    fencing: FencingConfig = FencingConfig()
    plugin_sections: tuple[tuple[str, tuple[tuple[str, str], ...]], ...] = ()

    @property
    def audit_log(self) -> str:
        return self.paths.audit_log or os.path.join(self.paths.state_dir, "audit.log")

    @property
    def cluster_key(self) -> str:
        return self.paths.cluster_key or os.path.join(os.path.dirname(os.path.abspath(self.source)), "cluster.key")

    @property
    def console_log(self) -> str:
        return self.vm.console_log or os.path.join(self.paths.state_dir, "engine-console.log")


# Environment overrides: variable -> (section, key). Documented in docs/configuration.md.
ENV_OVERRIDES: dict[str, tuple[str, str]] = {
    "HECTL_HOST_ID": ("host", "id"),
    "HECTL_HOSTNAME": ("host", "hostname"),
    "HECTL_STORAGE_TYPE": ("storage", "type"),
    "HECTL_STORAGE_PATH": ("storage", "path"),
    "HECTL_STORAGE_TIMEOUT": ("storage", "timeout"),
    "HECTL_STATE_DIR": ("paths", "state_dir"),
    "HECTL_LIBVIRT_URI": ("vm", "uri"),
}


class _Range:
    """A numeric key's parser: a plain decimal (``whole``: an integer) from ``low`` to ``high``."""

    def __init__(self, low: float, high: float, whole: bool = False) -> None:
        self.low, self.high, self.whole = low, high, whole

    def __call__(self, text: str) -> float:
        return parse.integer(text, int(self.low), int(self.high)) if self.whole else parse.number(text, self.low, self.high)


def _number(low: float, high: float) -> _Range:
    return _Range(low, high)


def _integer(low: int, high: int) -> _Range:
    return _Range(low, high, whole=True)


def numeric_ranges() -> dict[str, tuple[float, float, bool]]:
    """``[section] key`` -> (low, high, integer) of every numeric key (documented in docs/configuration.md)."""
    return {
        f"[{section}] {key}": (convert.low, convert.high, convert.whole)
        for section, keys in _SCHEMA.items()
        for key, convert in keys.items()
        if isinstance(convert, _Range)
    }


def _hostname(text: str) -> str:
    text = text.strip()
    if not text or len(text.encode()) > 253 or any(c.isspace() or ord(c) < 32 for c in text):
        raise ValueError("must be a hostname of 1..253 bytes without spaces")
    return text


def _regex(text: str) -> str:
    import re

    try:
        re.compile(text)
    except re.error as exc:
        raise ValueError(f"not a regular expression: {exc}") from None
    return text


def _mail(text: str) -> str:
    text = text.strip()
    if "@" not in text or any(c.isspace() or c in ",<>" for c in text):
        raise ValueError("must be an e-mail address")
    return text


def _mails(text: str) -> tuple[str, ...]:
    return tuple(_mail(part) for part in text.split(",") if part.strip())


def _one_of(*choices: str) -> Callable[[str], str]:
    """A key's parser that takes exactly one of ``choices``."""

    def check(text: str) -> str:
        if text not in choices:
            raise ValueError(f"must be one of {', '.join(choices)}")
        return text

    return check


def _address(text: str) -> str:
    text = text.strip()
    if text.startswith("-") or not all(c.isalnum() or c in ".:-_[]" for c in text):
        raise ValueError("must be a hostname or an IP address")
    return text


def _abs_path(text: str) -> str:
    if not os.path.isabs(text) or "\0" in text:
        raise ValueError("must be an absolute path")
    return os.path.normpath(text)


def _username(text: str) -> str:
    text = text.strip()
    if not text or any(c.isspace() or ord(c) < 32 for c in text):
        raise ValueError("must be a name without spaces")
    return text


def _yes_no(text: str) -> bool:
    value = text.strip().lower()
    if value not in ("yes", "no", "true", "false", "on", "off", "1", "0"):
        raise ValueError("must be yes or no")
    return value in ("yes", "true", "on", "1")


def _secret_file(text: str) -> str:
    """A file holding a secret: only its owner (root or this user) may read it."""
    path = _abs_path(text.strip())
    try:
        st = os.stat(path)
    except OSError as exc:
        raise ValueError(f"cannot use it: {exc.strerror}") from None
    if not stat.S_ISREG(st.st_mode):
        raise ValueError("must be a regular file")
    if st.st_uid not in (0, os.geteuid()):
        raise ValueError(f"must be owned by root or by this user (uid {os.geteuid()}), not uid {st.st_uid}")
    if st.st_mode & 0o077:
        raise ValueError(f"is mode {stat.S_IMODE(st.st_mode):04o}: others may read it (chmod 600)")
    return path


def _libvirt_uri(text: str) -> str:
    text = text.strip()
    scheme, sep, _rest = text.partition("://")
    if not sep or not scheme or any(c.isspace() or ord(c) < 32 for c in text):
        raise ValueError("must be a libvirt URI such as qemu:///system")
    return text


def _http_url(text: str) -> str:
    text = text.strip()
    scheme, sep, rest = text.partition("://")
    if scheme not in ("http", "https") or not sep or not rest or any(c.isspace() or ord(c) < 32 for c in text):
        raise ValueError("must be an http:// or https:// URL")
    return text


def _fqdn(text: str) -> str:
    text = text.strip().lower()
    if not text or len(text) > 253 or not all(c.isalnum() or c in ".-" for c in text) or text.startswith(("-", ".")):
        raise ValueError("must be a fully qualified domain name or an IP address")
    return text


def _fence_agents(text: str) -> tuple[str, ...]:
    """Comma-separated fence agents, each one hectl supports (hectl.fencing.families)."""
    names = dict.fromkeys(part.strip() for part in text.split(",") if part.strip())
    return tuple(families.agent(name) for name in names)


def _identifier(text: str) -> str:
    text = text.strip()
    if not text or not all(c.isalnum() or c in "-_." for c in text):
        raise ValueError("must be a name of letters, digits, '-', '_' or '.'")
    return text


HOUR, DAY = 3600, 86400
_SECONDS = _number(0.1, DAY)  # a timer of the agent
_TIMEOUT = _number(0.1, HOUR)  # a timeout of one operation (the --timeout options' range)
_PORT = _integer(1, 65535)
_POINTS = _integer(0, MAX_SCORE)
_FRACTION = _number(0, 1)

# Known keys per section and how each is parsed; numbers only in sane ranges (docs/configuration.md).
_SCHEMA: dict[str, dict[str, Callable[[str], object]]] = {
    "host": {"id": parse.host_id, "hostname": _hostname},
    "storage": {"type": _identifier, "timeout": _TIMEOUT},
    "paths": {"state_dir": _abs_path, "audit_log": _abs_path, "cluster_key": _abs_path},
    "timeouts": {"liveness_window": _number(1, DAY), "agent_silent_after": _number(1, DAY)},
    "ha": {
        "loop": _number(0.1, HOUR),
        "history": _SECONDS,
        "starting": _SECONDS,
        "bad_health": _SECONDS,
        "stop": _SECONDS,
        "maybe_away": _SECONDS,
        "retry_window": _SECONDS,
        "yield_margin": _number(0, MAX_SCORE),
        "io_timeout": _number(1, 300),
        "engine_mem_mib": _number(1, 4 * 1024 * 1024),
        "metrics_port": _integer(0, 65535),  # 0: off
    },
    "monitors": {
        "network_test": _one_of("ping", "dns", "tcp", "none"),
        "gateway": _address,
        "tcp_port": _PORT,
        "dns_name": _address,
        "probes": _integer(1, 100),
        "probe_timeout": _number(0.1, 60),
        "bridge": _identifier,
        "cpu_window": _number(1, DAY),
    },
    "notify": {
        "smtp_server": _address,
        "smtp_port": _PORT,
        "timeout": _TIMEOUT,
        "source": _mail,
        "destinations": _mails,
        "events": _regex,
        "starttls": _yes_no,
        "implicit_tls": _yes_no,
        "smtp_ca": _abs_path,
        "username": _username,
        "password_file": _secret_file,
    },
    "vm": {
        "uri": _libvirt_uri,
        "accelerator": _one_of("auto", "kvm", "tcg"),
        "console_log": _abs_path,
        "start_timeout": _number(1, HOUR),
        "migration_transport": _one_of("tls", "tcp"),
        "migration_pki_dir": _abs_path,
        "migration_timeout": _number(5, HOUR),
        "migration_bandwidth": _integer(0, 100000),
    },
    "fencing": {
        "enabled": _yes_no,
        "dead_after": _number(1, HOUR),
        "timeout": _number(1, HOUR),
        "secrets_dir": _abs_path,
        "agents_dir": _abs_path,
        "agents": _fence_agents,
    },
    "engine": {"fqdn": _fqdn, "health_url": _http_url, "health_ca": _abs_path, "health_timeout": _TIMEOUT},
    "score": {
        "base": _POINTS,
        "network_penalty": _POINTS,
        "config_penalty": _POINTS,
        "bridge_penalty": _POINTS,
        "memory_penalty": _POINTS,
        "cpu_penalty": _POINTS,
        "cpu_min": _FRACTION,
        "cpu_max": _FRACTION,
        "retry_penalty": _POINTS,
    },
}
_OPEN_SECTIONS = ("storage",)  # may hold keys for the backend
FENCE_DEVICE_KEY = "host<N>"  # [fencing] host1, host2...: each host's fence device (shared)


def _device_host(section: str, key: str) -> int:
    """The host id of a ``[fencing] host<N>`` key (0 when ``key`` is not one; ``host01`` is not: one key per host)."""
    if section != "fencing" or not key.startswith("host"):
        return 0
    try:
        host_id = parse.host_id(key[4:])
    except ValueError:
        return 0
    return host_id if key == f"host{host_id}" else 0


def _fence_device(text: str) -> str:
    parse.fence_device(text)
    return text.strip()


# Keys every host must agree on: once a domain carries a cluster configuration (``hectl deploy``,
# ``hectl cluster-config set``) they come from there, and a local file that sets one is refused.
# Paths to local files (secrets, CA bundles) and the metrics port stay host-local.
_HOST_LOCAL = {("ha", "metrics_port"), ("notify", "password_file"), ("notify", "smtp_ca"), ("engine", "health_ca")}
_HOST_LOCAL |= {("fencing", "secrets_dir"), ("fencing", "agents_dir"), ("fencing", "agents")}
SHARED_SECTIONS = ("score", "ha", "timeouts", "notify", "engine", "fencing")


def is_shared(section: str, key: str) -> bool:
    """Whether ``[section] key`` belongs to the cluster configuration on the domain."""
    if _device_host(section, key):
        return True
    return section in SHARED_SECTIONS and key in _SCHEMA[section] and (section, key) not in _HOST_LOCAL


def shared_keys() -> list[str]:
    """Every shared key as ``section.key`` (for completion and docs), besides ``fencing.host<N>`` (host N's device)."""
    return [f"{s}.{k}" for s in SHARED_SECTIONS for k in _SCHEMA[s] if is_shared(s, k)]


def shared_keys_text() -> str:
    """The shared keys for a message."""
    return ", ".join([*shared_keys(), f"fencing.{FENCE_DEVICE_KEY}"])


def schema() -> dict[str, tuple[str, ...]]:
    """Every section and its keys."""
    return {section: tuple(keys) for section, keys in _SCHEMA.items()}


def default_text(section: str, key: str) -> str:
    """A key's default as the text a file would hold ('' when it has none or depends on the host)."""
    records: dict[str, type[Frozen]] = {"storage": StorageConfig, "paths": PathsConfig, "timeouts": TimeoutsConfig}
    records["score"] = ScoreConfig
    records |= {"ha": HAConfig, "monitors": MonitorsConfig, "notify": NotifyConfig, "vm": VMConfig, "engine": EngineConfig}
    records["fencing"] = FencingConfig
    value = records[section]._field_defaults.get(key, "") if section in records else ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, tuple):
        return ",".join(value)
    return f"{value:g}" if isinstance(value, float) else str(value)


def parse_value(section: str, key: str, text: str) -> object:
    """``text`` as the value of ``[section] key``, in its range; ``ValueError`` says why not."""
    if _device_host(section, key):
        return _fence_device(text)
    return _SCHEMA[section].get(key, str)(text)


def disabled_plugins(environ: Mapping[str, str]) -> frozenset[str]:
    """Plugin names blocked by ``HECTL_DISABLE_PLUGINS`` (comma-separated)."""
    return frozenset(n.strip() for n in environ.get("HECTL_DISABLE_PLUGINS", "").split(",") if n.strip())


def config_path(explicit: str | None, environ: Mapping[str, str]) -> str:
    return explicit or environ.get("HECTL_CONFIG") or DEFAULT_PATH


def load(
    path: str | None = None,
    environ: Mapping[str, str] | None = None,
    shared: Mapping[str, Mapping[str, str]] | None = None,
    shared_source: str = "the cluster configuration",
    text: str | None = None,
) -> Config:
    """Read the configuration once; raise ``ConfigError`` naming the file and key on any problem.

    ``shared``: the domain's cluster configuration (section -> key -> text), when it has one: its keys
    win, and the local file must not set any shared key (hosts could disagree again).
    ``text``: the file's content, not read from ``path`` (deploy checks a file before writing it).
    """
    environ = os.environ if environ is None else environ
    path = config_path(path, environ)
    parser = configparser.ConfigParser(interpolation=None, default_section="\0none", inline_comment_prefixes=("#", ";"))
    try:
        if text is not None:
            parser.read_string(text, source=path)
        else:
            with open(path, encoding="utf-8") as f:
                parser.read_file(f)
    except FileNotFoundError:
        raise ConfigError(
            f"configuration file {path} not found",
            hint="hectl is not deployed on this host; pass --config or set HECTL_CONFIG",
        ) from None
    except OSError as exc:
        raise ConfigError(f"cannot read configuration file {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"cannot read configuration file {path}: not UTF-8 text") from None
    except configparser.Error as exc:
        raise ConfigError(f"{path}: not a valid INI file: {_one_line(exc)}") from None

    raw: dict[str, dict[str, tuple[str, str]]] = {}  # section -> key -> (value, the source it came from)
    plugin_sections = []
    for section in parser.sections():
        if section.startswith("plugin:"):
            plugin_sections.append((section[7:], tuple(parser.items(section))))
            continue
        if section not in _SCHEMA:
            raise ConfigError(f"{path}: unknown section [{section}] (known: {', '.join(sorted(_SCHEMA))}, plugin:NAME)")
        for key, value in parser.items(section):
            if key not in _SCHEMA[section] and section not in _OPEN_SECTIONS and not _device_host(section, key):
                known = sorted(_SCHEMA[section]) + ([FENCE_DEVICE_KEY] if section == "fencing" else [])
                raise ConfigError(f"{path}: [{section}] unknown key '{key}' (known: {', '.join(known)})")
            if shared is not None and is_shared(section, key):
                raise ConfigError(
                    f"{path}: [{section}] {key} is shared by every host and kept on the storage domain",
                    hint=f"remove it here; change it with 'hectl cluster-config set {section}.{key}=VALUE'",
                )
            raw.setdefault(section, {})[key] = (value, path)
    for section, keys in (shared or {}).items():
        for key, value in keys.items():
            raw.setdefault(section, {})[key] = (value, shared_source)
    for var, (section, key) in ENV_OVERRIDES.items():
        if var in environ:
            raw.setdefault(section, {})[key] = (environ[var], f"environment {var}")

    def error(sources: list[str], message: str) -> ConfigError:
        """The error for keys from ``sources``: the cluster configuration's fault when it gave one of them."""
        return (SharedConfigError if shared is not None and shared_source in sources else ConfigError)(message)

    def get(section: str, key: str, default: object) -> object:
        if key not in raw.get(section, {}):
            return default
        value, source = raw[section][key]
        try:
            return parse_value(section, key, value)
        except ValueError as exc:
            where = source if source.startswith("environment ") else f"{source}: [{section}] {key}"
            raise error([source], f"{where} = {value!r}: {exc}") from None

    if "id" not in raw.get("host", {}):
        raise ConfigError(f"{path}: [host] id is required (this host's id, 1..{MAX_HOST_ID})")
    host = HostConfig(id=get("host", "id", 0), hostname=get("host", "hostname", os.uname().nodename))  # type: ignore[arg-type]
    storage_raw = raw.get("storage", {})
    storage = StorageConfig(
        type=get("storage", "type", "localfs"),  # type: ignore[arg-type]
        timeout=get("storage", "timeout", 5.0),  # type: ignore[arg-type]
        options=tuple(sorted((k, v) for k, (v, _) in storage_raw.items() if k not in _SCHEMA["storage"])),
    )
    paths = PathsConfig(**{k: get("paths", k, PathsConfig._field_defaults[k]) for k in _SCHEMA["paths"]})  # type: ignore[arg-type]
    timeouts = TimeoutsConfig(**{k: get("timeouts", k, TimeoutsConfig._field_defaults[k]) for k in _SCHEMA["timeouts"]})  # type: ignore[arg-type]
    score = ScoreConfig(**{k: get("score", k, ScoreConfig._field_defaults[k]) for k in _SCHEMA["score"]})  # type: ignore[arg-type]
    ha = HAConfig(**{k: get("ha", k, HAConfig._field_defaults[k]) for k in _SCHEMA["ha"]})  # type: ignore[arg-type]
    mon = MonitorsConfig(**{k: get("monitors", k, MonitorsConfig._field_defaults[k]) for k in _SCHEMA["monitors"]})  # type: ignore[arg-type]
    notify = NotifyConfig(**{k: get("notify", k, NotifyConfig._field_defaults[k]) for k in _SCHEMA["notify"]})  # type: ignore[arg-type]
    vm = VMConfig(**{k: get("vm", k, VMConfig._field_defaults[k]) for k in _SCHEMA["vm"]})  # type: ignore[arg-type]
    engine = EngineConfig(**{k: get("engine", k, EngineConfig._field_defaults[k]) for k in _SCHEMA["engine"]})  # type: ignore[arg-type]
    fence_raw = raw.get("fencing", {})
    devices = tuple(
        sorted((_device_host("fencing", k), str(get("fencing", k, ""))) for k in fence_raw if _device_host("fencing", k))
    )
    fence_keys = {k: get("fencing", k, FencingConfig._field_defaults[k]) for k in _SCHEMA["fencing"]}
    fencing = FencingConfig(**fence_keys, devices=devices)  # type: ignore[arg-type]
    cfg = Config(
        source=path,
        host=host,
        storage=storage,
        paths=paths,
        timeouts=timeouts,
        score=score,
        ha=ha,
        monitors=mon,
        notify=notify,
        vm=vm,
        engine=engine,
        fencing=fencing,
        plugin_sections=tuple(plugin_sections),
    )
    found = conflicts(cfg)
    if found:
        sources = [raw[section][key][1] for c in found for section, key in c.keys if key in raw.get(section, {})]
        where = ", ".join(dict.fromkeys(sources)) or path
        raise error(sources, f"{where}: " + "; ".join(c.text for c in found))
    return cfg


class Conflict(Frozen):
    """Keys whose values are each valid but not together."""

    keys: tuple[tuple[str, str], ...]
    text: str


def conflicts(cfg: Config) -> list[Conflict]:
    """Every combination of keys in ``cfg`` that cannot work (``load`` refuses a configuration with any)."""
    fencing, ha, mon, notify, score = cfg.fencing, cfg.ha, cfg.monitors, cfg.notify, cfg.score
    out = []
    if fencing.enabled and fencing.dead_after <= ha.loop:
        out.append(Conflict(
            (("fencing", "dead_after"), ("ha", "loop"), ("fencing", "enabled")),
            f"[fencing] dead_after ({fencing.dead_after:g} s) must be longer than [ha] loop ({ha.loop:g} s): "
            "a live host's record would look silent between two of its writes",
        ))  # fmt: skip
    if fencing.enabled and not fencing.devices:
        out.append(Conflict(
            (("fencing", "enabled"),), "[fencing] enabled = yes needs a device for at least one host (host<N> = fence_...)"
        ))  # fmt: skip
    if mon.network_test in ("ping", "tcp") and not mon.gateway:
        out.append(Conflict(
            (("monitors", "network_test"),), f"[monitors] gateway is required with network_test = {mon.network_test}"
        ))  # fmt: skip
    if bool(notify.username) != bool(notify.password_file):
        out.append(Conflict(
            (("notify", "username"), ("notify", "password_file")),
            "[notify] username and password_file go together (set both or neither; password_file is set in each "
            "host's own file)",
        ))  # fmt: skip
    if notify.starttls and notify.implicit_tls:
        out.append(Conflict(
            (("notify", "starttls"), ("notify", "implicit_tls")),
            "[notify] starttls and implicit_tls exclude each other (pick the one the server speaks)",
        ))  # fmt: skip
    if notify.username and not (notify.starttls or notify.implicit_tls):
        out.append(Conflict(
            (("notify", "username"), ("notify", "starttls"), ("notify", "implicit_tls")),
            "[notify] username needs starttls = yes or implicit_tls = yes (a password is never sent in clear text)",
        ))  # fmt: skip
    targets: dict[tuple[str, str, str], int] = {}
    for host, text in fencing.devices:
        target = _device_target(text)
        if target is None:
            continue
        if target in targets:
            first, what = targets[target], " ".join(filter(None, target))
            out.append(Conflict(
                (("fencing", f"host{first}"), ("fencing", f"host{host}")),
                f"[fencing] host{first} and host{host} name the same device and outlet ({what}): "
                "one of them would power off the wrong host",
            ))  # fmt: skip
        targets.setdefault(target, host)
    if score.cpu_min > score.cpu_max:
        out.append(Conflict(
            (("score", "cpu_min"), ("score", "cpu_max")),
            f"[score] cpu_min ({score.cpu_min:g}) must not exceed cpu_max ({score.cpu_max:g})",
        ))  # fmt: skip
    return out


def _device_target(text: str) -> tuple[str, str, str] | None:
    """What a device line powers, as fence agents read it: (ip or ipaddr, ipport, plug or port); None without an address."""
    params = dict(parse.fence_device(text)[1])
    address = (params.get("ip") or params.get("ipaddr") or "").lower()
    outlet = params.get("plug") or params.get("port", "")
    if not address:
        return None
    return f"ip={address}", f"ipport={params['ipport']}" if "ipport" in params else "", f"plug={outlet}" if outlet else ""


def _one_line(exc: Exception) -> str:
    return " ".join(str(exc).split())
