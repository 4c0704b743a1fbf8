"""The page's small parts on their own: the sign-in limiter, the requests file, the digest's
schedule and the signed cookies."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from socialguard.core.settings import parse_settings
from socialguard.files.policy_files import load_settings
from socialguard.files.yamlfile import parse_yaml
from socialguard.web.accounts import WINDOW_SECONDS, SignInLimiter
from socialguard.web.digest import next_due
from socialguard.web.server import StartError, htpasswd_path
from socialguard.web.sessions import SessionExpiredError, Signer
from socialguard.web.staff_requests import (
    DECLINED,
    EXPIRED,
    PENDING,
    RequestError,
    RequestStore,
    StaffRequest,
)

NOW = dt.datetime(2026, 11, 24, 10, 0, tzinfo=dt.UTC)  # a Tuesday


def test_the_limiter_counts_per_account_and_per_address_and_forgets() -> None:
    clock = [0.0]
    limiter = SignInLimiter(per_account=3, per_address=5, clock=lambda: clock[0])
    for _ in range(3):
        assert limiter.blocked("10.0.0.5", "a.user") is None
        limiter.failed("10.0.0.5", "a.user")
    assert limiter.blocked("10.0.0.5", "A.User") == "too many wrong passwords for this account"
    assert limiter.blocked("10.0.0.6", "a.user") is not None  # another address, same account
    limiter.failed("10.0.0.5", "b.user")
    limiter.failed("10.0.0.5", "c.user")
    assert limiter.blocked("10.0.0.5", "d.user") == "too many wrong passwords from this address"
    assert limiter.blocked("10.0.0.7", "d.user") is None
    clock[0] += WINDOW_SECONDS + 1
    assert limiter.blocked("10.0.0.5", "a.user") is None


def _request(ref: str, expires: dt.datetime) -> StaffRequest:
    return StaffRequest(
        reference=ref, who_kind="user", who="a.nother", service="facebook",
        host="www.facebook.com", blocked_at="2026-11-24T09:59:00.000Z", purpose="news",
        requested_at=NOW.isoformat(), expires_at=expires.isoformat(),
    )  # fmt: skip


def test_requests_are_kept_once_answered_once_and_expire(tmp_path: Path) -> None:
    clock = [NOW]
    store = RequestStore(tmp_path / "admin" / "requests.json", lambda: clock[0])
    store.add(_request("SG-A", NOW + dt.timedelta(days=14)))
    store.add(_request("SG-B", NOW + dt.timedelta(days=1)))
    with pytest.raises(RequestError, match="already made"):
        store.add(_request("SG-A", NOW + dt.timedelta(days=14)))
    store.answer("SG-A", status=DECLINED, reason="no")
    with pytest.raises(RequestError, match="not waiting"):
        store.answer("SG-A", status=DECLINED, reason="again")
    clock[0] = NOW + dt.timedelta(days=2)
    assert store.get("SG-B").state(clock[0]) == EXPIRED  # type: ignore[union-attr]
    assert [r.reference for r in store.sweep()] == ["SG-B"]
    assert store.sweep() == []
    saved = json.loads((tmp_path / "admin" / "requests.json").read_text())
    assert {ref: r["status"] for ref, r in saved["requests"].items()} == {
        "SG-A": DECLINED, "SG-B": EXPIRED,
    }  # fmt: skip
    assert store.get("SG-C") is None
    assert PENDING not in {r.status for r in store.all()}


def test_a_damaged_requests_file_is_named(tmp_path: Path) -> None:
    path = tmp_path / "requests.json"
    path.write_text("{not json")
    with pytest.raises(RequestError, match=r"requests\.json: the requests file cannot be read"):
        RequestStore(path, lambda: NOW).all()


def test_the_digest_is_due_at_its_weekday_and_time_in_the_practice_zone() -> None:
    text = "digest: {weekday: mon, time: '08:00'}\ntimezone: Europe/London\n"
    settings = parse_settings(parse_yaml(text, "policy.yaml"), "policy.yaml")
    assert next_due(settings, NOW) == dt.datetime(2026, 11, 30, 8, 0, tzinfo=settings.timezone)
    summer = dt.datetime(2026, 7, 6, 6, 59, tzinfo=dt.UTC)  # a Monday, 07:59 in London (BST)
    assert next_due(settings, summer).astimezone(dt.UTC) == summer + dt.timedelta(minutes=1)


def test_cookies_are_signed_and_end() -> None:
    signer = Signer(session_seconds=60)
    session = signer.session(signer.new_session("practice.manager"))
    assert session is not None
    assert session.user == "practice.manager"
    assert signer.session("forged." + signer.new_session("x")) is None
    assert Signer(60).session(signer.new_session("x")) is None  # another key: not ours
    assert signer.token_ok(session.sid, signer.token(session.sid))
    assert not signer.token_ok(session.sid, signer.token("another"))
    assert not signer.token_ok(None, signer.token(session.sid))
    old = Signer(session_seconds=1, key=signer.key)
    cookie = old.new_session("practice.manager")
    import time  # noqa: PLC0415

    time.sleep(2.1)
    with pytest.raises(SessionExpiredError) as ended:
        old.session(cookie)
    assert ended.value.user == "practice.manager"


def test_an_installed_page_finds_the_password_file_install_sh_names(tmp_path: Path) -> None:
    """Installed: admin.htpasswd, else /etc/socialguard/admin.htpasswd once made (as install.sh
    tells IT), else the proxy's file; with none of them, the refusal says how to make it."""
    etc = tmp_path / "etc/socialguard"
    etc.mkdir(parents=True)
    policy = etc / "policy.yaml"
    own = etc / "admin.htpasswd"
    policy.write_text("practice: {name: Test}\n")
    with pytest.raises(StartError, match=f"socialguard users add --htpasswd {own} practice"):
        htpasswd_path(load_settings(policy)[0])
    policy.write_text("identity: {proxyauth: '@htpasswd'}\n")
    assert htpasswd_path(load_settings(policy)[0]) == etc / "htpasswd"
    own.write_text("")
    assert htpasswd_path(load_settings(policy)[0]) == own
    other = tmp_path / "other.htpasswd"
    policy.write_text(f"admin: {{htpasswd: {other}}}\n")
    assert htpasswd_path(load_settings(policy)[0]) == other
