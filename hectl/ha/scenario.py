"""Scenario files for ``hectl ha simulate`` (TOML, documented in docs/simulate.md) and running them."""

from __future__ import annotations

import functools
import math
import os
import tomllib

from hectl import config
from hectl.config import HAConfig, ScoreConfig
from hectl.errors import ConfigError
from hectl.frozen import Frozen
from hectl.ha import fsm
from hectl.ha.agent import AgentConfig
from hectl.ha.sim import Entry, SimHost, SimTimings, World, fence_bound, liveness_bound, unhealthy_grace
from hectl.parse import MAX_TTL
from hectl.storage import records

# action -> the extra key it takes ("" for none)
ACTIONS = {
    "power-off": "",
    "power-on": "",
    "host-shutdown": "",  # graceful: the agent stops, the engine VM shuts down, sanlock leaves, the host powers off
    "host-reboot": "",  # the same, then the host boots again
    "agent-restart": "",
    "network-down": "",
    "network-up": "",
    "storage-stall": "duration",
    "storage-lost": "",
    "storage-back": "",
    "metadata-io-lost": "",  # only the agent's metadata I/O fails (sanlock still renews)
    "metadata-io-back": "",
    "sanlock-io-lost": "",  # only sanlock's I/O fails (the metadata still reads and writes)
    "sanlock-io-back": "",
    "health-bad": "",
    "health-good": "",
    "vm-crash": "",
    "clock-jump": "seconds",
    "global-maintenance": "ttl",
    "global-maintenance-off": "",
    "local-maintenance": "",
    "local-maintenance-off": "",
    "vm-start": "",  # an admin starts the engine VM by hand on this host
    "vm-start-fails": "",  # every start of the engine VM on this host fails outright from now on
    "vm-start-works": "",
    "vm-migrate": "to",  # an admin live-migrates the engine VM to host ``to`` (hectl vm-migrate)
    "migration-fails": "",  # migrations from this host fail at the switch-over (the target cannot take the lease)
    "migration-works": "",
    "acpi-ignored": "",  # the guest ignores ACPI shutdown requests from now on
    "libvirt-down": "",
    "libvirt-up": "",
    "agent-stop": "",
    "agent-start": "",
    "agent-rogue": "score",  # the agent hangs republishing EngineDown with ``score`` (live record), never acting
    "fence-works": "",  # this host's fence device works (the default with [fencing])
    "fence-fails": "",  # ... fails at once
    "fence-slow": "",  # ... never answers: fails after [sim] fence_timeout
    "fence-keeps-on": "",  # ... accepts off, but the host stays on
}
CLUSTER_ACTIONS = {"global-maintenance", "global-maintenance-off"}
MAX_HOSTS = 64  # the work grows with hosts squared times the duration
MAX_DURATION = 86400.0  # one simulated day
MAX_NUMBER = 10 * 366 * 86400.0  # any other number (seconds): ten years
MAX_SCORE = 2**31 - 1  # a rogue record's score: any the record format holds


class Event(Frozen):
    at: float
    action: str
    host: int = 0
    duration: float = 0.0
    seconds: float = 0.0
    ttl: float = 0.0
    to: float = 0.0
    score: float = 0.0


class Scenario(Frozen):
    name: str
    description: str
    hosts: int
    duration: float
    engine_host: int  # 0: the engine starts nowhere and the hosts elect one
    events: tuple[Event, ...]
    sim: SimTimings = SimTimings()
    timings: HAConfig = HAConfig()
    fence_after: float | None = None  # [fencing] dead_after: every host has a fence device (None: no fencing)


class Result(Frozen):
    scenario: Scenario
    timeline: tuple[Entry, ...]
    violations: tuple[str, ...]
    engine_host: int | None  # where the engine is up (healthy, with its storage and lease) at the end
    downtime: float  # seconds the engine was not up, from the first fault or the first time it was up
    healthy_since: float | None  # the engine has been up without a break since then (None: not at the end)
    blocked_at: float | None = None  # the last time the engine was down and no host could run it
    engine_vms: tuple[str, ...] = ()  # at the end, each engine VM that is not down: "host N: VM up, health bad"

    def lines(self) -> list[str]:
        out = [e.line() for e in self.timeline]
        if self.engine_host:
            where = f"engine healthy on host {self.engine_host}"
        else:
            where = "engine not healthy anywhere" + (f" ({'; '.join(self.engine_vms)})" if self.engine_vms else "")
        out.append(f"end {self.scenario.duration:.0f} s: {where}; downtime {self.downtime:.1f} s")
        sc = self.scenario
        bound, grace = liveness_bound(sc.sim, sc.timings), unhealthy_grace(sc.sim, sc.timings)
        fenced = ""
        if sc.fence_after is not None:
            fenced = f", {fence_bound(sc.sim, sc.timings, sc.fence_after):.0f} s of a fenced power loss"
        out += [f"VIOLATION {v}" for v in self.violations] or [
            f"safety: never two engines; liveness: up again within {bound:.0f} s of a fault "
            f"({grace:.0f} s for an unhealthy engine{fenced}) while a host could run it"
        ]
        return out


