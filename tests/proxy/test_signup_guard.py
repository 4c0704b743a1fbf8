"""The signup guard's hook with mitmproxy's test flows: fast, no proxy (the real-proxy tests
are in test_signup_proxy.py)."""

from __future__ import annotations

from pathlib import Path

from mitmproxy.test import taddons

from tests.conftest import SETTINGS
from tests.proxy.hooks import Fixture, http_flow

GUARDED = SETTINGS + "email_domains: [nhs.net]\nsignup_guard:\n  hosts: [shop.example]\n"


def form(url: str, body: bytes) -> object:
    flow = http_flow(url)
    flow.request.method = "POST"
    flow.request.headers["content-type"] = "application/x-www-form-urlencoded"
    flow.request.content = body
    return flow


def test_a_work_address_on_a_listed_site_is_refused(tmp_path: Path) -> None:
    fx = Fixture(tmp_path, GUARDED)
    guard = fx.enforcer.signup_guard
    with taddons.context(fx.enforcer):
        flow = form("http://www.shop.example/register", b"email=a.b%40nhs.net&name=A")
        guard.request(flow)
    assert flow.response.status_code == 403
    (event,) = fx.events()
    assert (event["event"], event["detail"]) == ("signup.blocked", "an address at nhs.net")


def test_a_personal_address_or_another_site_passes(tmp_path: Path) -> None:
    fx = Fixture(tmp_path, GUARDED)
    guard = fx.enforcer.signup_guard
    with taddons.context(fx.enforcer):
        personal = form("http://www.shop.example/register", b"email=a%40example.com")
        elsewhere = form("http://news.example.com/register", b"email=a.b%40nhs.net")
        guard.request(personal)
        guard.request(elsewhere)
    assert personal.response is None
    assert elsewhere.response is None
    assert fx.events() == []
