"""Tests for socialguard.proxy.blockpage: what staff, apps and scripts are told when blocked."""

from __future__ import annotations

import json
import re

import pytest

from socialguard.core.policy import Action, Decision, Reason
from socialguard.core.settings import Practice
from socialguard.proxy.blockpage import (
    REASON_TEXT,
    reason_text,
    render_html,
    render_json,
    render_text,
    wants_html,
)

PRACTICE = Practice(
    name="Riverside Surgery", contact="Mrs Patel, Practice Manager", policy_url=None, domains=()
)
BLOCKED = Decision(
    action=Action.BLOCK,
    reason=Reason.NOT_AUTHORISED,
    host="www.facebook.com",
    service="facebook",
    service_name="Facebook",
    category="social-networking",
)
EXPIRED = Decision(
    action=Action.BLOCK,
    reason=Reason.EXEMPTION_EXPIRED,
    host="www.facebook.com",
    service="facebook",
    service_name="Facebook",
    category="social-networking",
    exemption_id="EX-2026-001",
    exemption_ends="31 October 2026",
    detail="exemption EX-2026-001 expired on 31 October 2026",
)
HOSTILE = Decision(
    action=Action.BLOCK,
    reason=Reason.MALFORMED_HOST,
    host='<script>alert("x")</script>&"\'.example',
    detail="contains <b>characters</b> that are not allowed",
)
REFERENCE = "SG-ABCDEFGH23"


def test_html_names_everything() -> None:
    """The page names the service, category, reason, reference, practice and contact."""
    page = render_html(BLOCKED, REFERENCE, PRACTICE)
    assert "Facebook" in page
    assert "www.facebook.com" in page
    assert "social networking" in page
    assert reason_text(BLOCKED) in page
    assert page.count(REFERENCE) >= 2
    assert "Riverside Surgery" in page
    assert "Mrs Patel, Practice Manager" in page


def test_html_declares_language_and_charset() -> None:
    """The page declares its language and character set."""
    page = render_html(BLOCKED, REFERENCE, PRACTICE)
    assert re.search(r'<html lang="en(-GB)?"', page)
    assert '<meta charset="utf-8">' in page.lower()


def test_html_escapes_hostile_host() -> None:
    """A host with markup in it is shown as text, never as markup."""
    page = render_html(HOSTILE, REFERENCE, PRACTICE)
    assert "<script" not in page.lower()
    assert "&lt;script&gt;" in page
    assert "<b>characters" not in page
    assert "&lt;b&gt;characters" in page


def test_html_escapes_practice_fields() -> None:
    """Practice name and contact are escaped too."""
    practice = Practice(name="A & B <Surgery>", contact="<i>IT</i>", policy_url=None, domains=())
    page = render_html(BLOCKED, REFERENCE, practice)
    assert "A &amp; B &lt;Surgery&gt;" in page
    assert "<i>IT</i>" not in page


@pytest.mark.parametrize("policy_url", [None, "https://intranet.example.nhs.uk/policies/social"])
def test_html_loads_nothing_from_network(policy_url: str | None) -> None:
    """The page has no external scripts, styles, images or fonts; only the policy link."""
    practice = Practice(name="P", contact="C", policy_url=policy_url, domains=())
    page = render_html(BLOCKED, REFERENCE, practice)
    for tag in ("<script", "<img", "<link", "<iframe", "@import", "url("):
        assert tag not in page.lower()
    assert not re.search(r"\ssrc\s*=", page, re.IGNORECASE)
    hrefs = re.findall(r'href\s*=\s*"([^"]*)"', page, re.IGNORECASE)
    assert hrefs == ([policy_url] if policy_url else [])
    urls = set(re.findall(r"https?://[^\s\"'<>]+", page))
    assert urls <= ({policy_url} if policy_url else set())


def test_html_policy_link_is_escaped() -> None:
    """A policy URL with quotes cannot break out of its attribute."""
    practice = Practice(
        name="P", contact="C", policy_url='https://x.example/"onmouseover="x', domains=()
    )
    page = render_html(BLOCKED, REFERENCE, practice)
    assert '"onmouseover="' not in page
    assert "&#34;onmouseover=&#34;" in page or "&quot;onmouseover=&quot;" in page


def test_expired_reason_names_date() -> None:
    """An expired exemption's page names the exemption and the day it expired."""
    text = reason_text(EXPIRED)
    assert text == (
        "Your exemption EX-2026-001 expired on 31 October 2026. "
        "Ask for it to be renewed if you still need it."
    )
    assert text in render_html(EXPIRED, REFERENCE, PRACTICE)


