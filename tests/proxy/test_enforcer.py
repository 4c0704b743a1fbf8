"""The enforcer through the real proxy (`socialguard run`), driven by curl, httpx and raw
sockets on loopback. No test resolves or connects to a real social-media host: allowed social
traffic goes to the loopback "internet" given as --upstream.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import re
import socket
import ssl
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from tests.loopback import INTERNET_BODY, LOOPBACK, ORIGIN_BODY
from tests.proxy.conftest import PASSWORD, SOCIALGUARD, RunningProxy

TODAY = dt.datetime.now(dt.UTC).date()


def authorisations(tmp: Path) -> Path:
    path = tmp / "authorisations.yaml"
    path.write_text(
        f"""# test list
approvers: [practice.manager]
exemptions:
  - id: EX-2026-001
    who: {{user: j.smith}}
    services: [facebook]
    purpose: Maintain the practice Facebook page
    approved_by: practice.manager
    approved_on: {TODAY - dt.timedelta(days=30)}
    expires: {TODAY + dt.timedelta(days=300)}
  - id: EX-2025-007
    who: {{user: k.jones}}
    services: [facebook]
    purpose: Run the flu clinic campaign page
    approved_by: practice.manager
    approved_on: {TODAY - dt.timedelta(days=400)}
    expires: {TODAY - dt.timedelta(days=40)}
"""
    )
    return path


@pytest.fixture
def proxy(run_proxy, tmp_path: Path, htpasswd: Path, internet) -> RunningProxy:
    """The proxy with proxy sign-in, two exemptions and the loopback internet upstream."""
    port, _seen = internet
    return run_proxy(
        "--authorisations", str(authorisations(tmp_path)),
        "--proxyauth", f"@{htpasswd}",
        "--upstream", f"http://{LOOPBACK}:{port}",
    )  # fmt: skip


@pytest.fixture
def plain_proxy(run_proxy) -> RunningProxy:
    """The proxy on its embedded defaults: no sign-in, direct connections (loopback only)."""
    return run_proxy()


def access_events(proxy: RunningProxy, wait_for: int) -> list[dict[str, object]]:
    return [e for e in proxy.events(wait_for) if str(e["event"]).startswith("access.")]


def test_http_social_media_gets_the_block_page(proxy: RunningProxy) -> None:
    """Plain HTTP to Facebook is answered 403 with a page naming service, reason and reference."""
    result = proxy.curl("-w", "\n%{http_code}", "http://www.facebook.com/", user="a.nother")
    body, _, code = result.stdout.rpartition("\n")
    assert code == "403"
    assert "Social media is not allowed on the practice network" in body
    assert "Facebook" in body
    assert "social networking" in body
    assert "Practice Manager" in body
    reference = re.search(r"<code>(SG-[A-Z0-9]+)</code>", body)
    assert reference is not None
    (event,) = access_events(proxy, 1)
    assert event["event"] == "access.blocked"
    assert event["id"] == reference.group(1)
    assert event["user"] == "a.nother"
    assert event["service"] == "facebook"
    assert event["reason"] == "not_authorised"


def test_https_social_media_is_refused_at_connect(proxy: RunningProxy) -> None:
    """A CONNECT to TikTok gets 403: no tunnel, no interception, no CA needed."""
    result = proxy.curl("https://www.tiktok.com/", user="a.nother")
    assert result.returncode == 56
    assert "CONNECT tunnel failed, response 403" in result.stderr
    (event,) = access_events(proxy, 1)
    assert (event["host"], event["service"], event["via"]) == (
        "www.tiktok.com",
        "tiktok",
        "connect",
    )


def test_allowed_https_is_a_plain_tunnel(plain_proxy: RunningProxy, origin) -> None:
    """A non-social HTTPS site passes undecrypted: the client verifies the origin's own cert."""
    port, cert = origin
    result = plain_proxy.curl("--cacert", str(cert), f"https://localhost:{port}/")
    assert result.returncode == 0, result.stderr
    assert result.stdout.encode() == ORIGIN_BODY
    with httpx.Client(proxy=plain_proxy.url, verify=ssl.create_default_context(cafile=cert)) as c:
        assert c.get(f"https://localhost:{port}/", timeout=10).content == ORIGIN_BODY
    assert access_events(plain_proxy, 0) == []


