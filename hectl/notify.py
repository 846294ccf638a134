"""E-mail notifications of state transitions and maintenance changes (a built-in plugin).

Configured by ``[notify]``; registered by ``hectl ha run`` and
``hectl set-maintenance`` when ``smtp_server`` is set. Mail is sent from a
background thread with a timeout: a slow or dead mail server never delays the
agent, and failures are only logged. With ``starttls`` the connection is
upgraded (the server's certificate verified) before anything else is sent,
with ``implicit_tls`` it is TLS from the start;
with ``username`` hectl logs in with the password read from ``password_file``
at each delivery, which appears in no argument, environment or log line.
"""

from __future__ import annotations

import logging
import re
import smtplib
import ssl
import threading
from email.message import EmailMessage

from hectl.hookspecs import hookimpl
from hectl.text import escape

TYPE_CHECKING = False  # typing.TYPE_CHECKING would import typing (see hectl.frozen)
if TYPE_CHECKING:
    from hectl.config import Config, NotifyConfig
    from hectl.plugins import Plugins

log = logging.getLogger("hectl.notify")


class SmtpNotifier:
    """Sends one mail per matching event."""

    def __init__(self, cfg: NotifyConfig, hostname: str) -> None:
        self.cfg = cfg
        self.hostname = hostname
        self.pattern = re.compile(cfg.events, re.IGNORECASE)
        self.threads: list[threading.Thread] = []

    @hookimpl
    def hectl_on_state_transition(self, host_id: int, old_state: str, new_state: str, reason: str) -> None:
        detail = f"{old_state}-{new_state}"
        if self.pattern.search(detail):
            self._send(f"hectl: host {host_id} ({self.hostname}) {old_state} -> {new_state}", detail, reason)

    @hookimpl
    def hectl_on_maintenance_change(self, scope: str, host_id: int | None, new_mode: str, reason: str, set_by: str) -> None:
        if self.pattern.search(f"maintenance-{scope}-{new_mode}"):
            where = "cluster" if scope == "global" else f"host {host_id}"
            summary = f"{scope} maintenance of the {where} is now {new_mode}, set by {set_by}."
            self._send(f"hectl: {scope} maintenance {new_mode} ({self.hostname})", summary, reason)

    def _send(self, subject: str, *paragraphs: str) -> None:
        """Mail ``subject`` with ``paragraphs`` as the body, each escaped to one line (no header injection)."""
        msg = EmailMessage()
        msg["Subject"], msg["From"], msg["To"] = escape(subject), self.cfg.source, ", ".join(self.cfg.destinations)
        msg.set_content("\n\n".join(map(escape, paragraphs)) + "\n")
        thread = threading.Thread(target=self._deliver, args=(msg,), name="hectl-mail", daemon=True)
        thread.start()
        self.threads = [t for t in self.threads if t.is_alive()] + [thread]

    def _deliver(self, msg: EmailMessage) -> None:
        cfg = self.cfg
        password = ""
        try:
            tls = ssl.create_default_context(cafile=cfg.smtp_ca or None) if cfg.starttls or cfg.implicit_tls else None
            smtp = (
                smtplib.SMTP_SSL(cfg.smtp_server, cfg.smtp_port, timeout=cfg.timeout, context=tls)
                if cfg.implicit_tls
                else smtplib.SMTP(cfg.smtp_server, cfg.smtp_port, timeout=cfg.timeout)
            )
            with smtp:
                if cfg.starttls:
                    smtp.starttls(context=tls)
                if cfg.username:
                    password = _read_password(cfg.password_file)
                    smtp.login(cfg.username, password)
                smtp.send_message(msg)
        except (OSError, ValueError, smtplib.SMTPException) as exc:
            reason = escape(str(exc).replace(password, "***") if password else str(exc))  # the server wrote part of it
            log.warning("notification '%s' not sent: %s: %s", msg["Subject"], type(exc).__name__, reason)

    def wait(self, timeout: float) -> None:
        """Let pending mail go out (used at exit and in tests)."""
        for t in self.threads:
            t.join(timeout)


def _read_password(path: str) -> str:
    """The first line of ``path`` (checked for its owner and mode when the configuration was loaded)."""
    with open(path, encoding="utf-8") as f:
        password = f.readline().rstrip("\r\n")
    if not password:
        raise ValueError(f"{path} holds no password")
    if not password.isascii():
        raise ValueError(f"the password in {path} is not ASCII (SMTP login here takes ASCII only)")
    return password


def register(plugins: Plugins, cfg: Config) -> SmtpNotifier | None:
    """Add the mail notifier to ``plugins`` when ``[notify] smtp_server`` is set."""
    if not cfg.notify.smtp_server:
        return None
    notifier = SmtpNotifier(cfg.notify, cfg.host.hostname)
    plugins.add("smtp", notifier)
    return notifier
