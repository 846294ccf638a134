"""Fence devices, secrets, the fence-agent runner and the confirmed power-off, with fakes only at the edges
(a throw-away agent script, a scripted method); the real fence_ipmilan runs in tests/test_fencing.py."""

from __future__ import annotations

import json
import shlex
import struct
from pathlib import Path
from types import SimpleNamespace

import pytest

from hectl import config, lease, parse
from hectl.errors import ConfigError, PluginError
from hectl.fencing import device, families, fence, takeover
from hectl.fencing.agent import FenceAgent
from hectl.fencing.device import Answer, FenceDevice, FenceMethod
from hectl.hookspecs import hookimpl
from hectl.plugins import make_plugin_manager
from hectl.storage.backend import DomainPaths


@pytest.mark.parametrize(
    "text",
    [
        "fence_ipmilan ip=192.0.2.11 username=admin lanplus=1 cipher=3",
        "fence_redfish ip=bmc.example systems_uri=/redfish/v1/Systems/1",
        "myplugin zone=eu-1 'label=rack 4'",  # a plugin's method checks its own parameters
    ],
)
def test_device_lines_people_write_are_accepted(text: str) -> None:
    method, params = parse.fence_device(text)
    assert method == text.split()[0] and all("=" not in k for k, _ in params)


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("", "names no fence agent"),
        ("/usr/bin/fence_x ip=1", "not a fence agent or method name"),
        ("../fence_x", "not a fence agent or method name"),
        ("fence_x action=reboot", "may not be set here"),
        ("fence_x option=reboot", "may not be set here"),  # fence-agents 4.12 would run its default: reboot
        ("fence_x password=s3cret", "may not be set here"),
        ("fence_x passwd=s3cret", "may not be set here"),
        ("fence_x ipmitool_path=/tmp/x", "may not be set here"),
        ("fence_x password_script=/tmp/x", "may not be set here"),
        ("fence_x debug_file=/etc/shadow", "may not be set here"),
        ("fence_x use_sudo=1", "may not be set here"),
        ("fence_x ip=1 ip=2", "given twice"),
        ("fence_x IP=1", "not a parameter name"),
        ("fence_x ip", "not key=value"),
        ("fence_x 'ip=a\nb'", "printable"),
        ("fence_x ip='unterminated", "not a fence device"),
        ("fence_x ip=" + "a" * 600, "at most 512"),
        ("fence_x ip=192.0.2.11", "fence_x is not a fence agent hectl runs"),
        ("myplugin password=s3cret", "may not be set here"),  # plugins' methods: no secrets on the domain either
    ],
)
def test_bad_device_lines_are_refused_with_a_reason(text: str, why: str) -> None:
    with pytest.raises(ValueError, match=why):
        parse.fence_device(text)


def base_config(extra: str = "") -> config.Config:
    return config.load(text=f"[host]\nid = 1\n[fencing]\n{extra}", environ={})


def test_fencing_keys_host_devices_and_what_is_shared() -> None:
    cfg = base_config("enabled = yes\ndead_after = 12\nhost3 = fence_ipmilan ip=192.0.2.13\nhost1 = fence_apc ip=a\n")
    assert cfg.fencing.enabled and cfg.fencing.dead_after == 12
    assert cfg.fencing.devices == ((1, "fence_apc ip=a"), (3, "fence_ipmilan ip=192.0.2.13"))
    assert cfg.fencing.device(3) == "fence_ipmilan ip=192.0.2.13" and cfg.fencing.device(2) == ""
    assert config.is_shared("fencing", "host7") and config.is_shared("fencing", "enabled")
    assert not config.is_shared("fencing", "secrets_dir") and not config.is_shared("fencing", "agents_dir")
    assert not config.is_shared("fencing", "agents")
    assert not config.is_shared("fencing", "host0") and not config.is_shared("fencing", "hostx")
    assert "fencing.host<N>" in config.shared_keys_text() and "fencing.enabled" in config.shared_keys()
    with pytest.raises(ConfigError, match="needs a device"):
        base_config("enabled = yes\n")
    with pytest.raises(ConfigError, match=r"unknown key 'host2001'"):
        base_config("host2001 = fence_x\n")
    with pytest.raises(ConfigError, match=r"\[fencing\] host2 = 'fence_x action=off': action may not be set"):
        base_config("host2 = fence_x action=off\n")


