"""``hectl ha run``: the agent on a real host, its environment, and its loop.

The loop: cycle (collect -> decide -> act -> publish), write the local view
(``agent-view.json``, read by ``vm-status``), keep the sanlock host id joined,
sleep until the decision's delay or a signal. Per-cycle errors are contained
and logged at most once a minute each; SIGTERM/SIGINT stop it promptly with a
clean "stopped" record; SIGHUP re-reads the configuration.

Under systemd (``Type=notify``, see ``sdnotify``) the loop reports READY=1 after
its first cycle (this host's record published, or STATUS says why not: joining
the sanlock lockspace can take minutes and goes on in the background), STATUS=
with the state every cycle, STOPPING=1 on a clean stop, and WATCHDOG=1 after
every cycle that ran to its end and while sleeping after one: a loop stuck in a
call, or failing with a bug every cycle, stops pinging and gets restarted.
"""

from __future__ import annotations

import logging
import threading

from hectl import lease, localstate, metrics, status
from hectl.errors import ConfigError, HectlError
from hectl.ha import fsm, monitors, sdnotify
from hectl.ha.agent import Agent, AgentConfig
from hectl.ha.fencer import Fencer
from hectl.ha.runtime import HYPERVISOR_TIMEOUT, EngineRuntime
from hectl.lease import SanlockLeases, require_binding
from hectl.storage import records
from hectl.storage.metadata import MetadataStore

TYPE_CHECKING = False  # typing.TYPE_CHECKING would import typing (see hectl.frozen)
if TYPE_CHECKING:
    from collections.abc import Callable

    from hectl.clock import Clock
    from hectl.config import Config
    from hectl.ha.score import HostHealth
    from hectl.plugins import Plugins
    from hectl.storage.backend import StorageBackend
    from hectl.storage.metadata import MetadataSnapshot

log = logging.getLogger("hectl.ha")
MAX_IMMEDIATE = 10  # decisions with no delay in a row before the loop sleeps anyway


class HostEnv:
    """``agent.Env`` on this host: shared storage through the backend, sanlock, local state files."""

    def __init__(
        self,
        cfg: Config,
        store: MetadataStore,
        leases: SanlockLeases,
        clock: Clock,
        plugins: Plugins | None,
        problem: Callable[[str], None],
        runtime: EngineRuntime,
    ) -> None:
        self.cfg = cfg
        self.runtime = runtime
        self.store = store
        self.leases = leases
        self.clock = clock
        self.plugins = plugins
        self.problem = problem
        self.leases_view: dict[int, str] = {}
        self.monitors: dict[str, object] = {}
        methods = plugins.fence_methods if plugins is not None else dict
        self.fencer = Fencer(cfg, store.backend, clock, methods)
        self.reconfigure(cfg)

    def reconfigure(self, cfg: Config) -> None:
        """Take a new configuration: rebuild the monitors and hand the engine monitor to the VM runtime."""
        self.cfg = self.runtime.cfg = self.fencer.cfg = cfg
        self.runtime.spec = None  # re-read the engine VM spec too
        self.monitors = self.plugins.monitors(cfg, self.clock) if self.plugins is not None else {}
        engine = self.monitors.pop("engine", None)
        if self.plugins is not None:
            self.runtime.health_monitor = engine or _Unchecked()
        cpu = self.monitors.get("cpu")
        if isinstance(cpu, monitors.CpuMonitor):
            cpu.exclude_pids = self.runtime.engine_pids  # the load of the host, not of the engine it runs

    def read_metadata(self) -> MetadataSnapshot:
        return self.store.read_all()

    def write_record(self, record: records.HostRecord) -> None:
        self.store.write_host(record)

    def host_lease(self) -> str:
        return self.leases.state()

    def lease_view(self) -> dict[int, str]:
        self.leases_view = self.leases.hosts()
        return self.leases_view

    def engine_lease(self) -> int:
        return self.leases.engine_holder()

    def vm(self) -> fsm.LocalVM:
        return self.runtime.vm()

    def act(self, action: str, target: int = 0, why: str = "", judged: fsm.Judged | None = None) -> None:
        if action == fsm.MIGRATE:
            self.runtime.migrate(target, self._hostname(target))
        elif action == fsm.FENCE:
            self.fencer.begin(target, why, judged)
        else:
            self.runtime.act(action)

    def renewals(self, host_ids: tuple[int, ...]) -> dict[int, tuple[int, int]]:
        deltas = lease.read_deltas(self.store.backend.paths(), host_ids, self.cfg.storage.timeout)
        return {h: (d.generation, d.timestamp) for h, d in deltas.items()}

    def fence_result(self) -> fsm.Outcome:
        return self.fencer.result()

    def _hostname(self, host_id: int) -> str:
        """Host ``host_id``'s hostname from its record ('' when it cannot be read now: the migration then fails)."""
        try:
            rec = self.store.read_all().slot(host_id).record
        except HectlError:
            return ""
        return rec.hostname if isinstance(rec, records.HostRecord) else ""

    def health(self) -> HostHealth:
        health = monitors.host_health(monitors.sample_all(self.monitors, self.problem), self.cfg.monitors.bridge)
        problem = self.runtime.config_problem()
        return health._replace(config_current=not problem, config_cause=problem)

    def local_maintenance(self) -> bool:
        return localstate.read_local_maintenance(self.cfg.paths.state_dir).in_force(self.clock.wall())

    def transition(self, host_id: int, old: str, new: str, reason: str) -> None:
        log.info("state %s -> %s: %s", old, new, reason)
        if self.plugins is not None:
            self.plugins.notify_state_transition(host_id=host_id, old_state=old, new_state=new, reason=reason)


