"""policy.yaml's admin: and digest: sections: defaults, and each bad value named with its line."""

from __future__ import annotations

import datetime as dt
import textwrap

import pytest

from socialguard.core.admin_settings import is_loopback
from socialguard.core.problems import ConfigError
from socialguard.core.settings import Settings, parse_settings
from socialguard.files.yamlfile import parse_yaml


def settings_from(text: str) -> Settings:
    return parse_settings(parse_yaml(textwrap.dedent(text), "policy.yaml"), "policy.yaml")


def problems_of(text: str) -> list[tuple[int, str]]:
    with pytest.raises(ConfigError) as caught:
        settings_from(text)
    return [(p.line, p.message) for p in caught.value.problems]


def test_defaults_listen_on_loopback_with_no_digest() -> None:
    settings = parse_settings(None, "<defaults>")
    assert (settings.admin.listen_host, settings.admin.listen_port) == ("127.0.0.1", 8090)
    assert settings.admin.public_url is None
    assert settings.admin.session_minutes == 480
    assert settings.digest.smtp_host is None


def test_admin_and_digest_read_as_written() -> None:
    settings = settings_from(
        """\
        admin:
          listen: "10.10.0.1:8443"
          public_url: "https://gateway.practice.example:8443/"
          htpasswd: /etc/socialguard/admin.htpasswd
          session_minutes: 60
          tls_cert: /etc/socialguard/admin.pem
          tls_key: /etc/socialguard/admin.key
        digest:
          smtp_host: smtp.example.net
          security: tls
          username: socialguard
          password_file: /etc/socialguard/smtp.password
          from: socialguard@practice.example
          to: [manager@practice.example]
          weekday: friday
          time: "16:30"
        """
    )
    assert settings.admin.listen_host == "10.10.0.1"
    assert settings.admin.public_url == "https://gateway.practice.example:8443"
    assert settings.admin.session_minutes == 60
    assert settings.digest.smtp_port == 465  # the port that goes with tls
    assert settings.digest.weekday == 4
    assert settings.digest.time == dt.time(16, 30)


def test_bad_values_are_named_with_their_lines() -> None:
    problems = problems_of(
        """\
        admin:
          listen: nowhere
          session_minutes: 0
          tls_cert: /etc/cert.pem
          colour: blue
        digest:
          smtp_host: smtp.example.net
          security: none
          from: nobody
          to: [not-an-address]
          time: 8 o'clock
        """
    )
    messages = [m for _, m in problems]
    lines = [line for line, _ in problems]
    assert 2 in lines
    assert any("admin.listen" in m and "HOST:PORT" in m for m in messages)
    assert any("admin.session_minutes" in m for m in messages)
    assert any("give both" in m and "tls_key" in m for m in messages)
    assert any("'none'" in m and "loopback only" in m for m in messages)
    assert any("digest.to" in m for m in messages)
    assert any("digest.from" in m for m in messages)
    assert any("digest.time" in m and "quote it" in m for m in messages)
    assert (5, "admin: unknown key 'colour' (known: audit_path, htpasswd, listen, public_url, "
            "request_days, session_minutes, tls_cert, tls_key)") in problems  # fmt: skip


@pytest.mark.parametrize(
    ("host", "loopback"),
    [("127.0.0.1", True), ("127.8.9.1", True), ("::1", True), ("localhost", True),
     ("10.0.0.1", False), ("gateway", False), ("0.0.0.0", False)],  # noqa: S104
)  # fmt: skip
def test_loopback(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback
