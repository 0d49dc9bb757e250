"""The sender over STARTTLS to a real SMTP server (aiosmtpd on 127.0.0.1) whose certificate a
test CA made here signs: the certificate is verified (an unknown CA is refused and the mail
waits), and credentials are only ever sent inside TLS."""

from __future__ import annotations

import email
import email.policy
import ssl
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from ipaddress import IPv4Address
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from agentdesk.models import DeliveryStatus
from agentdesk.server.notifications.config import SmtpConfig
from agentdesk.server.notifications.sender import Sender
from tests.notifications.conftest import Api
from tests.notifications.test_sender import _deliveries, _queue
from tests.plugins.live_team import free_port


@dataclass
class Pki:
    ca_file: Path
    cert_file: Path
    key_file: Path


def _name(common: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    """A throwaway CA and a server certificate for 127.0.0.1 signed by it."""
    now = datetime.now(UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (
        x509.CertificateBuilder()
        .subject_name(_name("AgentDesk test CA"))
        .issuer_name(_name("AgentDesk test CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name("127.0.0.1"))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(IPv4Address("127.0.0.1"))]), critical=False
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    pki = Pki(tmp_path / "ca.pem", tmp_path / "server.pem", tmp_path / "server.key")
    pki.ca_file.write_bytes(ca.public_bytes(pem))
    pki.cert_file.write_bytes(cert.public_bytes(pem))
    pki.key_file.write_bytes(
        key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return pki


class TlsInbox:
    """Accepts mail only after STARTTLS, and logs in ``desk`` / ``s3cret`` only inside TLS."""

    def __init__(self) -> None:
        self.received: list[tuple[bool, str, email.message.EmailMessage]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        msg = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(msg, email.message.EmailMessage)
        login = session.auth_data.login.decode() if session.auth_data else ""
        self.received.append((session.ssl is not None, login, msg))
        return "250 OK"


def _authenticate(
    server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any
) -> AuthResult:
    ok = (
        isinstance(auth_data, LoginPassword)
        and auth_data.login == b"desk"
        and auth_data.password == b"s3cret"
    )
    return AuthResult(success=ok, handled=False, auth_data=auth_data if ok else None)


@pytest.fixture
def tls_smtp(pki: Pki) -> Iterator[tuple[int, TlsInbox]]:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(pki.cert_file, pki.key_file)
    inbox, port = TlsInbox(), free_port()
    controller = Controller(
        inbox,
        hostname="127.0.0.1",
        port=port,
        tls_context=context,
        require_starttls=True,
        auth_require_tls=True,
        authenticator=_authenticate,
    )
    controller.start()
    yield port, inbox
    controller.stop()


def _config(port: int, ca_file: Path | None) -> SmtpConfig:
    return SmtpConfig(
        host="127.0.0.1",
        port=port,
        security="starttls",
        username="desk",
        password="s3cret",
        sender="Acme Support <support@acme.test>",
        timeout=5,
        verify=True,
        ca_file=str(ca_file) if ca_file else None,
    )


def test_starttls_with_a_verified_certificate_delivers_inside_tls(
    api: Api, pki: Pki, tls_smtp: tuple[int, TlsInbox]
) -> None:
    port, inbox = tls_smtp
    _queue(api, 3, subject="Over TLS")
    result = Sender(api.world.sessions, _config(port, pki.ca_file)).drain()
    assert (result.sent, result.failed, result.retrying) == (3, 0, 0)
    assert [(tls, login) for tls, login, _m in inbox.received] == [(True, "desk")] * 3
    assert {str(m["Subject"]) for _t, _l, m in inbox.received} == {"Over TLS"}
    assert [d.status for d in _deliveries(api)] == [DeliveryStatus.SENT] * 3


def test_a_certificate_from_an_unknown_authority_is_refused_and_the_mail_waits(
    api: Api, tls_smtp: tuple[int, TlsInbox]
) -> None:
    port, inbox = tls_smtp
    _queue(api, 2)
    result = Sender(api.world.sessions, _config(port, None)).drain(max_batches=1)
    assert (result.sent, result.retrying) == (0, 2)
    assert inbox.received == []
    rows = _deliveries(api)
    assert [d.status for d in rows] == [DeliveryStatus.QUEUED] * 2
    assert all("certificate verify failed" in d.last_error.lower() for d in rows), [
        d.last_error for d in rows
    ]
