"""Host monitors against the real host: gateway probes on loopback, /sys, /proc; containment of failures."""

from __future__ import annotations

import shutil
import socket
from collections.abc import Iterator
from types import SimpleNamespace

import pytest

from hectl.clock import VirtualClock
from hectl.config import Config, HostConfig, MonitorsConfig, PathsConfig, ScoreConfig, StorageConfig, TimeoutsConfig
from hectl.ha import monitors
from hectl.hookspecs import hookimpl
from hectl.plugins import make_plugin_manager


@pytest.fixture
def listener() -> Iterator[int]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(16)
        yield s.getsockname()[1]


def conf(**monitors: object) -> Config:
    """A configuration whose [monitors] section is ``monitors`` (what monitor factories receive)."""
    return Config(
        "test", HostConfig(1, "h1"), StorageConfig(), PathsConfig(), TimeoutsConfig(), ScoreConfig(),
        monitors=MonitorsConfig(**monitors),  # type: ignore[arg-type]
    )  # fmt: skip


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def network(**kw: object) -> monitors.Reading:
    return monitors.NetworkMonitor(conf(probe_timeout=1.0, **kw), VirtualClock()).sample()  # type: ignore[arg-type]


@pytest.mark.integration
def test_tcp_probes(listener: int) -> None:
    assert network(network_test="tcp", gateway="127.0.0.1", tcp_port=listener).value == (5, 5)
    reading = network(network_test="tcp", gateway="127.0.0.1", tcp_port=closed_port(), probes=3)
    assert reading.value == (0, 3) and reading.detail == "tcp 127.0.0.1: 0/3"


@pytest.mark.integration
def test_ping_and_dns_probes() -> None:
    if shutil.which("ping") is None:
        pytest.skip("ping is not installed (iputils-ping)")
    assert network(network_test="ping", gateway="127.0.0.1", probes=2).value == (2, 2)
    assert network(network_test="dns", dns_name="localhost", probes=2).value == (2, 2)


def test_no_network_test_costs_nothing() -> None:
    assert network(network_test="none").value == (5, 5)


def test_bridge() -> None:
    clock = VirtualClock()
    assert monitors.BridgeMonitor(conf(bridge="lo"), clock).sample().value is True  # lo's operstate: unknown
    missing = monitors.BridgeMonitor(conf(bridge="nosuchbr0"), clock).sample()
    assert missing.value is False and "does not exist" in missing.detail
    assert monitors.BridgeMonitor(conf(), clock).sample().value is True  # none configured


def test_memory() -> None:
    value = monitors.MemoryMonitor(conf(), VirtualClock()).sample().value
    assert isinstance(value, int) and value > 0


