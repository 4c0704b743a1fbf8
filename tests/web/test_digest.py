"""The weekly digest: printed by `socialguard digest --dry-run`, and sent by `--send` to a real
SMTP server on loopback (aiosmtpd), as one e-mail with a plain-text and an HTML part."""

from __future__ import annotations

import email
import email.policy
from collections.abc import Iterator
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.handlers import Sink

from tests.loopback import LOOPBACK, free_port
from tests.web.conftest import record_blocks, today


class Inbox(Sink):
    def __init__(self) -> None:
        self.messages: list[tuple[str, list[str], bytes]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        self.messages.append((envelope.mail_from, list(envelope.rcpt_tos), envelope.content))
        return "250 OK"


@pytest.fixture
def smtp() -> Iterator[tuple[int, Inbox]]:
    inbox = Inbox()
    port = free_port()
    controller = Controller(inbox, hostname=LOOPBACK, port=port)
    controller.start()
    try:
        yield port, inbox
    finally:
        controller.stop()


def _digest_policy(port: int) -> str:
    return (
        f"digest:\n  smtp_host: {LOOPBACK}\n  smtp_port: {port}\n  security: none\n"
        "  from: socialguard@practice.example\n  to: [practice.manager@practice.example]\n"
        "  weekday: mon\n  time: '08:00'\n"
    )


def test_the_digest_is_received_in_both_forms(run_admin: Any, smtp: tuple[int, Inbox]) -> None:
    port, inbox = smtp
    admin = run_admin(extra_policy=_digest_policy(port))
    ref, _ = record_blocks(
        admin.proxy_audit,
        {"user": "a.nother"},
        {"user": "k.jones", "service": "tiktok", "host": "www.tiktok.com"},
    )
    staff = admin.client()
    page = staff.get("/request", params={"ref": ref})
    from tests.web.conftest import token_of  # noqa: PLC0415

    staff.post("/request", data={"csrf": token_of(page.text), "ref": ref, "purpose": "Page news"})
    dry = admin.cli("digest", "--dry-run", "--config", str(admin.policy),
                    "--authorisations", str(admin.authorisations))  # fmt: skip
    assert dry.returncode == 0, dry.stderr
    assert "--- plain text ---" in dry.stdout
    assert "--- HTML ---" in dry.stdout
    assert f"{ref}: a.nother asks for Facebook" in dry.stdout
    assert not inbox.messages  # a dry run sends nothing
    sent = admin.cli("digest", "--send", "--config", str(admin.policy),
                     "--authorisations", str(admin.authorisations))  # fmt: skip
    assert sent.returncode == 0, sent.stderr
    assert len(inbox.messages) == 1
    sender, to, raw = inbox.messages[0]
    assert sender == "socialguard@practice.example"
    assert to == ["practice.manager@practice.example"]
    message = email.message_from_bytes(raw, policy=email.policy.default)
    assert message["Subject"].startswith("socialguard weekly digest")
    text = message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    html = message.get_body(("html",)).get_content()  # type: ignore[union-attr]
    year = today().year
    for part in (text, html):
        assert "Requests waiting for an answer: 1" in part
        assert ref in part
        assert f"EX-{year}-001" in part  # ends within 30 days
        assert "Reviews overdue: 1" in part
        assert "Blocks this week: 2" in part
        assert "TikTok" in part
    assert "<h1>" in html
    assert "<" not in text


def test_sending_without_a_server_says_what_to_set(run_admin: Any) -> None:
    admin = run_admin()
    sent = admin.cli("digest", "--send", "--config", str(admin.policy),
                     "--authorisations", str(admin.authorisations))  # fmt: skip
    assert sent.returncode == 1
    assert "set digest.smtp_host" in sent.stderr
    assert "Traceback" not in sent.stderr


def test_a_server_that_is_not_there_is_a_plain_message(run_admin: Any) -> None:
    admin = run_admin(extra_policy=_digest_policy(free_port()))
    sent = admin.cli("digest", "--send", "--config", str(admin.policy),
                     "--authorisations", str(admin.authorisations))  # fmt: skip
    assert sent.returncode == 1
    assert "the digest was not sent" in sent.stderr
    assert "Traceback" not in sent.stderr