def test_a_forged_cluster_configuration_cannot_name_a_program_or_a_secret(tmp_path: Path) -> None:
    from hectl.storage import cluster

    forgeries = ({"host2": "/bin/sh -c id"}, {"host2": "fence_x password_script=/tmp/x"}, {"secrets_dir": "/tmp"})
    forgeries += ({"agents": "fence_ipmilan"}, {"host2": "fence_scsi logfile=/etc/cron.d/x"})
    for forged in forgeries:
        with pytest.raises(ConfigError):
            cluster.check({"fencing": forged})
    assert cluster.check({"fencing": {"host2": " fence_apc ip=a "}}) == {"fencing": {"host2": "fence_apc ip=a"}}


def secrets_dir(tmp_path: Path, text: str, mode: int = 0o600) -> config.FencingConfig:
    d = tmp_path / "secrets"
    d.mkdir(exist_ok=True)
    (d / "host2").write_text(text)
    (d / "host2").chmod(mode)
    return config.FencingConfig(secrets_dir=str(d), devices=((2, "fence_ipmilan ip=192.0.2.12 username=admin"),))


def test_secrets_come_from_a_root_only_file(tmp_path: Path) -> None:
    cfg = secrets_dir(tmp_path, "# BMC\npassword = pa ss=word\n\nhexadecimal_kg=00ff\n")
    assert device.read_secrets(cfg, 2) == {"password": "pa ss=word", "hexadecimal_kg": "00ff"}
    assert device.read_secrets(cfg, 3) == {}  # no file: a device without secrets
    cfg = secrets_dir(tmp_path, "password=x\n", 0o640)
    with pytest.raises(ConfigError, match="mode 0640 lets others read it"):
        device.read_secrets(cfg, 2)
    bad_lines = (
        ("action=hunter2\n", "hectl sets the action"),
        ("hunter2\n", "not key=value"),
        ("PW=hunter2\n", "parameter name"),
    )
    for bad, why in bad_lines:
        cfg = secrets_dir(tmp_path, bad)
        with pytest.raises(ConfigError, match=why) as err:
            device.read_secrets(cfg, 2)
        assert "hunter2" not in err.value.message
    target = tmp_path / "elsewhere"
    target.write_text("password=x\n")
    target.chmod(0o600)
    (tmp_path / "secrets" / "host2").unlink()
    (tmp_path / "secrets" / "host2").symlink_to(target)
    with pytest.raises(ConfigError, match="host2"):
        device.read_secrets(cfg, 2)


FAKE_AGENT = """#!{python}
import json, os, sys, time
data = sys.stdin.read()
params = dict(line.split("=", 1) for line in data.splitlines())
with open({log!r}, "a") as f:
    f.write(json.dumps({{"argv": sys.argv, "env": dict(os.environ), "stdin": data}}) + "\\n")
action = params["action"]
if params.get("plug") == "hang":
    time.sleep(60)
print("connecting with " + params.get("password", "?"))
if action == "status":
    sys.exit(2 if params.get("plug") == "off" else 0)
sys.exit(1 if params.get("plug") == "fail" else 0)
"""


def fake_agent(tmp_path: Path, mode: str, mod: int = 0o755) -> tuple[FenceAgent, Path]:
    """A throw-away fence_apc in its own agents_dir; its plug says how to answer."""
    import sys

    log = tmp_path / "calls.log"
    agents = tmp_path / "agents"
    agents.mkdir(exist_ok=True)
    prog = agents / "fence_apc"
    prog.write_text(FAKE_AGENT.format(python=sys.executable, log=str(log)))
    prog.chmod(mod)
    dev = FenceDevice(2, "fence_apc", (("ip", "192.0.2.12"), ("plug", mode)))
    return FenceAgent(dev, {"password": "s3cr3t-pw"}, str(agents)), log


def test_the_agent_gets_its_parameters_and_secrets_on_stdin_only(tmp_path: Path) -> None:
    agent, log = fake_agent(tmp_path, "off")
    answer = agent.run("status", 10)
    assert answer.code == 2 and answer.message == "connecting with ***"  # scrubbed
    call = json.loads(log.read_text())
    assert call["stdin"].splitlines() == ["action=status", "ip=192.0.2.12", "plug=off", "password=s3cr3t-pw"]
    assert "s3cr3t-pw" not in json.dumps(call["argv"]) + json.dumps(call["env"])
    assert set(call["env"]) <= {"PATH", "LANG", "PYTHONWARNINGS", "LC_CTYPE"}


def test_an_agent_that_hangs_is_killed_at_the_timeout(tmp_path: Path) -> None:
    agent, _ = fake_agent(tmp_path, "hang")
    answer = agent.run("off", 1)
    assert answer.code is None and "did not finish within 1 s" in answer.message and answer.elapsed < 10


def test_only_root_owned_unwritable_agents_in_agents_dir_run(tmp_path: Path) -> None:
    agent, _ = fake_agent(tmp_path, "on", mod=0o775)
    with pytest.raises(ConfigError, match="writable by root alone"):
        agent.run("status", 5)
    missing = FenceAgent(FenceDevice(2, "fence_ipmilan", ()), {}, str(tmp_path))
    with pytest.raises(ConfigError, match="No such file"):
        missing.run("status", 5)


class Scripted(FenceMethod):
    """A fence method answering from a script: action -> exit code (None: timed out)."""

    name = "scripted"

    def __init__(self, codes: dict[str, int | None]) -> None:
        self.codes = codes
        self.calls: list[str] = []

    def run(self, action: str, timeout: float) -> Answer:
        self.calls.append(action)
        return Answer(self.codes[action], f"{action} said {self.codes[action]}", 0.1)


@pytest.mark.parametrize(
    ("codes", "confirmed", "power", "calls"),
    [
        ({"off": 0, "status": 2}, True, "off", ["off", "status"]),
        ({"off": 0, "status": 0}, False, "on", ["off", "status"]),  # accepted off, still on
        ({"off": 0, "status": 1}, False, "unknown", ["off", "status"]),
        ({"off": 1, "status": 2}, False, "unknown", ["off"]),  # a failed off is never followed by a guess
        ({"off": None, "status": 2}, False, "unknown", ["off"]),
    ],
)
def test_a_power_off_counts_only_when_the_device_then_says_off(
    codes: dict[str, int | None], confirmed: bool, power: str, calls: list[str]
) -> None:
    method = Scripted(codes)
    out = fence.power_off(method, 2, "scripted", 5)
    assert (out.confirmed, out.power, method.calls) == (confirmed, power, calls)
    assert out.reason


def sector(host_id: int, generation: int, timestamp: int, owner: int | None = None, space: bytes = b"hectl") -> bytes:
    """A delta lease sector as sanlock lays it out (leader.h)."""
    fields = (lease.DELTA_MAGIC, 0x60003, 0, 512, 2000, 2000, owner or host_id, generation, 0, space, b"", timestamp)
    return struct.pack("<IIIIQQQQQ48s48sQ", *fields).ljust(512, b"\0")


@pytest.mark.parametrize(
    ("data", "why"),
    [
        (sector(2, 3, 0)[:100], "short sector"),
        (b"\xff" * 512, "no sanlock delta lease"),
        (sector(2, 3, 9, space=b"other"), "no sanlock delta lease of lockspace hectl"),
        (sector(2, 3, 9, owner=1), "the sector names host id 1"),
    ],
)
def test_a_forged_or_foreign_delta_lease_is_refused(data: bytes, why: str) -> None:
    with pytest.raises(ValueError, match=why):
        lease.parse_delta(data, 2)