class _Unchecked:
    """The engine monitor when no plugin registers one."""

    def sample(self) -> monitors.Reading:
        return monitors.Reading("engine", None, "engine health is not checked: no 'engine' monitor is registered")


def agent_config(cfg: Config) -> AgentConfig:
    return AgentConfig(
        host_id=cfg.host.id,
        hostname=cfg.host.hostname,
        engine_mem_mib=int(cfg.ha.engine_mem_mib),
        liveness_window=cfg.timeouts.liveness_window,
        score=cfg.score,
        timings=cfg.ha,
        fence_after=cfg.fencing.dead_after if cfg.fencing.enabled else None,
        fenceable=frozenset(h for h, _ in cfg.fencing.devices),
    )


class RateLimitedLog:
    """Log each distinct per-cycle problem at most once per ``every`` seconds."""

    def __init__(self, clock: Clock, every: float = 60.0) -> None:
        self.clock = clock
        self.every = every
        self.last: dict[str, float] = {}

    def __call__(self, message: str) -> None:
        now = self.clock.monotonic()
        if now - self.last.get(message, -self.every) >= self.every:
            self.last[message] = now
            log.warning("%s", message)


def run(
    load_config: Callable[[], Config],
    backend: StorageBackend,
    clock: Clock,
    stop: threading.Event,
    reload: threading.Event,
    plugins: Plugins | None = None,
    leases: SanlockLeases | None = None,
    runtime: EngineRuntime | None = None,
    notifier: sdnotify.Notifier | None = None,
    changed: Callable[[], bool] = lambda: False,
) -> None:
    """Run the agent until ``stop`` is set (``leases``: sanlock through the local daemon, ``runtime``: libvirt, unless given).

    The configuration is loaded again on SIGHUP (``reload``) and whenever ``changed()`` says so
    (the cluster configuration on the domain has a new version), checked once a cycle.
    """
    notifier = notifier or sdnotify.Notifier({})
    cfg = load_config()
    if leases is None:
        require_binding()
        leases = SanlockLeases(
            backend.paths(), cfg.host.id, int(cfg.ha.io_timeout), lambda path: backend.check_file(path, cfg.storage.timeout)
        )
    try:
        exporter = Exporter(cfg.ha.metrics_port) if cfg.ha.metrics_port else None
    except OSError as exc:
        raise ConfigError(
            f"{cfg.source}: [ha] metrics_port = {cfg.ha.metrics_port}: cannot serve metrics on that port: {exc.strerror}",
            hint="choose another port, or 0 for none",
        ) from None
    store = MetadataStore(backend, clock, cfg.storage.timeout)
    problem = RateLimitedLog(clock)
    runtime = runtime or EngineRuntime(cfg, backend, clock, problem)
    env = HostEnv(cfg, store, leases, clock, plugins, problem, runtime)
    agent = Agent(env, agent_config(cfg))
    _resume_maintenance_count(agent, cfg)
    _resume_fencings(agent, cfg, clock)
    joiner = Joiner(leases)
    joiner.start()
    log.info("agent of host %d (%s) started; joining sanlock lockspace", cfg.host.id, cfg.host.hostname)
    _check_watchdog(notifier, cfg)
    immediate = 0
    ready = {"READY": "1"}  # sent with the first cycle's status
    while not stop.is_set():
        if reload.is_set() or changed():
            reload.clear()
            try:
                cfg = load_config()
                env.reconfigure(cfg)
                agent.cfg = agent_config(cfg)
                log.info("configuration reloaded")
                _check_watchdog(notifier, cfg)
            except HectlError as exc:
                problem(f"configuration not reloaded: {exc.message}")
        start = clock.monotonic()
        delay = cfg.ha.loop
        progress = True  # the cycle ran to its end (the world may still be broken)
        try:
            delay = agent.cycle().delay
            view = _write_view(agent, env, cfg, clock)
            if exporter is not None:
                exporter.update(agent, cfg, clock, view)
            if joiner.error:
                problem(f"sanlock: {joiner.error}")
            lease = leases.state()
            if lease in ("none", "lost"):
                joiner.start()
            status = _status(agent, lease)
        except HectlError as exc:
            problem(f"cycle: {exc.message}")
            status = f"cycle: {exc.message}"
        except Exception as exc:  # one bad cycle never stops the agent
            problem(f"cycle failed unexpectedly: {type(exc).__name__}: {exc}")
            status, progress = f"cycle failed unexpectedly: {type(exc).__name__}", False
        notifier.send(**ready, STATUS=status, **({"WATCHDOG": "1"} if progress else {}))
        ready = {}
        immediate = immediate + 1 if delay <= 0 else 0
        if immediate > MAX_IMMEDIATE:
            delay, immediate = cfg.ha.loop, 0
        _sleep(clock, max(0.0, delay - (clock.monotonic() - start)), stop, notifier if progress else None)
    notifier.send(STOPPING="1", STATUS="stopping")
    env.fencer.wait()
    if exporter is not None:
        exporter.close()
    agent.stop()
    if env.vm().state in ("down", "unknown") and agent.memory.state != fsm.S.UP:
        leases.leave()
    log.info("agent stopped")