def test_cpu_is_a_time_weighted_average_over_the_window(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = VirtualClock(monotonic=0.0)
    cpu = monitors.CpuMonitor(conf(cpu_window=100), clock)
    ticks = iter([(0, 0), (100, 100), (200, 110), (1200, 1010)])  # (total, idle) jiffies
    monkeypatch.setattr(cpu, "_times", lambda: next(ticks))
    assert cpu.sample().value is None  # first sample
    clock.advance(10)
    assert cpu.sample().value == 0.0  # all idle for 10 s
    clock.advance(10)
    assert cpu.sample().value == 0.45  # 10 s idle, 10 s at 90 %
    clock.advance(90)
    assert cpu.sample().value == pytest.approx(0.18)  # (10 s x 0.9 + 90 s x 0.1) / 100: the idle first 10 s fell out


def test_real_cpu_sample() -> None:
    clock = VirtualClock()
    cpu = monitors.CpuMonitor(conf(), clock)
    cpu.sample()
    sum(range(200000))
    clock.advance(1)
    value = cpu.sample().value
    assert value is None or 0.0 <= value <= 1.0  # None only if no jiffy passed


def test_cpu_leaves_out_the_engine_process(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = VirtualClock(monotonic=0.0)
    cpu = monitors.CpuMonitor(conf(cpu_window=100), clock)
    ticks = iter([(0, 0), (200, 20), (400, 40)])  # 90 % busy throughout
    engine = iter([5000, 5150, 5330])  # the engine's QEMU: 150, then 180 of the 200 jiffies
    monkeypatch.setattr(cpu, "_times", lambda: next(ticks))
    monkeypatch.setattr(cpu, "_process_jiffies", lambda pid: next(engine) if pid == 42 else None)
    cpu.exclude_pids = lambda: [42]
    assert cpu.sample().value is None  # baseline: the engine's past CPU time is not subtracted
    clock.advance(10)
    assert cpu.sample().value == pytest.approx(0.15)  # (180 - 150) / 200
    clock.advance(10)
    assert cpu.sample().value == pytest.approx(0.075)  # (0.15 + 0.0) / 2


def test_cpu_excludes_a_real_busy_process() -> None:
    import subprocess
    import sys
    import time

    busy = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        clock = VirtualClock()
        plain = monitors.CpuMonitor(conf(), clock)
        leaving_out = monitors.CpuMonitor(conf(), clock)
        leaving_out.exclude_pids = lambda: [busy.pid]
        for m in (plain, leaving_out):
            m.sample()
        time.sleep(1.5)
        clock.advance(1.5)
        with_busy, without = plain.sample().value, leaving_out.sample().value
        assert with_busy is not None and without is not None
        assert with_busy - without >= 0.3  # one of two CPUs spinning, ~0.5 of the host
    finally:
        busy.kill()
        busy.wait()


def test_a_failing_monitor_is_contained() -> None:
    problems: list[str] = []
    broken = SimpleNamespace(sample=lambda: 1 / 0)
    readings = monitors.sample_all({"memory": monitors.MemoryMonitor(conf(), VirtualClock()), "x": broken}, problems.append)
    assert readings["x"].value is None and "ZeroDivisionError" in problems[0]
    assert isinstance(readings["memory"].value, int)


def test_host_health_from_readings() -> None:
    readings = {
        "network": monitors.Reading("network", (4, 5)),
        "bridge": monitors.Reading("bridge", False),
        "memory": monitors.Reading("memory", 2048),
        "cpu": monitors.Reading("cpu", 0.5),
    }
    health = monitors.host_health(readings, "br0")
    assert (health.network_ok, health.network_probes, health.bridge_up, health.mem_free_mib, health.cpu_load) == (
        4,
        5,
        False,
        2048,
        0.5,
    )
    unknown = monitors.host_health({}, "")
    assert (unknown.network_ok, unknown.bridge_up, unknown.mem_free_mib, unknown.cpu_load) == (None, None, None, None)


def test_monitors_come_from_the_plugin_hook_and_a_broken_plugin_is_skipped() -> None:
    def explode(register):  # type: ignore[no-untyped-def]
        raise RuntimeError("broken plugin")

    plugins = make_plugin_manager(
        load_entrypoints=False, extra=[("bad", SimpleNamespace(hectl_register_monitors=hookimpl(explode)))], environ={}
    )
    built = plugins.monitors(conf(), VirtualClock())
    assert set(built) == {"network", "bridge", "memory", "cpu", "engine"}


def test_engine_monitor_probes_the_health_page(listener: int) -> None:
    import http.server
    import threading

    from hectl.config import EngineConfig

    class Health(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = b"DB Up!Welcome to Health Status!"
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Health)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:

        def sample(url: str) -> monitors.Reading:
            cfg = conf()._replace(engine=EngineConfig(health_url=url, health_timeout=2))
            return monitors.EngineHealthMonitor(cfg, VirtualClock()).sample()

        assert sample(f"http://127.0.0.1:{server.server_port}/health") == monitors.Reading("engine", True, "DB up")
        down = sample(f"http://127.0.0.1:{closed_port()}/health")
        assert down.value is False and "refused" in down.detail
        assert monitors.EngineHealthMonitor(conf(), VirtualClock()).sample().value is None  # no URL: not checked
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize("bad", ["-f", "a b", "x;y"])
def test_gateway_cannot_smuggle_options(bad: str, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from hectl import config
    from hectl.errors import ConfigError

    path = tmp_path / "c.conf"
    path.write_text(f"[host]\nid = 1\n[monitors]\nnetwork_test = ping\ngateway = {bad}\n")
    with pytest.raises(ConfigError, match="gateway"):
        config.load(str(path), environ={})


def test_a_plugin_can_bring_its_own_engine_monitor() -> None:
    class Probe:
        def __init__(self, cfg: Config, clock: object) -> None:
            self.url = cfg.engine.url()

        def sample(self) -> monitors.Reading:
            return monitors.Reading("engine", False, "custom probe")

    def register_engine(register):  # type: ignore[no-untyped-def]
        register("engine", Probe)

    plugins = make_plugin_manager(
        load_entrypoints=False, extra=[("probe", SimpleNamespace(hectl_register_monitors=hookimpl(register_engine)))], environ={}
    )
    built = plugins.monitors(conf(), VirtualClock())
    assert isinstance(built["engine"], Probe) and built["engine"].sample().detail == "custom probe"
