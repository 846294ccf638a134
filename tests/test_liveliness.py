"""hectl check-liveliness (and hectl.vm.liveliness) against real HTTP and HTTPS servers on 127.0.0.1."""

from __future__ import annotations

import contextlib
import json
import os
import re
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from conftest import REPO, run_hectl, write_config

from hectl.errors import ConfigError
from hectl.vm import liveliness

pytestmark = pytest.mark.integration

HEALTH_PAGE = b"DB Up!Welcome to Health Status!"
SLOW = 0.6  # /slow answers after this long
PROXY_VARS = ("http_proxy", "https_proxy", "all_proxy", "no_proxy")


class Handler(BaseHTTPRequestHandler):
    """The engine's health page, healthy or not depending on the path."""

    server: EngineServer

    def do_GET(self) -> None:
        if self.path == "/hang":  # headers never come
            self.server.released.wait()
            return
        if self.path == "/drip":  # a valid answer, one byte every 0.1 s
            self.send_response(200)
            self.send_header("Content-Length", "1000")
            self.end_headers()
            with contextlib.suppress(OSError):
                while not self.server.released.wait(0.1):
                    self.wfile.write(b"D")
                    self.wfile.flush()
            return
        if self.path == "/slow":
            time.sleep(SLOW)
        code, body = {
            "/maintenance": (200, b"<html>The engine is starting | please wait</html>"),
            "/error": (500, b"DB Down!Welcome to Health Status!"),
            "/huge": (200, b" " * 64 * 1024 + HEALTH_PAGE),  # healthy, but only past the part that is read
        }.get(self.path, (200, HEALTH_PAGE))
        self.send_response(code)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


class EngineServer(ThreadingHTTPServer):
    """A real HTTP server on 127.0.0.1, HTTPS when given a TLS context."""

    daemon_threads = True

    def __init__(self, tls: ssl.SSLContext | None = None) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.tls = tls
        self.released = threading.Event()
        self.thread = threading.Thread(target=self.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def url(self, path: str = "/health") -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.server_address[1]}{path}"

    def finish_request(self, request: socket.socket, client_address: object) -> None:  # type: ignore[override]
        with contextlib.suppress(OSError):  # refused handshakes are part of the tests
            if self.tls:
                request = self.tls.wrap_socket(request, server_side=True)
            super().finish_request(request, client_address)  # type: ignore[arg-type]

    def handle_error(self, request: object, client_address: object) -> None:
        pass  # clients that give up (timeouts) are part of the tests

    def stop(self) -> None:
        self.released.set()
        self.shutdown()
        self.server_close()


@contextlib.contextmanager
def silent_server() -> Iterator[int]:
    """Accepts connections and never says a word (not even a TLS handshake); yields the port."""
    listener = socket.create_server(("127.0.0.1", 0))
    held: list[socket.socket] = []

    def accept() -> None:
        with contextlib.suppress(OSError):
            while True:
                held.append(listener.accept()[0])

    threading.Thread(target=accept, daemon=True).start()
    try:
        yield listener.getsockname()[1]
    finally:
        listener.close()
        for conn in held:
            conn.close()


@pytest.fixture
def engine() -> Iterator[EngineServer]:
    server = EngineServer()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A CA and a server certificate for 127.0.0.1 it signed, made by the openssl CLI."""
    d = tmp_path_factory.mktemp("certs")
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    signing = ["-set_serial", "2", "-days", "2", "-extfile", "ext.cnf", "-out", "server.pem"]
    (d / "ext.cnf").write_text("subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n")
    for argv in (
        ["openssl", "req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.pem", "-days", "2", "-subj", "/CN=hectl test CA"],
        ["openssl", "req", "-new", *ec, "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=127.0.0.1"],
        ["openssl", "x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", *signing],
    ):
        subprocess.run(argv, cwd=d, check=True, capture_output=True, timeout=60)
    return d


@pytest.fixture
def tls_engine(certs: Path) -> Iterator[EngineServer]:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(certs / "server.pem", certs / "server.key")
    server = EngineServer(context)
    yield server
    server.stop()


def environment(tmp_path: Path, engine_section: str = "") -> dict[str, str]:
    """A child environment: a configuration with ``engine_section``, no proxies, the system's CA store."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("HECTL_") and k.lower() not in PROXY_VARS and k not in ("SSL_CERT_FILE", "SSL_CERT_DIR")
    }
    config = write_config(tmp_path / "hectl.conf", tmp_path / "domain", tmp_path / "state", extra=engine_section)
    env["HECTL_CONFIG"] = str(config)
    return env