def cycle_bound(cfg: Config) -> float:
    """The longest one cycle can take, in seconds: the sum of the timeouts of what it waits for.

    Metadata read, record write and two engine VM spec reads (storage timeout each), sanlock's
    engine-lease read (io_timeout), libvirt, the engine's health page and the gateway probes.
    """
    probes = cfg.monitors.probes * (cfg.monitors.probe_timeout + 1) if cfg.monitors.network_test != "none" else 0.0
    return 4 * cfg.storage.timeout + cfg.ha.io_timeout + HYPERVISOR_TIMEOUT + cfg.engine.health_timeout + probes


def _check_watchdog(notifier: sdnotify.Notifier, cfg: Config) -> None:
    if notifier.watchdog is not None and notifier.watchdog < cycle_bound(cfg):
        log.warning(
            "WatchdogSec=%g is shorter than one cycle may take with this configuration (%g s): "
            "a slow but working loop would be killed; raise WatchdogSec",
            notifier.watchdog,
            cycle_bound(cfg),
        )


def _status(agent: Agent, lease: str) -> str:
    """The service status line: state, score, host id lease, and what keeps the record from being published."""
    score = agent.last.score.total if agent.last else 0
    text = f"{agent.memory.state}, score {score}, sanlock host id {lease}"
    error = agent.storage.get("read_error") or agent.storage.get("write_error")
    return f"{text}; storage: {error}" if error else text


def _sleep(clock: Clock, seconds: float, stop: threading.Event, notifier: sdnotify.Notifier | None) -> None:
    """Sleep ``seconds`` (or until ``stop``), pinging the ``notifier``'s watchdog at half its interval meanwhile."""
    if notifier is None or not notifier.watchdog:
        clock.sleep(seconds, stop)
        return
    end = clock.monotonic() + seconds
    while (left := end - clock.monotonic()) > 0 and not clock.sleep(min(left, notifier.watchdog / 2), stop):
        notifier.send(WATCHDOG="1")


def _fencings(mem: fsm.Memory, now: float, wall: float) -> tuple[tuple[int, str, float], ...]:
    """``mem``'s fencings with wall times, for a restarted agent (``_resume_fencings``)."""
    kinds = ((fsm.FENCED, mem.fenced), (fsm.FENCE_FAILED, mem.fence_failed))
    return tuple((host, kind, wall - (now - at)) for kind, entries in kinds for host, at in entries)


