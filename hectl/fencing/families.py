"""The fence agents hectl runs and what a device line may say to each: an allowlist, per agent family.

A device line comes from the cluster configuration on the shared storage domain,
which any host (or anyone who can write the domain) can change: it is untrusted.
So it may only say *where* the device is, *who* logs in (a name, never a secret)
and *how* to talk to it. Every parameter that names a program, a file, a log, a
script, a command, sudo, ssh options or debug output is refused, as is every
parameter not listed here and every agent not listed here. Secrets and key files
(``password``, ``hexadecimal_kg``, ``community``, ``snmp_priv_passwd``,
``identity_file``) come only from the host's secrets file, which is local.

Values are checked too: fence-agents splits ipmitool, ssh and snmp command lines
on spaces and passes ``ip``/``username`` unquoted (``ssh -oProxyCommand=...``),
so every value is a plain address, number, name or one of the agent's choices.
The table is from Debian's fence-agents 4.12 metadata (``fence_X -o metadata``);
tests/test_fence_unit.py checks it against the installed agents. No imports: the
configuration (a fast path) checks device lines with it.
"""

from __future__ import annotations

# Value kinds: how each allowed parameter's value must look.
ADDRESS, INTEGER, NUMBER, BOOLEAN, NAME, URI = "address", "integer", "number", "boolean", "name", "uri"
BOOLEANS = ("0", "1", "on", "off", "yes", "no", "true", "false")

KINDS: dict[str, str | tuple[str, ...]] = {
    "ip": ADDRESS,
    "ipaddr": ADDRESS,
    "ipport": INTEGER,
    "username": NAME,
    "login": NAME,
    "plug": NAME,
    "port": NAME,
    "delay": NUMBER,
    "login_timeout": NUMBER,
    "power_timeout": NUMBER,
    "power_wait": NUMBER,
    "shell_timeout": NUMBER,
    "stonith_status_sleep": NUMBER,
    "retry_on": INTEGER,
    "lanplus": BOOLEAN,
    "cipher": INTEGER,
    "privlvl": ("callback", "user", "operator", "administrator"),
    "auth": ("md5", "password", "none"),
    "method": ("onoff", "cycle"),
    "target": NAME,
    "ipmitool_timeout": NUMBER,
    "ssl": BOOLEAN,
    "ssl_secure": BOOLEAN,
    "ssl_insecure": BOOLEAN,
    "redfish_uri": URI,
    "systems_uri": URI,
    "notls": BOOLEAN,
    "ribcl_version": NUMBER,
    "ssh": BOOLEAN,
    "secure": BOOLEAN,
    "inet4_only": BOOLEAN,
    "inet6_only": BOOLEAN,
    "drac_version": ("DRAC CMC", "DRAC MC", "DRAC 5"),
    "switch": INTEGER,
    "snmp_version": ("1", "2c", "3"),
    "snmp_auth_prot": ("MD5", "SHA"),
    "snmp_priv_prot": ("DES", "AES"),
    "snmp_sec_level": ("noAuthNoPriv", "authNoPriv", "authPriv"),
    "missing_as_off": BOOLEAN,
}

# Every family: the device's address (ip, its old name ipaddr, ipport), the login *name* (username, its old
# name login; the password is a secret) and the timings every agent takes (delay, *_timeout, power_wait,
# stonith_status_sleep, retry_on). Not allowed anywhere: verbose/debug/debug_file/quiet (logs), *_path
# (programs), *_script (programs), use_sudo/sudo_path, ssh_options, identity_file (a local file: secrets file),
# plug_separator/separator/port_as_ip/disable_timeout/command_prompt (not needed; a prompt is a regex).
_BASE = (
    *("ip", "ipaddr", "ipport", "username", "login"),
    *("delay", "login_timeout", "power_timeout", "power_wait", "shell_timeout", "stonith_status_sleep", "retry_on"),
)
_SSH = ("ssh", "secure", "inet4_only", "inet6_only")  # ssh instead of telnet (secure: its old name), address family
_PLUG = ("plug", "port")  # the outlet, blade or VM to power off (port: plug's old name)

