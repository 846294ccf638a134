"""Deploy's inputs: every answer, where it may come from, how it is checked, and what it becomes.

An answer is ``[section] key``. The sections of hectl's configuration file
(``hectl.config``) keep their meaning: host-local keys go to this host's
file, shared keys to the domain's cluster configuration. Three sections
are deploy's own: ``[engine_vm]`` (the engine VM's specification),
``[appliance]`` (the image the engine disk is made from) and ``[cloud_init]``
(the NoCloud seed). Sources, later winning: defaults, the answers file
(``--answers``), one flag per key (``--SECTION-KEY``), a prompt on a terminal
for what is still missing. Secrets are read only from a root-only file or a
hidden prompt: never from a flag (argv is world-readable) or the environment.
"""

from __future__ import annotations

import configparser
import os
import re

from hectl import config as config_mod
from hectl.errors import ConfigError, UsageError
from hectl.frozen import Frozen
from hectl.vm import spec as vmspec

TYPE_CHECKING = False  # typing.TYPE_CHECKING would import typing (see hectl.frozen)
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping


class Key(Frozen):
    section: str
    name: str
    help: str
    default: str = ""
    required: bool = False  # the first host cannot be deployed without it
    secret: bool = False  # never on argv, never in --answers-out, prompted hidden
    join: bool = False  # a joining host needs it too (the rest comes from the domain)

    @property
    def flag(self) -> str:
        return f"--{self.section}-{self.name}".replace("_", "-")

    @property
    def dest(self) -> str:
        return f"{self.section}__{self.name}"


def _unicast_mac(text: str) -> str:
    text = text.strip().lower()
    if not re.fullmatch(r"[0-9a-f]{2}(:[0-9a-f]{2}){5}", text):
        raise ValueError("must be a MAC address such as 52:54:00:12:34:56")
    if int(text[:2], 16) & 1:
        raise ValueError("is a multicast address: the engine needs a unicast MAC")
    return vmspec.FIELDS["mac"](text)  # type: ignore[operator]


def _image_file(text: str) -> str:
    if not os.path.isabs(text) or "\0" in text:
        raise ValueError("must be an absolute path")
    if not os.path.isfile(text):
        raise ValueError("is not a regular file")
    return os.path.normpath(text)


def _ssh_key(text: str) -> str:
    text = text.strip()
    if not re.fullmatch(r"(ssh|ecdsa|sk)-[A-Za-z0-9@.-]+ [A-Za-z0-9+/=]+( [^\x00-\x1f\x7f]{0,200})?", text):
        raise ValueError("must be one OpenSSH public key line (type, base64 key, optional comment)")
    return text


def _yes_no(text: str) -> str:
    return "yes" if config_mod.parse_value("notify", "starttls", text) else "no"


def _hostname(text: str) -> str:
    return str(config_mod.parse_value("engine", "fqdn", text))


# Deploy's own keys: (section, name) -> (parser, help, default, required, secret)
_DEPLOY_KEYS: tuple[tuple[Key, Callable[[str], object]], ...] = (
    (
        Key(section="appliance", name="image", help="engine disk image to import (raw or qcow2; a backing file is refused)",
            required=True),
        _image_file,
    ),
    (Key(section="appliance", name="kernel", help="kernel for direct boot of the engine (with initrd; optional)"), _image_file),
    (Key(section="appliance", name="initrd", help="initrd for direct boot (with kernel)"), _image_file),
    (
        Key(section="cloud_init", name="enabled", help="build a NoCloud seed (hostname, root password, ssh key) for the engine",
            default="no"),
        _yes_no,
    ),
    (
        Key(section="cloud_init", name="hostname", help="the engine's hostname in the seed [default: engine.fqdn]"),
        _hostname,
    ),
    (Key(section="cloud_init", name="ssh_key", help="an OpenSSH public key for the engine's root"), _ssh_key),
    (
        Key(section="cloud_init", name="root_password", secret=True,
            help="the engine's root password (from --cloud-init-root-password-file or a hidden prompt only)"),
        lambda text: text,
    ),
)  # fmt: skip
_DEPLOY_PARSERS = {(k.section, k.name): parse for k, parse in _DEPLOY_KEYS}
_SPEC_DEFAULTS = {"name": "HostedEngine", "memory_mib": "4096", "vcpus": "2", "network": "bridge", "graphics": "vnc"}
_SPEC_HELP = {
    "name": "the engine VM's libvirt name",
    "memory_mib": "the engine VM's memory (checked against this host's)",
    "vcpus": "the engine VM's vCPUs (checked against this host's)",
    "cmdline": "kernel command line for direct boot",
    "network": "user (NAT with a port forward, one host) | bridge | none",
    "bridge": "host bridge of the engine's NIC (network = bridge)",
    "mac": "the engine's MAC: unicast; default: locally administered 52:54:00:xx:xx:xx from the VM's uuid",
    "host_port": "network = user: 127.0.0.1:host_port reaches guest_port",
    "guest_port": "network = user: the guest port forwarded",
    "graphics": "vnc | spice | none",
    "graphics_listen": "address the console listens on",
}
_SPEC_KEYS = tuple(_SPEC_HELP)


