"""Mail notifications against a real SMTP server (aiosmtpd on loopback)."""

from __future__ import annotations

import logging
import socket
import ssl
import time
from collections.abc import Iterator
from email import message_from_bytes
from email.message import Message
from pathlib import Path

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


# --- STARTTLS and login ----------------------------------------------------------------------------

USER, PASSWORD = "hectl-agent", "s3cret Passw0rd!"


def make_certs(d: Path) -> tuple[Path, Path, Path]:
    """A CA and a server certificate for 127.0.0.1 that it signed (ca.pem, server.pem, server.key)."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = datetime.datetime.now(datetime.UTC)
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "hectl test CA")])
    ca = (
        x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
        .serial_number(1).not_valid_before(now).not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )  # fmt: skip
    server = (
        x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
        .issuer_name(ca_name).public_key(key.public_key()).serial_number(2)
        .not_valid_before(now).not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )  # fmt: skip
    paths = d / "ca.pem", d / "server.pem", d / "server.key"
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(server.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return paths


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    return make_certs(tmp_path_factory.mktemp("smtp-certs"))


class Authenticator:
    """Accepts USER/PASSWORD; records the mechanism and whether the session was encrypted."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, bool, bool]] = []  # (mechanism, tls, accepted)

    def __call__(self, server, session, envelope, mechanism, auth_data):  # type: ignore[no-untyped-def]
        from aiosmtpd.smtp import AuthResult, LoginPassword

        ok = isinstance(auth_data, LoginPassword) and (auth_data.login, auth_data.password) == (
            USER.encode(),
            PASSWORD.encode(),
        )
        tls = session.ssl is not None or server.transport.get_extra_info("sslcontext") is not None  # STARTTLS or SMTPS
        self.seen.append((mechanism, tls, ok))
        return AuthResult(success=ok, handled=False)  # on failure aiosmtpd answers 535