def test_exempted_user_reaches_the_service(proxy: RunningProxy, internet) -> None:
    """j.smith holds EX-2026-001 for Facebook: the request goes upstream and is recorded."""
    _port, seen = internet
    result = proxy.curl("http://www.facebook.com/page", user="j.smith")
    assert result.stdout.encode() == INTERNET_BODY
    assert "http://www.facebook.com/page" in seen
    (event,) = access_events(proxy, 1)
    assert event["event"] == "access.exception"
    assert (event["user"], event["exemption_id"]) == ("j.smith", "EX-2026-001")
    assert event["purpose"] == "Maintain the practice Facebook page"
    assert PASSWORD not in proxy.audit.read_text()


def test_exempted_user_tunnel_is_recorded_once(proxy: RunningProxy, origin) -> None:
    """An exempted HTTPS tunnel is one access.exception event at CONNECT time."""
    result = proxy.curl("https://www.facebook.com/", user="j.smith")
    # The loopback internet refuses to relay to a real host: the proxy let it through.
    assert "403" not in result.stderr
    (event,) = access_events(proxy, 1)
    assert (event["event"], event["via"]) == ("access.exception", "connect")


def test_expired_exemption_is_blocked_and_says_when(proxy: RunningProxy) -> None:
    """k.jones's exemption expired 40 days ago: blocked, and the page names the expiry date."""
    result = proxy.curl("-w", "\n%{http_code}", "http://www.facebook.com/", user="k.jones")
    body, _, code = result.stdout.rpartition("\n")
    expired_on = TODAY - dt.timedelta(days=40)
    assert code == "403"
    assert f"EX-2025-007 expired on {expired_on.day} {expired_on:%B %Y}" in body
    (event,) = access_events(proxy, 1)
    assert (event["reason"], event["exemption_id"]) == ("exemption_expired", "EX-2025-007")


def test_wrong_password_gets_407_not_an_exemption(proxy: RunningProxy) -> None:
    """A wrong password for an exempted user is refused by proxy sign-in."""
    result = subprocess.run(
        ["curl", "-s", "-m", "10", "-x", proxy.url, "-U", "j.smith:wrong", "-o", "/dev/null",
         "-w", "%{http_code}", "http://www.facebook.com/"],
        capture_output=True, text=True, timeout=20, check=False,
    )  # fmt: skip
    assert result.stdout == "407"


@pytest.mark.parametrize(
    ("url", "host_header"),
    [
        ("http://news.example.invalid/", "www.facebook.com"),
        ("http://www.facebook.com/", "news.example.invalid"),
        ("http://WWW.FaceBook.COM./", None),
        ("http://m.facebook.com:8080/", None),
    ],
)
def test_http_host_and_host_header_are_both_decided(
    plain_proxy: RunningProxy, url: str, host_header: str | None
) -> None:
    """Absolute-form host and Host header are both decided; a blocked one wins."""
    extra = ["-H", f"Host: {host_header}"] if host_header else []
    result = plain_proxy.curl("-o", "/dev/null", "-w", "%{http_code}", *extra, url)
    assert result.stdout == "403"


def test_allowed_sni_check_refuses_blocked_sni(plain_proxy: RunningProxy, origin) -> None:
    """A CONNECT to an allowed name carrying a blocked SNI is refused with a TLS alert."""
    port, _cert = origin
    result = plain_proxy.curl(
        "-k", "--connect-to", f"www.facebook.com:443:localhost:{port}", "https://www.facebook.com/"
    )
    assert result.returncode != 0
    assert "access denied" in result.stderr.lower()
    (event,) = access_events(plain_proxy, 1)
    assert (event["host"], event["via"]) == ("www.facebook.com", "tls")


def client_hello(server_name: str) -> bytes:
    """The bytes of a real TLS ClientHello for `server_name`, made by Python's ssl module."""
    context = ssl.create_default_context()
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = context.wrap_bio(incoming, outgoing, server_hostname=server_name)
    with pytest.raises(ssl.SSLWantReadError):
        tls.do_handshake()
    return outgoing.read()