def _config_keys() -> list[Key]:
    keys = []
    for section, names in config_mod.schema().items():
        for name in names:
            default = config_mod.default_text(section, name)
            shared = " (shared: kept on the domain)" if config_mod.is_shared(section, name) else ""
            keys.append(
                Key(
                    section=section,
                    name=name,
                    help=f"[{section}] {name} of the configuration{shared}; docs/configuration.md",
                    default=default,
                    required=(section, name) in (("host", "id"), ("engine", "fqdn")),
                    join=not config_mod.is_shared(section, name),  # a joining host reads the shared ones from the domain
                )
            )
    return keys


KEYS: tuple[Key, ...] = (
    *_config_keys(),
    *(Key(section="engine_vm", name=k, help=_SPEC_HELP[k], default=_SPEC_DEFAULTS.get(k, "")) for k in _SPEC_KEYS),
    *(key for key, _ in _DEPLOY_KEYS),
)
BY_NAME = {(k.section, k.name): k for k in KEYS}


def parse(section: str, name: str, text: str) -> object:
    """One answer, checked; ``ValueError`` says what is wrong with it."""
    if section == "engine_vm":
        if name == "mac":
            return _unicast_mac(text)
        return vmspec.parse_value(name, text)
    if (section, name) in _DEPLOY_PARSERS:
        return _DEPLOY_PARSERS[section, name](text)
    return config_mod.parse_value(section, name, text)


class Answers(Frozen):
    """The effective answers: ``values[(section, key)]`` is the text of every key given or defaulted."""

    values: dict[tuple[str, str], str]
    sources: dict[tuple[str, str], str]  # where each came from: default | file | flag | prompt
    storage: dict[str, str]  # the backend's own [storage] options (validated by the backend)

    def get(self, section: str, name: str) -> str:
        return self.values.get((section, name), "")

    def section(self, section: str) -> dict[str, str]:
        return {n: v for (s, n), v in self.values.items() if s == section and v != ""}


def read_file(path: str) -> tuple[dict[tuple[str, str], str], dict[str, str]]:
    """The answers in an INI file, and its backend options; ``ConfigError`` names the file and key."""
    parser = configparser.ConfigParser(interpolation=None, default_section="\0none", inline_comment_prefixes=("#", ";"))
    try:
        with open(path, encoding="utf-8") as f:
            parser.read_file(f)
    except OSError as exc:
        raise ConfigError(f"cannot read answers file {path}: {exc.strerror or exc}") from None
    except (UnicodeDecodeError, configparser.Error) as exc:
        raise ConfigError(f"{path}: not a valid INI file: {' '.join(str(exc).split())}") from None
    values: dict[tuple[str, str], str] = {}
    storage: dict[str, str] = {}
    for section in parser.sections():
        for name, value in parser.items(section):
            key = BY_NAME.get((section, name))
            if key is None and section == "storage":
                storage[name] = value
                continue
            if key is None:
                raise ConfigError(f"{path}: unknown answer [{section}] {name} (see 'hectl deploy --help' and docs/deploy.md)")
            if key.secret:
                raise ConfigError(
                    f"{path}: [{section}] {name} is a secret and is never read from an answers file",
                    hint=f"give it in a file readable by root only: {key.flag}-file FILE, or at the prompt",
                )
            values[section, name] = value
    return values, storage


