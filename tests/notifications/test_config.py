"""The SMTP configuration is read and checked once, at start: a bad value stops the server
with a message naming the variable, and no request ever reads the environment (so none can
answer 500 because of it)."""

from __future__ import annotations

import pytest

from agentdesk.cli import main
from agentdesk.server.app import create_app
from agentdesk.server.asgi import app_from_env
from agentdesk.server.notifications.config import SmtpConfig, SmtpConfigError
from agentdesk.server.settings import ServerSettings
from tests.notifications.conftest import Api
from tests.server.helpers import client_for

BAD = [
    ({"AGENTDESK_SMTP_PORT": "smtp"}, "AGENTDESK_SMTP_PORT"),
    ({"AGENTDESK_SMTP_PORT": "70000"}, "AGENTDESK_SMTP_PORT"),
    ({"AGENTDESK_SMTP_SECURITY": "ssl3"}, "AGENTDESK_SMTP_SECURITY"),
    ({"AGENTDESK_SMTP_TIMEOUT": "soon"}, "AGENTDESK_SMTP_TIMEOUT"),
    ({"AGENTDESK_SMTP_VERIFY": "maybe"}, "AGENTDESK_SMTP_VERIFY"),
    ({"AGENTDESK_SMTP_FROM": "support"}, "AGENTDESK_SMTP_FROM"),
    ({"AGENTDESK_SMTP_FROM": "a@b.test\nBcc: x@y.test"}, "AGENTDESK_SMTP_FROM"),
    ({"AGENTDESK_SMTP_USERNAME": "desk"}, "AGENTDESK_SMTP_PASSWORD"),
    ({"AGENTDESK_SMTP_CA_FILE": "/no/such/ca.pem"}, "AGENTDESK_SMTP_CA_FILE"),
]


@pytest.mark.parametrize(("extra", "variable"), BAD)
def test_a_bad_value_is_refused_naming_its_variable(extra: dict[str, str], variable: str) -> None:
    with pytest.raises(SmtpConfigError) as caught:
        SmtpConfig.from_env({"AGENTDESK_SMTP_HOST": "mail.test", **extra})
    assert caught.value.variable == variable
    assert str(caught.value).startswith(variable)


def test_good_values_are_read() -> None:
    config = SmtpConfig.from_env(
        {
            "AGENTDESK_SMTP_HOST": "mail.test",
            "AGENTDESK_SMTP_PORT": "2525",
            "AGENTDESK_SMTP_SECURITY": "STARTTLS",
            "AGENTDESK_SMTP_TIMEOUT": "7.5",
            "AGENTDESK_SMTP_VERIFY": "no",
            "AGENTDESK_SMTP_FROM": "Desk <desk@acme.test>",
        }
    )
    assert config is not None
    assert (config.port, config.security, config.timeout, config.verify) == (
        2525,
        "starttls",
        7.5,
        False,
    )
    assert config.domain == "acme.test"


def test_requests_never_read_the_environment(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    """The server started without SMTP; a broken environment afterwards changes nothing."""
    monkeypatch.setenv("AGENTDESK_SMTP_HOST", "mail.test")
    monkeypatch.setenv("AGENTDESK_SMTP_PORT", "not-a-port")
    r = api.client.get("/api/v1/notifications", headers=api.headers("lead"))
    assert r.status_code == 200, r.text
    assert r.json()["delivery"] is False


def test_the_outbox_says_delivery_is_on_when_the_server_started_with_smtp(
    database_url: str, api: Api
) -> None:
    smtp = SmtpConfig(host="127.0.0.1", port=1, security="none", sender="d@acme.test")
    app = create_app(ServerSettings(database_url=database_url, smtp=smtp, migrate_on_start=False))
    with client_for(app) as client:
        r = client.get("/api/v1/notifications", headers=api.headers("lead"))
    assert r.status_code == 200, r.text
    assert r.json()["delivery"] is True


def test_the_server_command_refuses_to_start_naming_the_variable(
    database_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("AGENTDESK_SMTP_HOST", "mail.test")
    monkeypatch.setenv("AGENTDESK_SMTP_SECURITY", "ssl3")
    assert main(["server", "--database-url", database_url]) == 1
    err = capsys.readouterr().err
    assert "AGENTDESK_SMTP_SECURITY" in err
    assert "did not start" in err


def test_the_asgi_factory_refuses_to_start_naming_the_variable(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AGENTDESK_DATABASE_URL", database_url)
    monkeypatch.setenv("AGENTDESK_SMTP_HOST", "mail.test")
    monkeypatch.setenv("AGENTDESK_SMTP_PORT", "25x")
    with pytest.raises(SmtpConfigError, match="AGENTDESK_SMTP_PORT"):
        app_from_env()