def lockspace(tmp_path: Path, *sectors: bytes) -> DomainPaths:
    paths = DomainPaths.under(str(tmp_path))
    Path(paths.lockspace).parent.mkdir(parents=True, exist_ok=True)
    Path(paths.lockspace).write_bytes(b"".join(sectors).ljust(1024 * 1024, b"\0"))
    return paths


class Renewing(Scripted):
    """A device whose host renews its delta lease while being powered off (it was not dead after all)."""

    def __init__(self, codes: dict[str, int | None], paths: DomainPaths) -> None:
        super().__init__(codes)
        self.paths = paths

    def run(self, action: str, timeout: float) -> Answer:
        if action == "off":
            with open(self.paths.lockspace, "r+b") as f:
                f.seek(512)
                f.write(sector(2, 3, 1001))
        return super().run(action, timeout)


def test_a_host_id_is_freed_only_after_a_confirmed_off_and_only_as_it_was_read(tmp_path: Path) -> None:
    """The reading before the power-off is the one freed: no call of sanlock in these cases."""
    paths = lockspace(tmp_path, sector(1, 1, 500), sector(2, 3, 1000))
    refused = takeover.fence_and_free(Scripted({"off": 0, "status": 0}), 2, "scripted", 5, paths, 2)
    assert (refused.outcome.confirmed, refused.freed, refused.problem) == (False, False, "")
    renewed = takeover.fence_and_free(Renewing({"off": 0, "status": 2}, paths), 2, "scripted", 5, paths, 2)
    assert renewed.outcome.confirmed and not renewed.freed
    assert "renewed its lease since it was judged dead" in renewed.problem
    free = lockspace(tmp_path, sector(1, 1, 500), sector(2, 3, 0))  # released meanwhile (another fencer)
    assert takeover.fence_and_free(Scripted({"off": 0, "status": 2}), 2, "scripted", 5, free, 2).freed
    unreadable = DomainPaths.under(str(tmp_path / "gone"))
    method = Scripted({"off": 0, "status": 2})
    lost = takeover.fence_and_free(method, 2, "scripted", 5, unreadable, 2)
    assert method.calls == ["off", "status"] and lost.outcome.confirmed and not lost.freed
    assert "could not be read before the power-off" in lost.problem


def test_plugins_bring_fence_methods(tmp_path: Path) -> None:
    made: list[tuple[FenceDevice, dict[str, str]]] = []

    def factory(dev: FenceDevice, secrets: dict[str, str], cfg: config.FencingConfig) -> FenceMethod:
        made.append((dev, secrets))
        return Scripted({"monitor": 0, "status": 0})

    plugin = SimpleNamespace(hectl_register_fence_methods=hookimpl(lambda register: register("pdu", factory)))
    plugins = make_plugin_manager(load_entrypoints=False, extra=[("pdu-plugin", plugin)], environ={})
    cfg = secrets_dir(tmp_path, "password=x\n")._replace(devices=((2, "pdu outlet=4"),))
    dev, method = device.build(cfg, 2, plugins.fence_methods())
    assert fence.check(method, 2, "pdu", 5).works
    assert made == [(FenceDevice(2, "pdu", (("outlet", "4"),), ("password",)), {"password": "x"})]
    assert dev.describe() == "pdu outlet=4 password=***"
    with pytest.raises(ConfigError, match="unknown fence method 'pdu'"):
        device.build(cfg, 2, {})
    for name in ("pdu", "fence_pdu"):
        dup = SimpleNamespace(hectl_register_fence_methods=hookimpl(lambda register, n=name: register(n, factory)))
        extra = [("pdu-plugin", plugin), ("other", dup)] if name == "pdu" else [("other", dup)]
        with pytest.raises(PluginError):
            make_plugin_manager(load_entrypoints=False, extra=extra, environ={}).fence_methods()


