"""Probe the engine's health page: ``hectl check-liveliness`` and the HA agent's engine-health monitor.

A healthy engine answers ``GET /ovirt-engine/services/health`` with HTTP 200 and "DB Up" in the
body. Every network, TLS or HTTP failure is an unhealthy result, never an exception; only a bad
URL or CA file (configuration) raises. Proxies from the environment are never used.

The whole probe ends within ``timeout``, name resolution included: socket timeouts count per
call, so each blocking step gets only what is left of one deadline (a server dripping its answer
a byte at a time cannot hold the probe longer), and the name is resolved in a thread that is
abandoned at the deadline (``getaddrinfo`` has no timeout of its own).
"""

from __future__ import annotations

import functools
import http.client
import io
import socket
import ssl
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

from hectl import __version__
from hectl.errors import ConfigError
from hectl.frozen import Frozen
from hectl.status import CHECK_NAMES, CRITICAL, OK, UNKNOWN, WARNING
from hectl.text import nagios_line

TYPE_CHECKING = False  # typing.TYPE_CHECKING would import typing (see hectl.frozen)
if TYPE_CHECKING:
    from typing import Any

MAX_BODY = 64 * 1024  # read at most this much of the answer
HEALTHY_MARK = b"DB Up"


class Liveliness(Frozen):
    """One probe's result; ``status`` is the HTTP status (None without an answer), ``elapsed`` in seconds."""

    url: str
    healthy: bool
    status: int | None
    detail: str  # one line, e.g. "DB up", "HTTP 500", "connection refused", "timed out after 5s"
    elapsed: float


def check(url: str, timeout: float, ca_file: str = "") -> Liveliness:
    """GET ``url`` within ``timeout`` seconds; healthy iff HTTP 200 with "DB Up" in the body.

    https verifies against ``ca_file`` when given, else against the system's CA store.
    Raises ``ConfigError`` for an invalid URL or an unusable CA file.
    """
    host = _host(url)
    context = _tls_context(ca_file) if ca_file or url.startswith("https:") else None
    deadline = _Deadline(timeout)
    opener = urllib.request.build_opener(
        urllib.request.ProxyHandler({}),  # the engine is probed directly, whatever http_proxy says
        _HTTPHandler(deadline),
        _HTTPSHandler(deadline, context),
    )
    request = urllib.request.Request(url, headers={"User-Agent": f"hectl/{__version__}"})
    status: int | None = None
    try:
        try:
            response = opener.open(request, timeout=timeout)
        except urllib.error.HTTPError as exc:  # an answer, just not a 2xx one
            response = exc
        with response:
            status = response.status
            body = response.read(MAX_BODY)
    except (OSError, http.client.HTTPException) as exc:
        return Liveliness(url, False, status, _describe(exc, host, timeout), deadline.elapsed())
    if status == 200 and HEALTHY_MARK in body:
        return Liveliness(url, True, status, "DB up", deadline.elapsed())
    detail = f"HTTP {status}" if status != 200 else 'HTTP 200 without "DB Up"'
    snippet = _snippet(body)
    return Liveliness(url, False, status, f"{detail}: {snippet}" if snippet else detail, deadline.elapsed())


def nagios(result: Liveliness, timeout: float, warn: float) -> tuple[int, str]:
    """Nagios code and line: OK, WARNING when healthy but slower than ``warn``, CRITICAL when not healthy."""
    took = f"in {result.elapsed:.3f} s"
    if not result.healthy:
        code, text = CRITICAL, f"engine not healthy: {result.detail} ({result.url}, {took})"
    elif result.elapsed > warn:
        code, text = WARNING, f"engine healthy but slow: {result.detail} (HTTP {result.status} {took}, warning above {warn:g} s)"
    else:
        code, text = OK, f"engine healthy: {result.detail} (HTTP {result.status} {took})"
    perf = f"time={result.elapsed:.3f}s;{warn:g};;0;{timeout:g}"
    return code, nagios_line(f"LIVELINESS {CHECK_NAMES[code]}", [text], perf=perf)


def nagios_unknown(message: str) -> tuple[int, str]:
    """The UNKNOWN line for a configuration problem."""
    return UNKNOWN, nagios_line(f"LIVELINESS {CHECK_NAMES[UNKNOWN]}", [f"configuration problem: {message}"])


def _host(url: str) -> str:
    """The URL's host; ``ConfigError`` unless it is a usable http(s) URL."""
    try:
        parts = urllib.parse.urlsplit(url)
        parts.port  # noqa: B018 (raises ValueError for a bad port)
    except ValueError:
        parts = None
    if (
        parts is None
        or parts.scheme not in ("http", "https")
        or not parts.hostname
        or any(c.isspace() or ord(c) < 32 for c in url)
    ):
        raise ConfigError(f"invalid engine health URL {url!r}: must be an http:// or https:// URL with a host")
    return parts.hostname


def _tls_context(ca_file: str) -> ssl.SSLContext:
    try:
        return ssl.create_default_context(cafile=ca_file or None)
    except OSError as exc:  # ssl.SSLError included
        raise ConfigError(f"cannot use CA file {ca_file}: {exc.strerror or exc}") from None