def read_secret_file(path: str, what: str) -> str:
    """The first line of a root-only file (mode 0600 or stricter)."""
    try:
        checked = config_mod.parse_value("notify", "password_file", path)
        with open(str(checked), encoding="utf-8") as f:
            return f.readline().rstrip("\n")
    except ValueError as exc:
        raise ConfigError(f"{what} file {path}: {exc}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{what} file {path}: cannot read it ({exc})") from None


def collect(
    file_values: Mapping[tuple[str, str], str],
    flag_values: Mapping[tuple[str, str], str],
    storage_options: Mapping[str, str],
    *,
    join: bool = False,
    prompt: Callable[[Key], str] | None = None,
) -> Answers:
    """Merge defaults, file and flags, prompt (``prompt``: a terminal) for what is required and missing, check all.

    Without a terminal a missing answer is a ``UsageError`` (exit 2); a bad value is a
    ``ConfigError`` (exit 3) naming the key and where it came from.
    """
    values: dict[tuple[str, str], str] = {}
    sources: dict[tuple[str, str], str] = {}
    for key in KEYS:
        if join and not key.join:
            given = flag_values.get((key.section, key.name)) or file_values.get((key.section, key.name))
            if given:
                raise UsageError(
                    f"[{key.section}] {key.name} ({key.flag}) is not given to a joining host: it comes from the domain"
                )
            continue
        k = (key.section, key.name)
        for source, table in (("flag", flag_values), ("file", file_values)):
            if table.get(k, "") != "":
                values[k], sources[k] = table[k].strip() if not key.secret else table[k], source
                break
        else:
            values[k], sources[k] = key.default, "default"
    missing = [k for k in KEYS if (k.required or (k.secret and _wants_secret(values, k))) and not values.get((k.section, k.name))]
    missing = [k for k in missing if not (join and not k.join)]
    for key in missing:
        if key.secret and prompt is None:
            continue  # optional secret: without a terminal there is simply none
        if prompt is None:
            raise UsageError(
                f"deploy needs [{key.section}] {key.name}: {key.help}",
                hint=f"give {key.flag} VALUE or put it in the answers file (--answers FILE)",
            )
        values[key.section, key.name], sources[key.section, key.name] = prompt(key), "prompt"
    for (section, name), text in values.items():
        if text == "":
            continue
        try:
            parse(section, name, text)
        except ValueError as exc:
            shown = "(hidden)" if BY_NAME[section, name].secret else repr(text)
            where = {"flag": BY_NAME[section, name].flag, "file": "the answers file"}.get(
                sources[section, name], sources[section, name]
            )
            raise ConfigError(f"[{section}] {name} = {shown} (from {where}): {exc}") from None
    if not join:
        if bool(values.get(("appliance", "kernel"))) != bool(values.get(("appliance", "initrd"))):
            raise ConfigError("[appliance] kernel and initrd go together (set both or neither)")
        if values.get(("engine_vm", "network")) == "bridge" and not values.get(("engine_vm", "bridge")):
            raise ConfigError("[engine_vm] network = bridge needs [engine_vm] bridge (the host bridge of the engine's NIC)")
        if values.get(("engine_vm", "network")) == "user" and not values.get(("engine_vm", "host_port")):
            raise ConfigError("[engine_vm] network = user needs [engine_vm] host_port")
    return Answers(values=values, sources=sources, storage=dict(storage_options))


def _wants_secret(values: Mapping[tuple[str, str], str], key: Key) -> bool:
    return key.section == "cloud_init" and values.get(("cloud_init", "enabled")) == "yes"


def render(answers: Answers) -> str:
    """The effective answers as an answers file, secrets left out (``--answers-out``)."""
    lines = ["# hectl deploy answers (secrets are never written here)"]
    sections: dict[str, list[str]] = {}
    for (section, name), text in answers.values.items():
        if BY_NAME[section, name].secret or text == "":
            continue
        sections.setdefault(section, []).append(f"{name} = {text}")
    for name, text in sorted(answers.storage.items()):
        sections.setdefault("storage", []).append(f"{name} = {text}")
    for section, entries in sections.items():
        lines += ["", f"[{section}]", *entries]
    return "\n".join(lines) + "\n"