def test_vm_status_says_who_fenced_whom_when_and_why(domain) -> None:  # type: ignore[no-untyped-def]
    from tests.conftest import run_hectl
    from tests.test_json_schemas import valid

    lines = (
        "fenced host=1 by=2 at=2026-12-04T11:02:03Z reason=fenced host 1: fence_ipmilan ip=192.0.2.11 reported it off",
        "fenced host=3 by=1 at=2026-12-04T11:02:03Z reason=forged: host 2's record cannot speak for host 1",
        "fence-failed host=3 by=2 at=2026-12-04T11:09:00Z reason=fencing host 3 failed (timed out)\x1b[2J",
    )
    domain.publish(2, details=lines)
    res = run_hectl(["vm-status", "--json"], env=domain.env)
    doc = valid(res.stdout, "vm-status")
    row = next(h for h in doc["hosts"] if h["host_id"] == 2)
    assert [(f["host_id"], f["by_host_id"], f["result"]) for f in row["fencing"]] == [(1, 2, "confirmed"), (3, 2, "failed")]
    text = run_hectl(["vm-status"], env=domain.env).stdout
    assert "host 2 fenced host 1 at 2026-12-04T11:02:03Z: fenced host 1: fence_ipmilan ip=192.0.2.11 reported it off" in text
    assert "host 2 FAILED to fence host 3" in text and "\x1b" not in text and "\\x1b[2J" in text


def test_explain_lists_the_fencings_and_the_retry_timer(domain) -> None:  # type: ignore[no-untyped-def]
    from hectl.config import HAConfig
    from hectl.ha import fsm
    from tests.conftest import run_hectl
    from tests.test_json_schemas import valid

    domain.publish(2, details=("fenced host=3 by=2 at=2026-12-04T11:02:03Z reason=judged dead; reported it off",))
    doc = valid(run_hectl(["explain", "--json"], env=domain.env).stdout, "explain")
    reason = "judged dead; reported it off"
    assert doc["fencing"] == [
        {"host_id": 3, "by_host_id": 2, "at": "2026-12-04T11:02:03Z", "result": "confirmed", "reason": reason}
    ]
    assert "host 2 fenced host 3 at 2026-12-04T11:02:03Z" in run_hectl(["explain"], env=domain.env).stdout
    mem = fsm.Memory(fsm.S.DOWN, 0.0, fence_failed=((3, 100.0),))
    assert ("may fence host 3 again (fencing it failed)", 500.0) in fsm.timers(mem, 200.0, HAConfig(), 1000.0)


# What a device line may say (hectl/fencing/families.py): the domain is untrusted, so an allowlist per agent family.

FAMILY_LINES = {
    "IPMI": "fence_ipmilan ip=192.0.2.11 ipport=623 username=admin lanplus=1 cipher=3 privlvl=operator power_wait=0",
    "Redfish": "fence_redfish ip=192.0.2.21 username=admin ssl_insecure=1 systems_uri=/redfish/v1/Systems/System.Embedded.1",
    "iLO": "fence_ilo2 ip=ilo-h1.example.org username=Administrator ssl=1 ribcl_version=2.0 power_timeout=20",
    "iLO SSH": "fence_ilo4_ssh ip=2001:db8::14 username=fence ssh=1 method=cycle inet6_only=1",
    "iDRAC SSH": "fence_drac5 ip=cmc.example.org username=root ssh=1 plug=server-2 'drac_version=DRAC CMC'",
    "APC": "fence_apc ip=pdu1.example.org username=apc ssh=1 plug=4 switch=1 delay=5",
    "PDU SNMP": "fence_eaton_snmp ip=192.0.2.40 username=fence snmp_version=3 snmp_sec_level=authPriv snmp_auth_prot=SHA "
    "snmp_priv_prot=AES plug=3",
    "virt": "fence_virsh ip=hv1.example.org username=fence ssh=1 plug=engine-host-2 missing_as_off=1",
}