@pytest.mark.parametrize(
    ("reason", "must_contain"),
    [
        (Reason.NOT_AUTHORISED, "needs an exemption"),
        (Reason.EXEMPTION_NOT_YET_VALID, "EX-1 has not started yet"),
        (Reason.EXEMPTION_REVOKED, "EX-1 has been withdrawn"),
        (Reason.MALFORMED_HOST, "could not be read (bad name)"),
        (Reason.INTERNAL_ERROR, "blocked to be safe"),
        (Reason.BREAK_WINDOW, "not allowed by the policy"),
    ],
)
def test_reason_text(reason: Reason, must_contain: str) -> None:
    """Every block reason has plain words; unknown ones fall back to a general sentence."""
    decision = Decision(
        action=Action.BLOCK, reason=reason, host="h.example", exemption_id="EX-1", detail="bad name"
    )
    assert must_contain in reason_text(decision)


def test_every_block_reason_has_its_own_text() -> None:
    """The reasons decide() can block with each have specific wording."""
    blocking = {
        Reason.NOT_AUTHORISED,
        Reason.EXEMPTION_EXPIRED,
        Reason.EXEMPTION_NOT_YET_VALID,
        Reason.EXEMPTION_REVOKED,
        Reason.MALFORMED_HOST,
        Reason.INTERNAL_ERROR,
    }
    assert blocking <= set(REASON_TEXT)


def test_json_renderer() -> None:
    """The JSON answer carries host, service, category, reason, message and reference."""
    body = json.loads(render_json(EXPIRED, REFERENCE))
    assert body == {
        "error": "blocked_by_practice_policy",
        "host": "www.facebook.com",
        "service": "facebook",
        "category": "social-networking",
        "reason": "exemption_expired",
        "message": reason_text(EXPIRED),
        "reference": REFERENCE,
    }


def test_json_renderer_with_hostile_host() -> None:
    """A hostile host round-trips through JSON unchanged."""
    assert json.loads(render_json(HOSTILE, REFERENCE))["host"] == HOSTILE.host


def test_text_renderer() -> None:
    """The text answer is one line naming the service, the reason and the reference."""
    text = render_text(BLOCKED, REFERENCE)
    assert text.endswith("\n")
    assert text.count("\n") == 1
    assert "Facebook" in text
    assert reason_text(BLOCKED) in text
    assert f"Reference {REFERENCE}." in text


def test_text_renderer_falls_back_to_host() -> None:
    """Without a service name the text answer names the host."""
    assert "h.example" in render_text(
        Decision(action=Action.BLOCK, reason=Reason.MALFORMED_HOST, host="h.example"), "R"
    )


@pytest.mark.parametrize(
    ("accept", "requested_with", "html"),
    [
        ("text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8", "", True),
        ("TEXT/HTML", "", True),
        ("*/*", "", True),
        (" */* ", "", True),
        ("", "", True),
        ("application/json", "", False),
        ("application/json, text/plain, */*", "", False),
        ("image/avif,image/webp,*/*;q=0.8", "", False),
        ("text/html", "XMLHttpRequest", False),
        ("*/*", "xmlhttprequest", False),
        ("text/html", "com.example.app", True),
    ],
)
def test_wants_html(accept: str, requested_with: str, html: bool) -> None:
    """Browsers navigating get the page; JSON clients, images and XHR get a short answer."""
    assert wants_html(accept, requested_with) is html


def test_the_rest_break_line_only_where_it_is_true() -> None:
    """Personal use in rest breaks is promised only to a reader whose zone has breaks, with the
    next one; never on the page refusing a registration with the work address."""
    with_break = render_html(BLOCKED, REFERENCE, PRACTICE, "today 12:30\u201313:30")
    assert "Your next rest break: today 12:30\u201313:30." in with_break
    without = render_html(BLOCKED, REFERENCE, PRACTICE)
    assert "rest break" not in without
    signup = Decision(
        action=Action.BLOCK, reason=Reason.WORK_EMAIL_SIGNUP, host="www.amazon.co.uk",
        detail="an address at nhs.net",
    )  # fmt: skip
    assert "rest break" not in render_html(signup, REFERENCE, PRACTICE, "today 12:30\u201313:30")


def test_privacy_link_only_where_privacy_url_is_set() -> None:
    """With practice.privacy_url the page links to the staff privacy notice; without, it doesn't."""
    without = render_html(
        BLOCKED, REFERENCE, Practice(name="P", contact="C", policy_url=None, domains=())
    )
    assert "What is recorded" not in without
    notice = "https://intranet.example.nhs.uk/privacy/internet"
    practice = Practice(name="P", contact="C", policy_url=None, domains=(), privacy_url=notice)
    page = render_html(BLOCKED, REFERENCE, practice)
    assert f'href="{notice}"' in page
    assert "What is recorded about this, and for how long" in page
