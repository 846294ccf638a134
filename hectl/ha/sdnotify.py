"""systemd's notification protocol (sd_notify(3)) for ``hectl ha run`` under ``Type=notify``.

A message is one datagram of ``KEY=VALUE`` lines to the AF_UNIX socket named by
``$NOTIFY_SOCKET`` (a path, or an abstract socket when it starts with '@').
These few lines replace python3-systemd's ``systemd.daemon.notify``: the
protocol is stable and documented for reimplementation, and the library would
be one more compiled binding to link into the venv (PyPI's systemd-python
builds against libsystemd-dev) for a single ``sendto``.

The watchdog is on when ``$WATCHDOG_USEC`` is set and ``$WATCHDOG_PID``, if
set, names this process (sd_watchdog_enabled(3)). Values are escaped like log
lines (STATUS= can carry text from shared storage). Sending never raises and
never blocks for long: a manager that is gone or slow costs a debug line.
"""

from __future__ import annotations

import logging
import os
import socket

from hectl.text import escape

TYPE_CHECKING = False  # typing.TYPE_CHECKING would import typing (see hectl.frozen)
if TYPE_CHECKING:
    from collections.abc import Mapping

log = logging.getLogger("hectl.ha")
SEND_TIMEOUT = 1.0  # seconds a full socket queue may delay the loop


class Notifier:
    """Messages to the service manager; every method is a no-op when not started by one."""

    def __init__(self, environ: Mapping[str, str], pid: int | None = None) -> None:
        name = environ.get("NOTIFY_SOCKET", "")
        self.address = "\0" + name[1:] if name.startswith("@") else name if name.startswith("/") else ""
        self.watchdog = watchdog_interval(environ, os.getpid() if pid is None else pid) if self.address else None
        self.sock: socket.socket | None = None
        if self.address:
            self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
            self.sock.settimeout(SEND_TIMEOUT)

    def send(self, **fields: str) -> None:
        """One message of ``KEY=VALUE`` lines; values are escaped (one line each, no terminal controls)."""
        if self.sock is None:
            return
        text = "".join(f"{key}={escape(value)}\n" for key, value in fields.items())
        try:
            self.sock.sendto(text.encode(), self.address)
        except OSError as exc:
            log.debug("sd_notify to %s failed: %s", self.address.replace("\0", "@"), exc)

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None


def watchdog_interval(environ: Mapping[str, str], pid: int) -> float | None:
    """The watchdog timeout in seconds, or None when no watchdog is asked of process ``pid``."""
    try:
        usec = int(environ.get("WATCHDOG_USEC", ""))
        owner = int(environ.get("WATCHDOG_PID") or pid)
    except ValueError:
        return None
    return usec / 1e6 if usec > 0 and owner == pid else None