@pytest.mark.parametrize("family", sorted(families.FAMILIES))
def test_every_family_takes_what_its_devices_need(family: str) -> None:
    method, params = parse.fence_device(FAMILY_LINES[family])
    assert families.AGENTS[method] == family and len(params) == len(shlex.split(FAMILY_LINES[family])) - 1


# Every parameter of the finding and every other that names a program, a file, a log or a secret.
REFUSED = [
    *("openrc", "logfile", "kubeconfig", "serviceaccount", "cacert", "tlskey", "devices", "key_file", "debug_file"),
    *("debug", "verbose", "verbose_level", "quiet", "ipmitool_path", "sudo_path", "use_sudo", "sudo", "ssh_options"),
    *("ssh_path", "telnet_path", "gnutlscli_path", "snmpget_path", "snmpset_path", "snmpwalk_path", "identity_file"),
    *("snmp_priv_passwd_script", "password_script", "passwd_script", "password", "passwd", "hexadecimal_kg"),
    *("community", "snmp_priv_passwd", "port_as_ip", "plug_separator", "command_prompt", "cmd_prompt", "disable_timeout"),
]


@pytest.mark.parametrize("key", REFUSED)
@pytest.mark.parametrize("agent", ["fence_ipmilan", "fence_redfish", "fence_apc", "fence_apc_snmp", "fence_virsh"])
def test_programs_files_logs_and_secrets_are_refused(agent: str, key: str) -> None:
    with pytest.raises(ValueError, match=rf"{key} (may not be set here|from the device line; it takes .*ip, ipaddr)"):
        parse.fence_device(f"{agent} ip=192.0.2.11 {key}=/tmp/x")


@pytest.mark.parametrize(
    "text",
    [
        'fence_openstack plug=x "openrc=/dom/images/b;. /dom/images/evil.sh;x"',  # the finding
        "fence_scsi devices=/dev/sda logfile=/etc/cron.d/x",
        "fence_kubevirt kubeconfig=/root/.kube/config plug=x",
        "fence_virt ip=192.0.2.1",
        "fence_dummy type=file",
        "fence_ack_manual",
    ],
)
def test_agents_outside_the_supported_families_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match=r"is not a fence agent hectl runs \(supported: fence_ipmilan, "):
        parse.fence_device(text)


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("fence_apc ip='pdu -oProxyCommand=sh' plug=1", "ip must be a hostname or IP address"),  # ssh's command line
        ("fence_apc ip=pdu username=-oProxyCommand=sh plug=1", "username must be a name"),
        ("fence_virsh ip=hv username=u plug='x;reboot'", "plug must be a name"),  # virsh runs on the hypervisor
        ("fence_ipmilan ip=a cipher='3 -f /etc/shadow'", "cipher must be an integer"),  # ipmitool's command line
        ("fence_ipmilan ip=a lanplus=maybe", "lanplus must be 1 or 0"),
        ("fence_ipmilan ip=a privlvl=root", "privlvl must be one of callback, user, operator, administrator"),
        ("fence_redfish ip=a systems_uri=http://evil/", "systems_uri must be a URI path"),
        ("fence_ipmilan ip=a power_wait=1e9", "power_wait must be a number"),
    ],
)
def test_values_are_plain_addresses_numbers_names_or_choices(text: str, why: str) -> None:
    with pytest.raises(ValueError, match=why):
        parse.fence_device(text)


def test_the_device_shows_every_parameter_and_masks_every_secret(tmp_path: Path) -> None:
    cfg = secrets_dir(tmp_path, "password=hunter22\nhexadecimal_kg=00ff\n")
    dev, method = device.build(cfg, 2)
    assert isinstance(method, FenceAgent) and method.secrets == {"password": "hunter22", "hexadecimal_kg": "00ff"}
    assert dev.describe() == "fence_ipmilan ip=192.0.2.12 username=admin password=*** hexadecimal_kg=***"
    shown = FenceDevice(2, "fence_drac5", (("ip", "cmc"), ("drac_version", "DRAC CMC")), ("password",)).describe()
    assert shown == "fence_drac5 ip=cmc drac_version='DRAC CMC' password=***"
    assert FenceDevice(2, "pdu", (("label", "a\u202eb"),)).describe() == "pdu label='a\\u202eb'"  # safe for a terminal