def _describe(exc: BaseException, host: str, timeout: float) -> str:
    """One human line for why there was no usable answer."""
    if isinstance(exc, urllib.error.URLError) and isinstance(exc.reason, BaseException):
        exc = exc.reason
    if isinstance(exc, TimeoutError):
        text = f"timed out after {timeout:g}s"
    elif isinstance(exc, ssl.SSLCertVerificationError):
        text = f"TLS: certificate verify failed: {exc.verify_message}"
    elif isinstance(exc, ssl.SSLError):
        text = f"TLS: {(exc.reason or str(exc)).lower().replace('_', ' ')}"
    elif isinstance(exc, socket.gaierror):
        text = f"cannot resolve {host}: {exc.strerror}"
    elif isinstance(exc, OSError):
        reason = exc.strerror or str(exc) or type(exc).__name__
        text = reason[:1].lower() + reason[1:]
    else:
        text = f"bad HTTP answer ({type(exc).__name__}: {exc})"
    return " ".join(text.split())


def _snippet(body: bytes) -> str:
    return " ".join(body[:400].decode("utf-8", "replace").split())[:80]


class _Deadline:
    """One deadline for the whole probe; ``left`` raises ``TimeoutError`` once it has passed."""

    def __init__(self, seconds: float) -> None:
        self.start = time.monotonic()
        self.end = self.start + seconds

    def elapsed(self) -> float:
        return time.monotonic() - self.start

    def left(self) -> float:
        left = self.end - time.monotonic()
        if left <= 0:
            raise TimeoutError("deadline passed")
        return left

    def connect(self, address: tuple[str, int], timeout: object = None, source_address: object = None) -> socket.socket:
        """``socket.create_connection`` within the deadline (``http.client`` opens its socket through this)."""
        host, port = address
        error: OSError = OSError(f"no address for {host}")
        for family, kind, proto, _name, sockaddr in self._resolve(host, port):
            sock = socket.socket(family, kind, proto)
            try:
                sock.settimeout(self.left())  # also bounds the TLS handshake, which CPython times as a whole
                sock.connect(sockaddr)
            except OSError as exc:
                sock.close()
                error = exc
                continue
            return sock
        raise error

    def _resolve(self, host: str, port: int) -> list[Any]:
        answer: list[Any] = []

        def lookup() -> None:
            try:
                answer.append(socket.getaddrinfo(host, port, type=socket.SOCK_STREAM))
            except OSError as exc:
                answer.append(exc)

        thread = threading.Thread(target=lookup, name=f"hectl-resolve-{host}", daemon=True)
        thread.start()
        thread.join(self.left())
        if not answer:
            raise TimeoutError(f"resolving {host}")
        if isinstance(answer[0], OSError):
            raise answer[0]
        return list(answer[0])


class _DeadlineReader(io.RawIOBase):
    """Reads a socket; each read may block only for what is left of the deadline."""

    def __init__(self, sock: socket.socket, deadline: _Deadline) -> None:
        super().__init__()
        self._sock = sock
        self._raw = sock.makefile("rb", buffering=0)  # keeps the socket open while the answer is read
        self._deadline = deadline

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int | None:
        self._sock.settimeout(self._deadline.left())
        return self._raw.readinto(buffer)

    def close(self) -> None:
        self._raw.close()
        super().close()


class _DeadlineSocket:
    """The connected socket as ``http.client`` sees it; ``HTTPResponse`` reads ``makefile()`` through the deadline."""

    def __init__(self, sock: socket.socket, deadline: _Deadline) -> None:
        self._sock = sock
        self._deadline = deadline

    def __getattr__(self, name: str) -> Any:  # sendall, close, ...: the socket's own
        return getattr(self._sock, name)

    def makefile(self, mode: str) -> io.BufferedReader:
        return io.BufferedReader(_DeadlineReader(self._sock, self._deadline))


class _HTTPConnection(http.client.HTTPConnection):
    """An ``HTTPConnection`` whose connecting and reading keep to the deadline."""

    def __init__(self, host: str, *, deadline: _Deadline, **kwargs: Any) -> None:
        super().__init__(host, **kwargs)
        self._deadline = deadline
        self._create_connection = deadline.connect

    def connect(self) -> None:
        super().connect()
        self.sock = _DeadlineSocket(self.sock, self._deadline)


class _HTTPSConnection(_HTTPConnection, http.client.HTTPSConnection):
    pass


class _HTTPHandler(urllib.request.HTTPHandler):
    def __init__(self, deadline: _Deadline) -> None:
        super().__init__()
        self._deadline = deadline

    def http_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
        return self.do_open(functools.partial(_HTTPConnection, deadline=self._deadline), req)


class _HTTPSHandler(urllib.request.HTTPSHandler):
    def __init__(self, deadline: _Deadline, context: ssl.SSLContext | None) -> None:
        super().__init__(context=context)
        self._deadline = deadline
        self._tls = context

    def https_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
        return self.do_open(functools.partial(_HTTPSConnection, deadline=self._deadline), req, context=self._tls)