def _resume_fencings(agent: Agent, cfg: Config, clock: Clock) -> None:
    """A restarted agent remembers whom its predecessor fenced and failed to fence (not fenced again within
    retry_window; a fenced host counted dead until it returns). A wall time ahead of ours counts as now."""
    view = localstate.read_agent_view(cfg.paths.state_dir)
    if view is None or view.host_id != cfg.host.id:
        return
    now, wall = clock.monotonic(), clock.wall()
    kept: dict[str, list[tuple[int, float]]] = {fsm.FENCED: [], fsm.FENCE_FAILED: []}
    for host, kind, at in view.fencings:
        age = max(0.0, wall - at)
        if kind in kept and age < cfg.ha.retry_window:
            kept[kind].append((host, now - age))
    mem = agent.memory
    fenced, failed = (*mem.fenced, *kept[fsm.FENCED]), (*mem.fence_failed, *kept[fsm.FENCE_FAILED])
    agent.memory = mem._replace(fenced=fenced, fence_failed=failed)


def _resume_maintenance_count(agent: Agent, cfg: Config) -> None:
    """A restarted agent (same boot) ends a global maintenance when its predecessor would have, not a TTL later."""
    view = localstate.read_agent_view(cfg.paths.state_dir)
    if view is not None and view.boot_id == localstate.boot_id() and view.global_seq is not None and view.global_left is not None:
        agent.maintenance.resume(view.global_seq, view.written_mono + view.global_left)


class Joiner:
    """Joins the lockspace in a background thread (sanlock's add_lockspace blocks for seconds to minutes)."""

    def __init__(self, leases: SanlockLeases) -> None:
        self.leases = leases
        self.thread: threading.Thread | None = None
        self.error = ""

    def start(self) -> None:
        if self.thread is None or not self.thread.is_alive():
            self.thread = threading.Thread(target=self._join, name="sanlock-join", daemon=True)
            self.thread.start()

    def _join(self) -> None:
        try:
            self.leases.join()
            self.error = ""
        except HectlError as exc:
            self.error = exc.message


class Exporter:
    """Serves the latest OpenMetrics text on 127.0.0.1:<port>/metrics from a background thread."""

    def __init__(self, port: int) -> None:
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        exporter = self
        self.text = metrics.render(None)

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body = exporter.text.encode()
                self.send_response(200 if self.path == "/metrics" else 404)
                self.send_header("Content-Type", "application/openmetrics-text; version=1.0.0; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass  # scrapes are not news

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, name="hectl-metrics", daemon=True)
        self.thread.start()

    def update(self, agent: Agent, cfg: Config, clock: Clock, view: localstate.AgentView) -> None:
        snap = agent.snapshot
        if snap is None:
            self.text = metrics.render(None)
            return
        report = status.report_for(cfg, snap, clock, view, {"type": cfg.storage.type})
        self.text = metrics.render(report)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _write_view(agent: Agent, env: HostEnv, cfg: Config, clock: Clock) -> localstate.AgentView:
    now = clock.monotonic()
    hosts = {}
    for h in agent.hosts:
        seen = agent.tracker.seen(h.host_id)
        if seen is not None:
            hosts[h.host_id] = localstate.HostView(h.live, seen.seq, now - seen.changed_at, h.lease)
    own = env.leases_view.get(cfg.host.id)
    if agent.seq is not None:
        hosts[cfg.host.id] = localstate.HostView(True, agent.seq, 0.0, own or "unknown")
    last = agent.last
    history = 0.0 if agent.observing_since is None else now - agent.observing_since
    timers = fsm.timers(agent.memory, now, cfg.ha, history)
    left = agent.maintenance.remaining(now)
    if agent.global_maintenance and left is not None:
        timers.append(("global maintenance ends (its TTL, on this host's monotonic clock)", max(0.0, left)))
    view = localstate.AgentView(
        cfg.host.id,
        agent.memory.state,
        localstate.boot_id(),
        now,
        clock.wall(),
        hosts,
        reason=last.reason if last else "",
        state_age=now - agent.memory.since,
        score=last.score.total if last else 0,
        score_lines=tuple(last.score.explain()) if last else (),
        timers=tuple(timers),
        global_seq=agent.maintenance.seq,
        global_left=left,
        fencings=_fencings(agent.memory, now, clock.wall()),
        storage=tuple(agent.storage.items()),
    )
    try:
        localstate.write_agent_view(cfg.paths.state_dir, view)
    except OSError as exc:
        log.warning("cannot write the agent view in %s: %s", cfg.paths.state_dir, exc.strerror)
    return view