def _number(table: dict[str, object], key: str, where: str, default: float | None = None, high: float = MAX_NUMBER) -> float:
    value = table.get(key, default)
    signed = key in ("seconds", "score")  # a clock may jump back; a rogue record may hold any score
    if (
        not isinstance(value, int | float)
        or isinstance(value, bool)
        or not math.isfinite(value)
        or not (-high if signed else 0) <= value <= high
    ):
        low = f"-{high:.0f}" if signed else "0"
        raise ConfigError(f"{where}: '{key}' must be a number from {low} to {high:.0f} (got {value!r})")
    return float(value)


def load(path: str) -> Scenario:
    """Read and validate a scenario file; ``ConfigError`` names the file and the bad key."""
    try:
        with open(path, "rb") as f:
            data = tomllib.load(f)
    except OSError as exc:
        raise ConfigError(f"cannot read scenario {path}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"cannot read scenario {path}: not UTF-8 text") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    return parse(data, path)


def parse(data: dict[str, object], path: str) -> Scenario:
    known = {"description", "hosts", "duration", "engine_host", "event", "sim", "ha", "fencing"}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ConfigError(f"{path}: unknown key '{unknown[0]}' (known: {', '.join(sorted(known))})")
    count = _number(data, "hosts", path, 3, MAX_HOSTS)
    if count < 1 or count != int(count):
        raise ConfigError(f"{path}: 'hosts' must be a whole number from 1 to {MAX_HOSTS} (got {data['hosts']!r})")
    hosts = int(count)
    duration = _number(data, "duration", path, 600, MAX_DURATION)
    engine_host = int(_number(data, "engine_host", path, 0))
    if engine_host > hosts:
        raise ConfigError(f"{path}: 'engine_host' {engine_host} is not one of the {hosts} hosts")
    sim = SimTimings()._replace(**_overrides(SimTimings._fields, data.get("sim", {}), f"{path} [sim]"))
    timing_keys = tuple(k for k in HAConfig._fields if k != "metrics_port")  # all floats
    timings = HAConfig()._replace(**_overrides(timing_keys, data.get("ha", {}), f"{path} [ha]", "ha"))  # type: ignore[arg-type]
    events = []
    raw_events = data.get("event", [])
    if not isinstance(raw_events, list):
        raise ConfigError(f"{path}: 'event' must be an array of tables ([[event]])")
    for i, ev in enumerate(raw_events, 1):
        where = f"{path} event {i}"
        if not isinstance(ev, dict):
            raise ConfigError(f"{where}: must be a table")
        action = ev.get("action")
        if action not in ACTIONS:
            raise ConfigError(f"{where}: unknown action {action!r} (known: {', '.join(ACTIONS)})")
        extra = ACTIONS[action]
        allowed = {"at", "action", "host", extra} - {""}
        bad = sorted(set(ev) - allowed)
        if bad:
            raise ConfigError(f"{where}: '{bad[0]}' does not go with action {action}")
        host = int(_number(ev, "host", where, 0))
        if action not in CLUSTER_ACTIONS and not 1 <= host <= hosts:
            raise ConfigError(f"{where}: 'host' must be one of 1..{hosts}")
        if extra == "to" and not 1 <= ev.get("to", 0) <= hosts:
            raise ConfigError(f"{where}: 'to' must be one of 1..{hosts}")
        high = MAX_TTL if extra == "ttl" else MAX_SCORE if extra == "score" else MAX_NUMBER
        kw = {extra: _number(ev, extra, where, 0.0 if extra == "ttl" else None, high)} if extra else {}
        events.append(Event(at=_number(ev, "at", where), action=str(action), host=host, **kw))
    fence_after = None
    if "fencing" in data:
        fence_after = _overrides(("dead_after",), data["fencing"], f"{path} [fencing]", "fencing").get("dead_after", 15.0)
    name = os.path.splitext(os.path.basename(path))[0]
    description = str(data.get("description", ""))
    return Scenario(name, description, hosts, duration, engine_host, tuple(events), sim, timings, fence_after)


def _overrides(fields: tuple[str, ...], table: object, where: str, section: str = "") -> dict[str, float]:
    """The numbers of ``table``; with ``section``, each within the range of that hectl.conf section's key."""
    if not isinstance(table, dict):
        raise ConfigError(f"{where}: must be a table")
    unknown = sorted(set(table) - set(fields))
    if unknown:
        raise ConfigError(f"{where}: unknown key '{unknown[0]}' (known: {', '.join(fields)})")
    values = {k: _number(table, k, where, high=MAX_NUMBER if section else MAX_DURATION) for k in table}
    for key, value in values.items():
        try:
            if section:
                config.parse_value(section, key, repr(value))
            elif value <= 0:  # a zero period would never let simulated time advance
                raise ValueError("must be more than 0")
        except ValueError as exc:
            raise ConfigError(f"{where}: '{key}' {exc} (got {table[key]!r})") from None
    return values


def agent_config(host_id: int, sc: Scenario) -> AgentConfig:
    return AgentConfig(
        host_id=host_id,
        hostname=f"h{host_id}",
        engine_mem_mib=4096,
        liveness_window=sc.sim.liveness_window,
        score=ScoreConfig(),
        timings=sc.timings,
        fence_after=sc.fence_after,
        fenceable=frozenset(range(1, sc.hosts + 1)) if sc.fence_after is not None else frozenset(),
    )


def run(sc: Scenario) -> Result:
    """Run ``sc`` on a fresh simulated cluster."""
    world = World(sc.hosts, sc.sim, sc.timings)
    world.fence_after = sc.fence_after
    for h in world.hosts.values():
        world.power_on(h, agent_config(h.id, sc), engine_running=h.id == sc.engine_host)
    for ev in sorted(sc.events, key=lambda e: e.at):
        world.at(ev.at, functools.partial(_apply, world, sc, ev))
    world.run(sc.duration)
    timeline, violations = tuple(world.timeline), tuple(world.violations)
    vms = world.engine_vms()
    return Result(sc, timeline, violations, world.engine_host(), world.downtime, world.up_since, world.blocked_at, vms)


def _apply(world: World, sc: Scenario, ev: Event) -> None:
    h: SimHost | None = world.hosts.get(ev.host)
    detail = {
        "duration": f"{ev.duration:g} s",
        "seconds": f"{ev.seconds:+g} s",
        "ttl": f"ttl {ev.ttl:g} s",
        "to": f"to host {ev.to:g}",
        "score": f"score {ev.score:.0f}",
    }
    extra = ACTIONS[ev.action]
    world.fault(ev.host, ev.action, detail[extra] if extra and (ev.action != "global-maintenance" or ev.ttl) else "")
    a = ev.action
    if a in CLUSTER_ACTIONS:
        wall = world.wall()
        on = a == "global-maintenance"
        slot0 = records.decode_slot(0, bytes(world.meta[: records.SLOT_SIZE])).record
        seq = slot0.seq + 1 if isinstance(slot0, records.GlobalRecord) else 1
        rec = records.GlobalRecord(seq, on, "simulated" if on else "", "sim", wall, wall + ev.ttl if on and ev.ttl else None)
        world.meta[: records.SLOT_SIZE] = records.encode_global(rec)
        return
    assert h is not None
    if a == "power-off":
        world.power_off(h)
    elif a == "power-on":
        world.power_on(h, agent_config(h.id, sc))
    elif a == "agent-restart":
        world.restart_agent(h, agent_config(h.id, sc))
    elif a in ("network-down", "network-up"):
        h.network_ok = a == "network-up"
    elif a == "storage-stall":
        h.stall_until = world.now + ev.duration
    elif a in ("host-shutdown", "host-reboot"):
        world.shutdown_host(h, agent_config(h.id, sc) if a == "host-reboot" else None)
    elif a in ("storage-lost", "storage-back"):
        h.storage_lost = a == "storage-lost"
    elif a in ("metadata-io-lost", "metadata-io-back"):
        h.metadata_lost = a == "metadata-io-lost"
    elif a in ("sanlock-io-lost", "sanlock-io-back"):
        h.lockspace_lost = a == "sanlock-io-lost"
    elif a in ("vm-start-fails", "vm-start-works"):
        h.start_fails = a == "vm-start-fails"
    elif a in ("migration-fails", "migration-works"):
        h.migration_fails = a == "migration-fails"
    elif a in ("health-bad", "health-good"):
        h.engine_health_bad = a == "health-bad"
    elif a == "vm-crash":
        world.crash_vm(h)
    elif a == "clock-jump":
        h.wall_offset += ev.seconds
    elif a in ("local-maintenance", "local-maintenance-off"):
        h.local_maintenance = a == "local-maintenance"
    elif a == "vm-start":
        world.vm_action(h, fsm.START)
    elif a == "vm-migrate":
        world.migrate(h, world.hosts.get(int(ev.to)))
    elif a == "acpi-ignored":
        h.acpi_ignored = True
    elif a in ("libvirt-down", "libvirt-up"):
        h.libvirt_down = a == "libvirt-down"
    elif a == "agent-stop":
        world.stop_agent(h)
    elif a == "agent-rogue":
        world.rogue_agent(h, int(ev.score))
    elif a.startswith("fence-"):
        h.fence_device = a.removeprefix("fence-")
    elif a == "agent-start" and h.agent is None:
        world.restart_agent(h, agent_config(h.id, sc))
