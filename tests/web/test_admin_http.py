"""The page over HTTP, as a browser speaks to it: a real `socialguard admin` on loopback and
httpx. Sign-in, who is kept out, form tokens, sessions that end, requests that cannot be
forged or replayed, guessing that is slowed, and each refusal in the page's own audit chain."""

from __future__ import annotations

import datetime as dt
import socket
import ssl
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.loopback import LOOPBACK, self_signed
from tests.web.conftest import APPROVER, PASSWORD, record_blocks, today, token_of

CSP = (
    "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
    "frame-ancestors 'none'"
)


def test_an_approver_signs_in_and_sees_exemptions_by_service_name(run_admin: Any) -> None:
    admin = run_admin()
    with admin.client() as client:
        first = client.get("/")
        assert first.status_code == 303
        assert first.headers["location"] == "/sign-in"
        page = client.get("/sign-in")
        assert page.headers["content-security-policy"].startswith(CSP)
        assert "<script" not in page.text
        assert "<style" not in page.text  # the CSS is a file: style-src 'self' suffices
        cookie = page.headers["set-cookie"].lower()
        assert "httponly" in cookie
        assert "samesite=strict" in cookie
        assert "secure" not in cookie  # plain HTTP on loopback: a Secure cookie would be lost
        signed = admin.sign_in(client)
        assert signed.status_code == 303
        session_cookie = signed.headers["set-cookie"].lower()
        assert "sg_session=" in session_cookie
        assert "httponly" in session_cookie
        assert "samesite=strict" in session_cookie
        overview = client.get("/")
    assert overview.status_code == 200
    year = today().year
    assert f"EX-{year}-001" in overview.text
    assert "Facebook" in overview.text
    assert "LinkedIn" in overview.text
    assert "Ends soon" in overview.text  # 20 days left: marked in words, not colour alone
    assert "Review overdue" in overview.text  # approved over a year ago
    assert "frame-ancestors 'none'" in overview.headers["content-security-policy"]
    css = admin.client().get("/style.css")
    assert css.status_code == 200
    assert css.headers["content-type"].startswith("text/css")
    signed_in = admin.events("admin.signed_in")
    assert [e["user"] for e in signed_in] == [APPROVER]
    assert signed_in[0]["client_ip"] == "127.0.0.1"


def test_a_non_approver_cannot_sign_in_and_is_recorded(run_admin: Any) -> None:
    admin = run_admin()
    with admin.client() as client:
        refused = admin.sign_in(client, user="r.clerk")  # a right password, not an approver
        assert refused.status_code == 401
        assert "sg_session" not in refused.headers.get("set-cookie", "")
        assert client.get("/").status_code == 303
    with admin.client() as client:
        assert admin.sign_in(client, password="wrong").status_code == 401
    failed = admin.events("admin.signin_failed")
    assert [(e["user"], e["why"]) for e in failed] == [
        ("r.clerk", "not an approver"),
        (APPROVER, "wrong name or password"),
    ]


def test_forms_without_their_token_or_with_a_wrong_one_are_refused(run_admin: Any) -> None:
    admin = run_admin()
    with admin.client() as client:
        client.get("/sign-in")
        missing = client.post("/sign-in", data={"username": APPROVER, "password": PASSWORD})
        assert missing.status_code == 403
        wrong = client.post(
            "/sign-in", data={"csrf": "0" * 64, "username": APPROVER, "password": PASSWORD}
        )
        assert wrong.status_code == 403
        assert client.get("/").status_code == 303  # still not signed in
        assert admin.sign_in(client).status_code == 303
        next_year = str(today() + dt.timedelta(days=300))
        grant = {"kind": "user", "who": "a.nother", "service": "facebook",
                 "purpose": "Posting", "until": next_year}  # fmt: skip
        assert client.post("/grant", data=grant).status_code == 403
        assert client.post("/grant", data={**grant, "csrf": "f" * 64}).status_code == 403
        # A token from the sign-in form (bound to the visitor) is not the session's.
        other = admin.client()
        visitor_token = token_of(other.get("/sign-in").text)
        assert client.post("/grant", data={**grant, "csrf": visitor_token}).status_code == 403
    assert "a.nother" not in admin.authorisations.read_text()
    forbidden = admin.events("admin.forbidden")
    assert [(e["path"], e["why"]) for e in forbidden] == [
        ("/sign-in", "the form's token was missing"),
        ("/sign-in", "the form's token was wrong"),
        ("/grant", "the form's token was missing"),
        ("/grant", "the form's token was wrong"),
        ("/grant", "the form's token was wrong"),
    ]
    assert forbidden[-1]["user"] == APPROVER