def test_this_hosts_agents_list_decides_which_agents_run(tmp_path: Path) -> None:
    cfg = base_config("agents = fence_ipmilan, fence_redfish,fence_ipmilan\nhost2 = fence_apc ip=pdu plug=2\n")
    assert cfg.fencing.agents == ("fence_ipmilan", "fence_redfish")
    assert base_config().fencing.agents == families.SUPPORTED
    with pytest.raises(ConfigError, match=r"fence agent fence_apc is not in this host's \[fencing\] agents") as err:
        device.configured(cfg.fencing, 2)
    assert "[fencing] agents" in (err.value.hint or "")
    with pytest.raises(ConfigError, match=r"\[fencing\] agents = 'fence_openstack': fence_openstack is not a fence agent"):
        base_config("agents = fence_openstack\n")
    forged = config.FencingConfig(devices=((8, "fence_ipmilan ip=a openrc=/tmp/x"),))  # past the configuration's check
    with pytest.raises(ConfigError, match=r"\[fencing\] host8: fence_ipmilan \(IPMI\) does not take openrc"):
        device.configured(forged, 8)


EVIL = "#!/bin/sh\ntouch {marker}\n"


def evil_line(tmp_path: Path) -> tuple[str, Path]:
    """The finding's device line: fence_openstack sources openrc through a shell, which would run evil.sh as root."""
    images = tmp_path / "images"
    images.mkdir()
    marker = tmp_path / "pwned"
    (images / "evil.sh").write_text(EVIL.format(marker=marker))
    (images / "evil.sh").chmod(0o755)
    return f'fence_openstack plug=x "openrc={images}/b;. {images}/evil.sh;x"', marker


def test_the_runner_checks_the_device_again_right_before_it_runs_an_agent(tmp_path: Path) -> None:
    line, marker = evil_line(tmp_path)
    method, params = shlex.split(line)[0], tuple(tuple(w.split("=", 1)) for w in shlex.split(line)[1:])
    agent = FenceAgent(FenceDevice(8, method, params), {}, "/usr/sbin")  # type: ignore[arg-type]
    for action in ("monitor", "status", "off"):
        with pytest.raises(ConfigError, match="fence_openstack is not a fence agent hectl runs"):
            agent.run(action, 10)
    sneaky = FenceAgent(FenceDevice(8, "fence_ipmilan", (("ip", "a"), ("ipmitool_path", str(marker)))), {}, "/usr/sbin")
    with pytest.raises(ConfigError, match=r"\[fencing\] host8: fence_ipmilan \(IPMI\) does not take ipmitool_path"):
        sneaky.run("status", 10)
    assert not marker.exists()


def forge_cluster_doc(domain, sections: dict[str, dict[str, str]]) -> None:  # type: ignore[no-untyped-def]
    """Write the domain's cluster configuration as even a holder of the cluster key could: signed, values unchecked."""
    from hectl.storage import cluster, clusterkey, sealed

    key_path = str(domain.config.parent / "cluster.key")
    key = clusterkey.load(key_path)
    if key is None:
        key = clusterkey.generate()
        clusterkey.save(key_path, key)
    path = Path(DomainPaths.under(str(domain.root)).config_dir) / cluster.CLUSTER_FILE
    path.write_bytes(sealed.seal("cluster", {"version": 99, "sections": sections}, cluster.CLUSTER_SIZE, key))


