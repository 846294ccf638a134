"""Mail notifications against a real SMTP server (aiosmtpd on loopback)."""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Iterator
from email import message_from_bytes
from email.message import Message

import pytest
from aiosmtpd.controller import Controller
from conftest import Domain, run_hectl

from hectl.config import NotifyConfig
from hectl.notify import SmtpNotifier

pytestmark = pytest.mark.integration


class Inbox:
    def __init__(self) -> None:
        self.messages: list[Message] = []

    async def handle_DATA(self, server, session, envelope):  # type: ignore[no-untyped-def]
        self.messages.append(message_from_bytes(envelope.content))
        return "250 OK"

    def wait(self, count: int, timeout: float = 10) -> list[Message]:
        deadline = time.monotonic() + timeout
        while len(self.messages) < count and time.monotonic() < deadline:
            time.sleep(0.05)
        return self.messages


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def smtp() -> Iterator[tuple[Inbox, int]]:
    inbox, port = Inbox(), free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield inbox, port
    finally:
        controller.stop()


def test_state_transitions_are_mailed(smtp: tuple[Inbox, int]) -> None:
    inbox, port = smtp
    cfg = NotifyConfig(smtp_server="127.0.0.1", smtp_port=port, destinations=("ops@example.org", "oncall@example.org"))
    notifier = SmtpNotifier(cfg, "h1.example")
    notifier.hectl_on_state_transition(
        host_id=1, old_state="EngineDown", new_state="EngineStart", reason="engine down everywhere"
    )
    notifier.hectl_on_state_transition(host_id=1, old_state="UnknownLocalVmState", new_state="StartUp", reason="x")  # not matched
    notifier.wait(10)
    (msg,) = inbox.wait(1)
    assert msg["Subject"] == "hectl: host 1 (h1.example) EngineDown -> EngineStart"
    assert msg["To"] == "ops@example.org, oncall@example.org" and "engine down everywhere" in msg.get_payload()
    time.sleep(0.3)
    assert len(inbox.messages) == 1


def test_a_dead_mail_server_is_only_logged(caplog: pytest.LogCaptureFixture) -> None:
    cfg = NotifyConfig(smtp_server="127.0.0.1", smtp_port=free_port(), timeout=2)
    notifier = SmtpNotifier(cfg, "h1")
    start = time.monotonic()
    with caplog.at_level(logging.WARNING):
        notifier.hectl_on_state_transition(host_id=1, old_state="EngineUp", new_state="EngineStop", reason="r")
        assert time.monotonic() - start < 0.5  # the caller never waits for mail
        notifier.wait(10)
    assert "not sent" in caplog.text


def test_set_maintenance_mails_through_the_configured_server(smtp: tuple[Inbox, int], domain: Domain) -> None:
    inbox, port = smtp
    with open(domain.config, "a") as f:
        f.write(f"\n[notify]\nsmtp_server = 127.0.0.1\nsmtp_port = {port}\ndestinations = ops@example.org\n")
    res = run_hectl(["set-maintenance", "--mode", "global", "--reason", "upgrade to 1.2"], env=domain.env)
    assert res.returncode == 0, res.stderr
    (msg,) = inbox.wait(1)
    assert msg["Subject"] == "hectl: global maintenance global (host1.example)"
    assert "upgrade to 1.2" in msg.get_payload() and msg["To"] == "ops@example.org"


def test_text_cannot_inject_headers_or_terminal_escapes(smtp: tuple[Inbox, int]) -> None:
    inbox, port = smtp
    notifier = SmtpNotifier(NotifyConfig(smtp_server="127.0.0.1", smtp_port=port), "h1\nBcc: victim@example.org")
    notifier.hectl_on_maintenance_change(
        scope="global", host_id=None, new_mode="global", reason="upgrade\x1b]0;pwned\x07\r\u202e", set_by="root@h1\nX: y"
    )
    notifier.wait(10)
    (msg,) = inbox.wait(1)
    assert msg["Subject"] == "hectl: global maintenance global (h1\\nBcc: victim@example.org)"
    assert msg["Bcc"] is None and msg["X"] is None
    body = msg.get_payload()
    assert "set by root@h1\\nX: y." in body and "upgrade\\x1b]0;pwned\\x07\\r\\u202e" in body