FAMILIES: dict[str, frozenset[str]] = {
    # IPMI over LAN (fence_ipmilan and its aliases): lanplus (IPMI 2.0), cipher (-C), privlvl (-L), auth (-A),
    # method (onoff or cycle), target (-t: bridge to a blade's BMC), ipmitool_timeout (-N). hexadecimal_kg is a
    # secret; ipmitool_path, sudo_path and use_sudo choose programs.
    "IPMI": frozenset((*_BASE, "lanplus", "cipher", "privlvl", "auth", "method", "target", "ipmitool_timeout")),
    # Redfish over HTTPS: ssl/ssl_secure (verify the certificate against the system's CAs), ssl_insecure,
    # redfish_uri and systems_uri (which system). No CA file in its metadata; gnutlscli_path is a program.
    "Redfish": frozenset((*_BASE, "ssl", "ssl_secure", "ssl_insecure", "redfish_uri", "systems_uri")),
    # iLO and iLO2 over RIBCL/TLS: ssl, ssl_secure, ssl_insecure, notls (SSL 3.0 for old firmware), ribcl_version.
    # gnutlscli_path is a program.
    "iLO": frozenset((*_BASE, "ssl", "ssl_secure", "ssl_insecure", "notls", "ribcl_version")),
    # iLO3-5 over SSH or telnet: the _SSH options and method (onoff or cycle); ssh_path, telnet_path, ssh_options
    # and identity_file (secrets file) are refused.
    "iLO SSH": frozenset((*_BASE, *_SSH, "method")),
    # DRAC 5 / CMC over SSH or telnet: the _SSH options, plug (the blade on a CMC) and drac_version.
    "iDRAC SSH": frozenset((*_BASE, *_SSH, *_PLUG, "drac_version")),
    # APC switched PDUs over SSH or telnet: the _SSH options, plug (outlet) and switch (the PDU in a chain).
    "APC": frozenset((*_BASE, *_SSH, *_PLUG, "switch")),
    # Switched PDUs over SNMP: plug (outlet), snmp_version and, for SNMPv3, snmp_auth_prot, snmp_priv_prot and
    # snmp_sec_level (username is the SNMPv3 user). community and snmp_priv_passwd are secrets; snmp*_path and
    # snmp_priv_passwd_script are programs.
    "PDU SNMP": frozenset((*_BASE, *_PLUG, "snmp_version", "snmp_auth_prot", "snmp_priv_prot", "snmp_sec_level")),
    # libvirt guests through virsh on their hypervisor over SSH: the _SSH options, plug (the domain) and
    # missing_as_off. use_sudo, sudo_path and ssh_path are refused.
    "virt": frozenset((*_BASE, *_SSH, *_PLUG, "missing_as_off")),
}

AGENTS: dict[str, str] = {
    "fence_ipmilan": "IPMI",
    "fence_ipmilanplus": "IPMI",
    "fence_idrac": "IPMI",
    "fence_imm": "IPMI",
    "fence_ilo3": "IPMI",
    "fence_ilo4": "IPMI",
    "fence_ilo5": "IPMI",
    "fence_redfish": "Redfish",
    "fence_ilo": "iLO",
    "fence_ilo2": "iLO",
    "fence_ilo_ssh": "iLO SSH",
    "fence_ilo3_ssh": "iLO SSH",
    "fence_ilo4_ssh": "iLO SSH",
    "fence_ilo5_ssh": "iLO SSH",
    "fence_drac5": "iDRAC SSH",
    "fence_apc": "APC",
    "fence_apc_snmp": "PDU SNMP",
    "fence_eaton_snmp": "PDU SNMP",
    "fence_ifmib": "PDU SNMP",
    "fence_tripplite_snmp": "PDU SNMP",
    "fence_virsh": "virt",
}
SUPPORTED = tuple(AGENTS)  # the default of [fencing] agents

_ALNUM = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
_CHARS = {ADDRESS: _ALNUM | set(".:-_%"), NAME: _ALNUM | set("._-@:+,"), URI: _ALNUM | set("/._-~%:+,=@")}


def agent(name: str) -> str:
    """``name`` if it is a fence agent hectl runs; ``ValueError`` naming the supported ones otherwise."""
    if name not in AGENTS:
        raise ValueError(f"{name[:64]} is not a fence agent hectl runs (supported: {', '.join(SUPPORTED)})")
    return name


def check(method: str, params: tuple[tuple[str, str], ...]) -> None:
    """``ValueError`` unless agent ``method`` is supported and takes every one of ``params`` as given."""
    family = AGENTS[agent(method)]
    allowed = FAMILIES[family]
    for key, value in params:
        if key not in allowed:
            raise ValueError(
                f"{method} ({family}) does not take {key} from the device line; it takes {', '.join(sorted(allowed))} "
                "(secrets and key files go in the host's secrets file; docs/fencing.md)"
            )
        want = _wanted(KINDS[key], value)
        if want:
            raise ValueError(f"{method} ({family}): {key} must be {want}, not {value[:64]!r}")


def _wanted(kind: str | tuple[str, ...], value: str) -> str:
    """What ``value`` should be, when it is not a value of ``kind`` ('' when it is)."""
    if isinstance(kind, tuple):
        ok, want = value in kind, "one of " + ", ".join(kind)
    elif kind == BOOLEAN:
        ok, want = value.lower() in BOOLEANS, "1 or 0"
    elif kind in (INTEGER, NUMBER):
        digits = value.replace(".", "", 1) if kind == NUMBER else value
        ok, want = 0 < len(value) <= 10 and digits.isdigit() and digits.isascii(), "an integer" if kind == INTEGER else "a number"
    else:
        start = "/" if kind == URI else _ALNUM
        ok = 0 < len(value) <= 255 and value[0] in start and set(value) <= _CHARS[kind]
        want = {ADDRESS: "a hostname or IP address", NAME: "a name of letters, digits and ._-@:+,"}.get(kind, "a URI path")
    return "" if ok else want