def test_the_finding_cannot_be_set_and_a_forged_one_runs_nothing(domain, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from tests.conftest import run_hectl

    line, marker = evil_line(tmp_path)
    res = run_hectl(["cluster-config", "set", f"fencing.host8={line}"], env=domain.env)
    assert res.returncode == 2 and "fence_openstack is not a fence agent hectl runs" in res.stderr, res.stderr
    res = run_hectl(["cluster-config", "set", "fencing.agents=fence_openstack"], env=domain.env)
    assert res.returncode == 2 and "fencing.agents is not a shared key" in res.stderr, res.stderr
    forge_cluster_doc(domain, {"fencing": {"host8": line}})
    for args in (["fence", "check", "--host-id", "8"], ["fence", "check"], ["fence", "off", "--host-id", "8", "--yes"]):
        res = run_hectl(args, env=domain.env)
        assert res.returncode == 3 and "Traceback" not in res.stderr, (args, res.stderr)
    res = run_hectl(["cluster-config", "show"], env=domain.env)  # why: the document is refused, never used
    assert res.returncode == 4 and "fence_openstack is not a fence agent hectl runs" in res.stderr, res.stderr
    assert not marker.exists()


class Sequenced(Scripted):
    """Answers each action from its list in turn (``status``: on before the off, off after it)."""

    def __init__(self, codes: dict[str, list[int | None]]) -> None:
        super().__init__({})
        self.seq = {k: list(v) for k, v in codes.items()}

    def run(self, action: str, timeout: float) -> Answer:
        self.calls.append(action)
        code = self.seq[action].pop(0)
        return Answer(code, f"{action} said {code}", 0.1)


def test_the_agents_fencing_reads_again_and_asks_the_device_first(tmp_path: Path) -> None:
    """The agent's fencing (``judged``): a renewal since the judgement, or a device already saying off, stops it
    before any power-off and frees nothing; else status, off, status, then the host id is freed."""
    judged = lease.DeltaLease(2, 3, 1000)
    paths = lockspace(tmp_path, sector(1, 1, 500), sector(2, 3, 1001))  # renewed after it was judged dead
    method = Sequenced({"status": [0, 2], "off": [0]})
    renewed = takeover.fence_and_free(method, 2, "scripted", 5, paths, 2, judged=judged)
    assert method.calls == [] and not renewed.freed and "renewed its sanlock lease" in renewed.outcome.reason
    paths = lockspace(tmp_path, sector(1, 1, 500), sector(2, 3, 1000))
    for said, power in ((2, "off"), (1, "unknown"), (None, "unknown")):
        method = Sequenced({"status": [said], "off": [0]})
        wrong = takeover.fence_and_free(method, 2, "scripted", 5, paths, 2, judged=judged)
        assert method.calls == ["status"] and not wrong.outcome.confirmed and not wrong.freed, said
        assert wrong.outcome.power == power and "refused, its host id is not freed" in wrong.outcome.reason
    assert (
        "may power another machine"
        in takeover.fence_and_free(Sequenced({"status": [2]}), 2, "scripted", 5, paths, 2, judged=judged).outcome.reason
    )
    method = Sequenced({"status": [0, 2], "off": [0]})
    with pytest.MonkeyPatch.context() as mp:
        freed: list[lease.DeltaLease] = []
        mp.setattr(lease, "free_host_id", lambda p, seen, t: freed.append(seen))
        done = takeover.fence_and_free(method, 2, "scripted", 5, paths, 2, judged=judged)
    assert method.calls == ["status", "off", "status"] and done.outcome.confirmed and done.freed and freed == [judged]
    assert [s.action for s in done.outcome.steps] == ["status", "off", "status"]


def test_two_hosts_devices_may_not_power_the_same_outlet() -> None:
    same = "fence_apc ip=192.0.2.9 plug=4"
    with pytest.raises(ConfigError, match="host1 and host3 name the same device and outlet"):
        base_config(f"host1 = {same}\nhost2 = fence_apc ip=192.0.2.9 plug=5\nhost3 = {same} username=x\n")
    with pytest.raises(ConfigError, match="host1 and host2 name the same device"):
        base_config("host1 = fence_ipmilan ip=192.0.2.11\nhost2 = fence_ipmilan ipaddr=192.0.2.11\n")
    base_config("host1 = fence_ipmilan ip=192.0.2.11\nhost2 = fence_ipmilan ip=192.0.2.12\n")