def test_a_session_ends_and_its_forms_are_refused(run_admin: Any) -> None:
    admin = run_admin(admin_extra="  session_minutes: 0.04\n")  # 2.4 seconds
    with admin.client() as client:
        signed = admin.sign_in(client)
        assert signed.status_code == 303
        assert "max-age=2" in signed.headers["set-cookie"].lower()  # the browser forgets it too
        overview = client.get("/")
        assert overview.status_code == 200
        token = token_of(overview.text)
        time.sleep(3.5)
        # A browser drops the cookie by itself; one kept (or stolen) is refused by the page.
        client.cookies.set("sg_session", signed.cookies["sg_session"])
        ended = client.get("/")
        assert ended.status_code == 303
        assert ended.headers["location"] == "/sign-in?expired=1"
        posted = client.post(
            f"/exemptions/EX-{today().year}-001/revoke", data={"csrf": token, "reason": "x"}
        )
        assert posted.status_code == 403
    assert "revoked" not in admin.authorisations.read_text()
    expired = admin.events("admin.session_expired")
    assert expired
    assert expired[0]["user"] == APPROVER
    assert admin.events("admin.forbidden")[-1]["why"] == "not signed in (or the session ended)"


def test_a_burst_of_wrong_passwords_is_refused_and_recorded(run_admin: Any) -> None:
    admin = run_admin()
    codes = []
    with admin.client() as client:
        for _ in range(6):
            codes.append(admin.sign_in(client, password="guess").status_code)
        right = admin.sign_in(client)  # even the right password waits now
    assert codes == [401] * 5 + [429]
    assert right.status_code == 429
    assert "sg_session" not in right.headers.get("set-cookie", "")
    assert len(admin.events("admin.signin_failed")) == 5
    limited = admin.events("admin.signin_limited")
    assert len(limited) == 2
    assert limited[0]["why"] == "too many wrong passwords for this account"


def test_a_request_cannot_be_forged_or_replayed(run_admin: Any, tmp_path: Path) -> None:
    admin = run_admin()
    refs = record_blocks(
        admin.proxy_audit,
        {"user": "a.nother"},
        {"event": "access.exception", "user": "j.smith", "exemption_id": "EX-1"},
    )
    blocked, allowed = refs
    staff = admin.client()
    # A reference that is not in the proxy's log: refused, recorded.
    made_up = staff.get("/request", params={"ref": "SG-AAAAAAAAAA"})
    assert made_up.status_code == 404
    # A real reference that is not a block (someone's allowed use): refused too.
    assert staff.get("/request", params={"ref": allowed}).status_code == 404
    page = staff.get("/request", params={"ref": blocked})
    assert page.status_code == 200
    assert "Facebook" in page.text
    assert "a.nother" in page.text
    token = token_of(page.text)
    # Posting a made-up reference with a good token: still refused.
    forged = staff.post("/request", data={"csrf": token, "ref": "SG-BBBBBBBBBB", "purpose": "x"})
    assert forged.status_code == 404
    sent = staff.post(
        "/request",
        data={"csrf": token, "ref": blocked, "purpose": "Run the flu clinic page",
              "name": "Someone Else"},
    )  # fmt: skip
    assert sent.status_code == 303
    replay = staff.post("/request", data={"csrf": token, "ref": blocked, "purpose": "again"})
    assert replay.status_code == 409
    answer = staff.get("/answer", params={"ref": blocked})
    assert "Waiting for the Practice Manager" in answer.text
    requested = admin.events("exemption.requested")
    assert len(requested) == 1
    # Bound to the block: who and what come from the proxy's event, not from the form.
    assert requested[0]["who"] == "user a.nother"
    assert requested[0]["service"] == "facebook"
    refused = admin.events("exemption.request_refused")
    assert [e["why"] for e in refused] == [
        "no such block", "no such block", "no such block", "already requested",
    ]  # fmt: skip
    assert refused[0]["reference"] == "SG-AAAAAAAAAA"