@pytest.fixture
def tls_smtp(certs: tuple[Path, Path, Path], request: pytest.FixtureRequest) -> Iterator[tuple[Inbox, int, Authenticator]]:
    """An SMTP server that requires STARTTLS and a login (mechanisms: ``request.param``, default LOGIN and PLAIN)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(certs[1], certs[2])
    mechanisms = getattr(request, "param", ("LOGIN", "PLAIN"))
    inbox, port, auth = Inbox(), free_port(), Authenticator()
    controller = Controller(
        inbox,
        hostname="127.0.0.1",
        port=port,
        tls_context=context,
        require_starttls=True,
        auth_required=True,
        authenticator=auth,
        auth_exclude_mechanism=[m for m in ("LOGIN", "PLAIN") if m not in mechanisms],
    )
    controller.start()
    try:
        yield inbox, port, auth
    finally:
        controller.stop()


def secret_file(tmp_path: Path, text: str = PASSWORD + "\n", mode: int = 0o600) -> Path:
    path = tmp_path / "smtp-password"
    path.write_text(text)
    path.chmod(mode)
    return path


def tls_config(port: int, certs: tuple[Path, Path, Path], password_file: Path, **kw: object) -> NotifyConfig:
    fields: dict[str, object] = dict(
        smtp_server="127.0.0.1", smtp_port=port, starttls=True, smtp_ca=str(certs[0]), username=USER,
        password_file=str(password_file), timeout=5,
    )  # fmt: skip
    return NotifyConfig(**{**fields, **kw})  # type: ignore[arg-type]


@pytest.mark.parametrize("tls_smtp", [("LOGIN",), ("PLAIN",)], indirect=True, ids=["LOGIN", "PLAIN"])
def test_mail_goes_out_over_starttls_with_a_login(
    tls_smtp: tuple[Inbox, int, Authenticator], certs: tuple[Path, Path, Path], tmp_path: Path
) -> None:
    inbox, port, auth = tls_smtp
    notifier = SmtpNotifier(tls_config(port, certs, secret_file(tmp_path)), "h1.example")
    notifier.hectl_on_state_transition(host_id=1, old_state="EngineDown", new_state="EngineStart", reason="r")
    notifier.wait(10)
    (msg,) = inbox.wait(1)
    assert msg["Subject"] == "hectl: host 1 (h1.example) EngineDown -> EngineStart"
    assert len(auth.seen) == 1 and auth.seen[0][1:] == (True, True)  # logged in, over TLS


def _failed_delivery(cfg: NotifyConfig, caplog: pytest.LogCaptureFixture) -> str:
    notifier = SmtpNotifier(cfg, "h1")
    with caplog.at_level(logging.WARNING):
        notifier.hectl_on_state_transition(host_id=1, old_state="EngineUp", new_state="EngineStop", reason="r")
        notifier.wait(10)
    return caplog.text


@pytest.mark.parametrize("tls_smtp", [("LOGIN",), ("PLAIN",)], indirect=True, ids=["LOGIN", "PLAIN"])
def test_a_wrong_password_is_logged_without_the_password(
    tls_smtp: tuple[Inbox, int, Authenticator], certs: tuple[Path, Path, Path], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    inbox, port, auth = tls_smtp
    wrong = "wrong-" + PASSWORD
    text = _failed_delivery(tls_config(port, certs, secret_file(tmp_path, wrong + "\n")), caplog)
    assert "not sent" in text and "SMTPAuthenticationError" in text
    assert wrong not in text and PASSWORD not in text
    assert auth.seen and not auth.seen[0][2] and inbox.messages == []


def test_a_server_without_starttls_gets_no_login(
    smtp: tuple[Inbox, int], certs: tuple[Path, Path, Path], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    inbox, port = smtp  # plain SMTP: no STARTTLS offered
    text = _failed_delivery(tls_config(port, certs, secret_file(tmp_path)), caplog)
    assert "not sent" in text and "STARTTLS" in text and PASSWORD not in text
    assert inbox.messages == []


def test_an_untrusted_certificate_is_refused(
    tls_smtp: tuple[Inbox, int, Authenticator], certs: tuple[Path, Path, Path], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    inbox, port, auth = tls_smtp
    text = _failed_delivery(tls_config(port, certs, secret_file(tmp_path), smtp_ca=""), caplog)  # the system's CAs
    assert "not sent" in text and "CERTIFICATE_VERIFY_FAILED" in text
    assert auth.seen == [] and inbox.messages == []


def test_set_maintenance_mails_over_starttls_with_the_password_file(
    tls_smtp: tuple[Inbox, int, Authenticator], certs: tuple[Path, Path, Path], domain: Domain, tmp_path: Path
) -> None:
    inbox, port, auth = tls_smtp
    with open(domain.config, "a") as f:
        f.write(
            f"\n[notify]\nsmtp_server = 127.0.0.1\nsmtp_port = {port}\ndestinations = ops@example.org\nstarttls = yes\n"
            f"smtp_ca = {certs[0]}\nusername = {USER}\npassword_file = {secret_file(tmp_path)}\n"
        )
    res = run_hectl(["set-maintenance", "--mode", "global"], env=domain.env)
    assert res.returncode == 0, res.stderr
    assert inbox.wait(1) and auth.seen[0][1:] == (True, True)
    assert PASSWORD not in res.stdout + res.stderr


@pytest.fixture
def smtps(certs: tuple[Path, Path, Path]) -> Iterator[tuple[Inbox, int, Authenticator]]:
    """An SMTP server speaking TLS from the first byte (SMTPS) that requires a login."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(certs[1], certs[2])
    inbox, port, auth = Inbox(), free_port(), Authenticator()
    controller = Controller(
        inbox,
        hostname="127.0.0.1",
        port=port,
        ssl_context=context,
        auth_required=True,
        auth_require_tls=False,  # aiosmtpd counts only STARTTLS as TLS; this connection is TLS from its first byte
        authenticator=auth,
    )
    controller.start()
    try:
        yield inbox, port, auth
    finally:
        controller.stop()


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")  # it is TLS: aiosmtpd only knows STARTTLS
def test_mail_goes_out_over_implicit_tls_with_a_login(
    smtps: tuple[Inbox, int, Authenticator], certs: tuple[Path, Path, Path], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    inbox, port, auth = smtps
    cfg = tls_config(port, certs, secret_file(tmp_path), starttls=False, implicit_tls=True)
    notifier = SmtpNotifier(cfg, "h1.example")
    notifier.hectl_on_state_transition(host_id=1, old_state="EngineDown", new_state="EngineStart", reason="r")
    notifier.wait(10)
    assert len(inbox.wait(1)) == 1 and auth.seen[0][1:] == (True, True)
    # STARTTLS against an SMTPS port: the greeting never comes in clear text, so nothing is sent
    text = _failed_delivery(tls_config(port, certs, secret_file(tmp_path)), caplog)
    assert "not sent" in text and PASSWORD not in text and len(inbox.messages) == 1