def test_split_client_hello_is_waited_for(plain_proxy: RunningProxy, origin) -> None:
    """A ClientHello split across two TCP writes is read whole, and its blocked SNI refused."""
    port, _cert = origin
    hello = client_hello("www.instagram.com")
    with socket.create_connection((LOOPBACK, plain_proxy.port), timeout=10) as s:
        s.sendall(f"CONNECT localhost:{port} HTTP/1.1\r\nHost: localhost:{port}\r\n\r\n".encode())
        assert s.recv(4096).startswith(b"HTTP/1.1 200")
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        s.sendall(hello[:40])
        time.sleep(0.3)
        s.sendall(hello[40:])
        answer = s.recv(4096)
    assert answer[:1] == b"\x15"  # a TLS alert, not the origin's ServerHello (0x16)
    assert answer[-1] == 49  # access_denied
    (event,) = access_events(plain_proxy, 1)
    assert event["service"] == "instagram"


def raw_request(proxy: RunningProxy, request: bytes) -> bytes:
    with socket.create_connection((LOOPBACK, proxy.port), timeout=10) as s:
        s.sendall(request)
        return s.recv(4096)


def test_malformed_host_gets_400_and_an_event(plain_proxy: RunningProxy) -> None:
    """A request whose Host header cannot be a host name is answered 400 and recorded."""
    answer = raw_request(plain_proxy, b"GET http://ok.example/ HTTP/1.1\r\nHost: bad!host\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 400")
    assert b"X-Socialguard: blocked" in answer
    (event,) = access_events(plain_proxy, 1)
    assert (event["reason"], event["host"]) == ("malformed_host", "bad!host")


def test_unparseable_request_gets_400_and_the_proxy_goes_on(plain_proxy: RunningProxy) -> None:
    """A request line mitmproxy cannot parse is answered 400 by mitmproxy; nothing crashes."""
    answer = raw_request(plain_proxy, b"GET http://bad!host.example/ HTTP/1.1\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 400")
    result = plain_proxy.curl("-o", "/dev/null", "-w", "%{http_code}", "http://www.reddit.com/")
    assert result.stdout == "403"
    assert plain_proxy.process.poll() is None


def test_non_social_traffic_is_not_logged(plain_proxy: RunningProxy, origin) -> None:
    """Allowed non-social traffic leaves no event in the audit log."""
    port, cert = origin
    for _ in range(3):
        plain_proxy.curl("--cacert", str(cert), f"https://localhost:{port}/")
    events = plain_proxy.events()
    assert [e["event"] for e in events] == ["policy.loaded"]


def test_invalid_policy_stops_run_before_it_listens(tmp_path: Path) -> None:
    """An unapproved exemption stops `run` with file, line and fix, exit 1, no traceback."""
    bad = authorisations(tmp_path)
    bad.write_text(bad.read_text().replace("approved_by: practice.manager", "approved_by: x.y", 1))
    result = subprocess.run(
        [*SOCIALGUARD, "run", "--listen", f"{LOOPBACK}:1", "--authorisations", str(bad)],
        capture_output=True, text=True, timeout=60, check=False, cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert f"{bad}:8: exemptions[0] (EX-2026-001).approved_by: 'x.y' is not on the approvers" in (
        result.stderr
    )


def test_proxy_keeps_running_after_client_garbage(plain_proxy: RunningProxy) -> None:
    """Garbage bytes and a half-open CONNECT never crash the proxy."""
    for payload in (b"\x00\x01\x02garbage\r\n\r\n", b"CONNECT\r\n\r\n", b"\x16\x03\x01\x00\x05abc"):
        with socket.create_connection((LOOPBACK, plain_proxy.port), timeout=5) as s:
            s.sendall(payload)
            s.settimeout(2)
            with contextlib.suppress(TimeoutError):
                s.recv(1024)
    result = plain_proxy.curl("-o", "/dev/null", "-w", "%{http_code}", "http://www.reddit.com/")
    assert result.stdout == "403"
    assert plain_proxy.process.poll() is None


def test_the_proxy_serves_no_page_of_its_own_at_mitm_it(proxy: RunningProxy, internet) -> None:
    """mitmproxy's onboarding site is not in the chain: http://mitm.it/ is a site like any
    other (here the loopback internet answers), not a page about mitmproxy from the gateway."""
    _port, seen = internet
    result = proxy.curl("http://mitm.it/", user="j.smith")
    assert result.stdout.encode() == INTERNET_BODY
    assert "http://mitm.it/" in seen