def test_the_page_chain_verifies(run_admin: Any) -> None:
    admin = run_admin()
    with admin.client() as client:
        admin.sign_in(client, password="nope")
        admin.sign_in(client)
    admin.stop()
    for named in (admin.admin_audit, admin.admin_audit.parent):  # the file, or its folder
        verified = admin.cli("audit", "verify", str(named))
        assert verified.returncode == 0, verified.stdout + verified.stderr
        assert "OK: 3 events" in verified.stdout
    names = [e["event"] for e in admin.events()]
    assert names == ["admin.started", "admin.signin_failed", "admin.signed_in"]
    assert not admin.proxy_audit.exists()  # the page never writes the proxy's log


def test_plain_http_beyond_loopback_gets_no_cookie(run_admin: Any) -> None:
    """Reached over plain HTTP from another machine, the page signs nobody in."""
    lan = _lan_address()
    if lan is None:
        pytest.skip("this machine has no non-loopback address to reach itself by")
    admin = run_admin(host="0.0.0.0")  # noqa: S104 - as IT would put it on the LAN
    url = f"http://{lan}:{admin.port}"
    page = httpx.get(f"{url}/sign-in", timeout=10)
    assert page.status_code == 403
    assert "set-cookie" not in page.headers
    assert "HTTPS" in page.text
    posted = httpx.post(
        f"{url}/sign-in", data={"username": APPROVER, "password": PASSWORD}, timeout=10
    )
    assert "set-cookie" not in posted.headers
    assert admin.events("admin.signin_failed")[0]["why"] == "plain HTTP"
    # The page's own machine (loopback) is not affected: only the address it was reached on.


def _lan_address() -> str | None:
    """This machine's own non-loopback address (a UDP connect sends nothing)."""
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.connect(("10.255.255.255", 1))
            address = str(s.getsockname()[0])
    except OSError:
        return None
    return None if address.startswith("127.") else address


def test_over_https_the_cookies_are_secure(run_admin: Any, tmp_path: Path) -> None:
    """With the certificate IT names (admin.tls_cert/tls_key) the page speaks HTTPS only."""
    cert, key = self_signed(tmp_path)
    admin = run_admin(admin_extra=f"  tls_cert: {cert}\n  tls_key: {key}\n")
    url = f"https://{LOOPBACK}:{admin.port}"
    with httpx.Client(base_url=url, verify=ssl.create_default_context(cafile=str(cert)),
                      timeout=10) as client:  # fmt: skip
        page = client.get("/sign-in")
        assert page.status_code == 200
        assert "secure" in page.headers["set-cookie"].lower()
        form = {"csrf": token_of(page.text), "username": APPROVER, "password": PASSWORD}
        signed = client.post("/sign-in", data=form)
        assert signed.status_code == 303
        session = signed.headers["set-cookie"].lower()
        assert "secure" in session
        assert "httponly" in session
        assert "samesite=strict" in session
        assert "EX-" in client.get("/").text
    with pytest.raises(httpx.HTTPError):  # no plain HTTP on the same port
        httpx.get(f"http://{LOOPBACK}:{admin.port}/sign-in", timeout=5)


def test_a_signed_out_session_cannot_be_used_again(run_admin: Any) -> None:
    admin = run_admin()
    with admin.client() as client:
        signed = admin.sign_in(client)
        cookie = signed.cookies["sg_session"]
        token = token_of(client.get("/").text)
        assert client.post("/sign-out", data={"csrf": token}).status_code == 303
        client.cookies.set("sg_session", cookie)  # a copy kept from before signing out
        assert client.get("/").status_code == 303
    assert [e["user"] for e in admin.events("admin.signed_out")] == [APPROVER]