def configured(tmp_path: Path, url: str, *more: str) -> dict[str, str]:
    return environment(tmp_path, "\n".join(["[engine]", f"health_url = {url}", "health_timeout = 4", *more, ""]))


def probe(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return run_hectl(["check-liveliness", *args], env=env)


def probe_json(args: list[str], env: dict[str, str]) -> tuple[int, dict[str, object]]:
    res = probe([*args, "--json"], env)
    assert res.stderr == ""
    return res.returncode, json.loads(res.stdout)


def documented_fields() -> set[str]:
    doc = (REPO / "docs" / "liveliness.md").read_text()
    body = doc.split("## JSON\n", 1)[1].split("\n## ", 1)[0]
    return set(re.findall(r"^\| `(\w+)` \|", body, re.M))


# --- the command: exit codes and output ---------------------------------------------------------


def test_healthy_engine_exit_0_one_line(engine: EngineServer, tmp_path: Path) -> None:
    res = probe([], configured(tmp_path, engine.url()))  # URL and timeout from [engine]
    assert (res.returncode, res.stderr) == (0, "")
    assert res.stdout.count("\n") == 1 and res.stdout.startswith("engine healthy: DB up (HTTP 200 in ")
    assert engine.url() in res.stdout


def test_json_fields_are_exactly_the_documented_ones(engine: EngineServer, tmp_path: Path) -> None:
    code, data = probe_json([], configured(tmp_path, engine.url()))
    assert code == 0
    assert list(data) == ["schema", "schema_version", "url", "healthy", "status", "detail", "elapsed"]
    assert set(data) == documented_fields()
    assert data["url"] == engine.url() and data["healthy"] is True and data["status"] == 200 and data["detail"] == "DB up"
    assert isinstance(data["elapsed"], float) and 0 <= data["elapsed"] < 4


@pytest.mark.parametrize(
    ("path", "status", "detail"),
    [
        ("/maintenance", 200, 'HTTP 200 without "DB Up": <html>The engine is starting | please wait</html>'),
        ("/error", 500, "HTTP 500: DB Down!Welcome to Health Status!"),
    ],
)
def test_unhealthy_answers_exit_1(path: str, status: int, detail: str, engine: EngineServer, tmp_path: Path) -> None:
    code, data = probe_json(["--url", engine.url(path)], environment(tmp_path))
    assert code == 1
    assert (data["healthy"], data["status"], data["detail"]) == (False, status, detail)


def test_connection_refused_exit_1(tmp_path: Path) -> None:
    with socket.socket() as reserved:  # bound, not listening: connecting is refused, and no one else gets the port
        reserved.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{reserved.getsockname()[1]}/health"
        code, data = probe_json(["--url", url], environment(tmp_path))
    assert code == 1 and data["healthy"] is False and data["status"] is None
    assert "refused" in str(data["detail"])
    text = probe(["--url", url], environment(tmp_path))
    assert text.returncode == 1 and text.stdout.startswith("engine NOT healthy: connection refused") and text.stderr == ""


def test_missing_url_configuration_exit_3(tmp_path: Path) -> None:
    res = probe([], environment(tmp_path))  # a valid configuration without [engine]
    assert res.returncode == 3 and res.stdout == ""
    assert "[engine] fqdn or health_url" in res.stderr and "--url" in res.stderr and "Traceback" not in res.stderr


@pytest.mark.parametrize("url", ["ftp://127.0.0.1/health", "http:///health", "http://127.0.0.1:99999/"])
def test_invalid_url_exit_3(url: str, tmp_path: Path) -> None:
    res = probe(["--url", url], environment(tmp_path))
    assert res.returncode == 3 and "invalid engine health URL" in res.stderr and res.stdout == ""


def test_url_flag_needs_no_configuration_file_but_a_broken_one_is_an_error(engine: EngineServer, tmp_path: Path) -> None:
    env = environment(tmp_path)
    env["HECTL_CONFIG"] = str(tmp_path / "absent.conf")
    assert probe(["--url", engine.url()], env).returncode == 0
    Path(env["HECTL_CONFIG"]).write_text("[host]\nid = 1\n[engine]\nhealth_timeout = soon\n")
    res = probe(["--url", engine.url()], env)
    assert res.returncode == 3 and "health_timeout" in res.stderr


def test_quiet_prints_nothing_when_healthy_but_reports_trouble(engine: EngineServer, tmp_path: Path) -> None:
    env = environment(tmp_path)
    assert probe(["--url", engine.url()], env).stdout != ""
    healthy = run_hectl(["-q", "check-liveliness", "--url", engine.url()], env=env)
    assert (healthy.returncode, healthy.stdout, healthy.stderr) == (0, "", "")
    sick = run_hectl(["-q", "check-liveliness", "--url", engine.url("/error")], env=env)
    assert sick.returncode == 1 and sick.stdout.startswith("engine NOT healthy: HTTP 500")


def test_warn_without_nagios_is_a_usage_error(tmp_path: Path) -> None:
    res = probe(["--warn", "1"], environment(tmp_path))
    assert res.returncode == 2 and res.stderr.count("\n") == 1 and "--warn" in res.stderr


# --- TLS and proxies -----------------------------------------------------------------------------


def test_https_with_the_ca_is_healthy(tls_engine: EngineServer, certs: Path, tmp_path: Path) -> None:
    code, data = probe_json(["--url", tls_engine.url(), "--ca", str(certs / "ca.pem")], environment(tmp_path))
    assert (code, data["healthy"], data["status"]) == (0, True, 200)
    configured_ca = configured(tmp_path, tls_engine.url(), f"health_ca = {certs / 'ca.pem'}")
    assert probe([], configured_ca).returncode == 0  # [engine] health_ca is used too


def test_https_without_the_ca_fails_verification_against_the_system_store(tls_engine: EngineServer, tmp_path: Path) -> None:
    code, data = probe_json(["--url", tls_engine.url()], environment(tmp_path))
    assert code == 1 and data["healthy"] is False and data["status"] is None
    assert str(data["detail"]).startswith("TLS: certificate verify failed")


def test_https_with_a_bad_ca_file_exit_3(tls_engine: EngineServer, tmp_path: Path) -> None:
    missing = tmp_path / "no-such-ca.pem"
    res = probe(["--url", tls_engine.url(), "--ca", str(missing)], environment(tmp_path))
    assert res.returncode == 3 and str(missing) in res.stderr and res.stdout == ""
    not_pem = tmp_path / "not-a-ca.pem"
    not_pem.write_text("hello\n")
    assert probe(["--url", tls_engine.url(), "--ca", str(not_pem)], environment(tmp_path)).returncode == 3


def test_proxies_in_the_environment_are_ignored(engine: EngineServer, tmp_path: Path) -> None:
    env = environment(tmp_path)
    for var in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        env[var] = "http://127.0.0.1:9"  # the discard port: nothing listens there
    code, data = probe_json(["--url", engine.url()], env)
    assert (code, data["healthy"]) == (0, True)


# --- the deadline ---------------------------------------------------------------------------------


@pytest.mark.parametrize("scheme", ["http", "https"])
def test_a_server_that_never_answers_ends_at_the_timeout(scheme: str) -> None:
    with silent_server() as port:
        began = time.monotonic()
        result = liveliness.check(f"{scheme}://127.0.0.1:{port}/health", 1.0)
        took = time.monotonic() - began
    assert not result.healthy and result.status is None and result.detail == "timed out after 1s"
    assert took < 2.0


def test_a_dripping_answer_cannot_outlast_the_timeout(engine: EngineServer) -> None:
    began = time.monotonic()
    result = liveliness.check(engine.url("/drip"), 1.0)
    assert time.monotonic() - began < 2.0  # each byte came well within any per-read timeout
    assert not result.healthy and result.status == 200 and result.detail == "timed out after 1s"


def test_only_the_first_64_kib_of_the_body_are_read(engine: EngineServer) -> None:
    result = liveliness.check(engine.url("/huge"), 2.0)
    assert not result.healthy and result.status == 200 and result.detail.startswith('HTTP 200 without "DB Up"')


def test_invalid_url_raises_rather_than_reporting_unhealthy() -> None:
    with pytest.raises(ConfigError, match="invalid engine health URL"):
        liveliness.check("https://", 1.0)


# --- --nagios --------------------------------------------------------------------------------------


def nagios(args: list[str], env: dict[str, str]) -> tuple[int, str]:
    res = probe(["--nagios", *args], env)
    assert res.stderr == "" and res.stdout.count("\n") == 1, res
    return res.returncode, res.stdout


def test_nagios_ok_with_perfdata(engine: EngineServer, tmp_path: Path) -> None:
    code, line = nagios([], configured(tmp_path, engine.url()))
    assert code == 0 and line.startswith("LIVELINESS OK - engine healthy: DB up (HTTP 200 in ")
    assert re.search(r" \| time=\d+\.\d{3}s;2;;0;4\n\Z", line), line  # warn: half of [engine] health_timeout


def test_nagios_warning_when_healthy_but_slow(engine: EngineServer, tmp_path: Path) -> None:
    code, line = nagios(["--warn", "0.2"], configured(tmp_path, engine.url("/slow")))
    assert code == 1 and line.startswith("LIVELINESS WARNING - engine healthy but slow: DB up")
    assert re.search(r" \| time=\d+\.\d{3}s;0.2;;0;4\n\Z", line), line


@pytest.mark.parametrize("path", ["/error", "/maintenance"])
def test_nagios_critical_when_not_healthy(path: str, engine: EngineServer, tmp_path: Path) -> None:
    code, line = nagios([], configured(tmp_path, engine.url(path)))
    assert code == 2 and line.startswith("LIVELINESS CRITICAL - engine not healthy: HTTP ")
    assert line.count("|") == 1  # the body snippet cannot break the perfdata


def test_nagios_critical_when_unreachable(tmp_path: Path) -> None:
    with silent_server() as port:
        code, line = nagios(["--timeout", "0.5"], configured(tmp_path, f"http://127.0.0.1:{port}/"))
    assert code == 2 and line.startswith("LIVELINESS CRITICAL - engine not healthy: timed out after 0.5s")


@pytest.mark.parametrize("problem", ["missing file", "broken file", "no url", "bad ca"])
def test_nagios_unknown_on_configuration_problems(problem: str, tmp_path: Path) -> None:
    env = configured(tmp_path, "https://127.0.0.1:1/health")
    args: list[str] = []
    if problem == "missing file":
        env["HECTL_CONFIG"] = str(tmp_path / "absent.conf")
    elif problem == "broken file":
        Path(env["HECTL_CONFIG"]).write_text("[host\nid = 1\n")
    elif problem == "no url":
        env = environment(tmp_path)
    else:
        args = ["--ca", str(tmp_path / "absent.pem")]
    code, line = nagios(args, env)
    assert code == 3 and line.startswith("LIVELINESS UNKNOWN - configuration problem: ")


def test_nagios_json_is_the_check_record(engine: EngineServer, tmp_path: Path) -> None:
    res = probe(["--nagios", "--json", "--url", engine.url("/error")], environment(tmp_path))
    data = json.loads(res.stdout)
    assert res.returncode == 2 and data["status"] == "CRITICAL" and data["code"] == 2
    assert data["line"].startswith("LIVELINESS CRITICAL")
