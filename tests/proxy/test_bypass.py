"""Each known way around the decision, tried with a real client through the real proxy and
refused (docs/BYPASSES.md lists them). The upstream is the loopback "internet", which records
every request that reached it: no social-media name may ever appear there.
"""

from __future__ import annotations

import http.server
import json
import socket
import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from socialguard.proxy.alt_svc import strip_quic_alt_svc
from tests.loopback import LOOPBACK, ORIGIN_BODY, _Server, serving
from tests.proxy.conftest import RunningProxy
from tests.proxy.test_blockpage_https import (
    access_events,
    assert_nothing_social_left,
    ca_file,
    get,
    start_page_proxy,
    tls_exchange,
)

WEBSOCKET = (
    "Upgrade: websocket",
    "Connection: Upgrade",
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
    "Sec-WebSocket-Version: 13",
)


@pytest.fixture
def page_proxy(run_proxy: Any, tmp_path: Path, internet: tuple[int, list[str]]) -> RunningProxy:
    port, _seen = internet
    proxy: RunningProxy = start_page_proxy(run_proxy, tmp_path, port)
    return proxy


@pytest.fixture
def refuse_proxy(run_proxy: Any, internet: tuple[int, list[str]]) -> RunningProxy:
    port, _seen = internet
    proxy: RunningProxy = run_proxy("--upstream", f"http://{LOOPBACK}:{port}")
    return proxy


def fullwidth(text: str) -> str:
    """The full-width Unicode form of ASCII text (U+FF01…): a browser maps it back to ASCII."""
    return "".join(chr(ord(c) + 0xFEE0) for c in text)


def raw(proxy: RunningProxy, request: bytes) -> bytes:
    with socket.create_connection((LOOPBACK, proxy.port), timeout=10) as s:
        s.sendall(request)
        s.settimeout(5)
        try:
            return s.recv(65536)
        except TimeoutError:
            return b""


# -- SNI and CONNECT disagree ---------------------------------------------------------------


def test_blocked_sni_inside_allowed_connect_gets_the_page(
    page_proxy: RunningProxy, origin, internet
) -> None:
    """CONNECT to an allowed origin with a blocked SNI: intercepted and answered, never relayed."""
    port, _cert = origin
    before = len(internet[1])
    answer, _shown = tls_exchange(
        page_proxy, f"localhost:{port}", "www.facebook.com", get("www.facebook.com"),
        ca_file(page_proxy),
    )  # fmt: skip
    assert answer.startswith(b"HTTP/1.1 403")
    assert b"Facebook" in answer
    assert ORIGIN_BODY not in answer
    (event,) = access_events(page_proxy, 1)
    assert (event["host"], event["via"]) == ("www.facebook.com", "tls")
    assert_nothing_social_left(internet[1])
    assert internet[1][before:] == []  # not even the allowed origin was reached


def test_allowed_sni_inside_blocked_connect_is_blocked(page_proxy: RunningProxy, internet) -> None:
    """CONNECT to a blocked name with an innocent SNI and Host is still the blocked name."""
    answer, _shown = tls_exchange(
        page_proxy, "www.facebook.com:443", "localhost", get("localhost"), ca_file(page_proxy)
    )
    assert answer.startswith(b"HTTP/1.1 403")
    assert b"Facebook" in answer
    assert_nothing_social_left(internet[1])


def test_allowed_sni_inside_blocked_connect_is_refused_in_refuse_mode(
    refuse_proxy: RunningProxy, internet
) -> None:
    """Without page mode a blocked CONNECT never opens, whatever SNI would follow."""
    answer = raw(refuse_proxy, b"CONNECT www.facebook.com:443 HTTP/1.1\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 403")
    assert_nothing_social_left(internet[1])


def test_blocked_sni_to_an_ip_literal_is_refused(refuse_proxy: RunningProxy, origin) -> None:
    """CONNECT to an IP names nothing, but a ClientHello naming a blocked service is refused."""
    port, _cert = origin
    with pytest.raises(ssl.SSLError, match="ACCESS_DENIED"):
        tls_exchange(refuse_proxy, f"{LOOPBACK}:{port}", "www.instagram.com", get("x"), None)


def test_ip_literal_without_a_name_passes_as_not_named(refuse_proxy: RunningProxy, origin) -> None:
    """CONNECT to an IP literal with no SNI is decided "not named" and relayed undecrypted."""
    port, _cert = origin
    answer, _shown = tls_exchange(refuse_proxy, f"{LOOPBACK}:{port}", None, get("x"), None)
    assert answer.endswith(ORIGIN_BODY)
    assert access_events(refuse_proxy, 0) == []


# -- requests on an intercepted connection ----------------------------------------------------


@pytest.mark.parametrize(
    ("host", "named"),
    [
        ("www.facebook.com", b"Facebook"),  # the request's own blocked host is named
        ("localhost", b"Instagram"),  # an innocent Host cannot unblock the connection
        ("example.org", b"Instagram"),
    ],
)
def test_every_request_on_an_intercepted_connection_is_decided(
    page_proxy: RunningProxy, internet, host: str, named: bytes
) -> None:
    """HTTP/1 Host differing from CONNECT and SNI: the blocked answer wins, nothing leaves."""
    before = len(internet[1])
    answer, _shown = tls_exchange(
        page_proxy, "www.instagram.com:443", "www.instagram.com", get(host), ca_file(page_proxy)
    )
    assert answer.startswith(b"HTTP/1.1 403")
    assert named in answer
    assert_nothing_social_left(internet[1])
    assert internet[1][before:] == []


@pytest.mark.parametrize(
    ("authority", "service"), [("www.facebook.com", "facebook"), ("localhost", "instagram")]
)
def test_http2_authority_is_decided(
    page_proxy: RunningProxy, internet, authority: str, service: str
) -> None:
    """HTTP/2 requests are decided on their own :authority as well as the connection's names."""
    body = page_proxy.tmp / "answer.json"
    result = page_proxy.curl(
        "--http2", "--cacert", str(ca_file(page_proxy)), "-o", str(body),
        "-w", "%{http_version}|%{http_code}", "-H", f"Host: {authority}",
        "-H", "Accept: application/json", "https://www.instagram.com/",
    )  # fmt: skip
    assert result.stdout == "2|403", result.stderr
    assert json.loads(body.read_text())["service"] == service
    assert_nothing_social_left(internet[1])


def test_non_http_bytes_in_a_blocked_tunnel_are_not_relayed(
    page_proxy: RunningProxy, internet
) -> None:
    """A blocked tunnel carrying something that is neither TLS nor HTTP goes nowhere."""
    with socket.create_connection((LOOPBACK, page_proxy.port), timeout=10) as s:
        s.sendall(b"CONNECT chat.whatsapp.com:443 HTTP/1.1\r\n\r\n")
        assert s.recv(4096).startswith(b"HTTP/1.1 200")
        s.sendall(b"WA\x05\x02\x00\x00\x01noise handshake\n")
        s.settimeout(5)
        try:
            answer = s.recv(4096)
        except (TimeoutError, ConnectionResetError):
            answer = b""
    assert not answer.startswith(b"HTTP/1.1 200")
    assert not any("whatsapp" in seen for seen in internet[1])


# -- WebSocket ---------------------------------------------------------------------------------


def test_websocket_upgrade_over_plain_http_is_blocked(refuse_proxy: RunningProxy, internet) -> None:
    """A ws:// upgrade to a blocked service is answered 403 and never upgraded."""
    request = "\r\n".join(
        ["GET http://gateway.facebook.com/ws HTTP/1.1", "Host: gateway.facebook.com", *WEBSOCKET]
    )
    answer = raw(refuse_proxy, (request + "\r\n\r\n").encode())
    assert answer.startswith(b"HTTP/1.1 403")
    assert b"101" not in answer.split(b"\r\n")[0]
    assert_nothing_social_left(internet[1])


def test_websocket_upgrade_over_tls_is_blocked(page_proxy: RunningProxy, internet) -> None:
    """A wss:// upgrade to a blocked service on an intercepted connection is answered 403."""
    request = get("edge-chat.facebook.com", *WEBSOCKET).replace(b"Connection: close\r\n", b"")
    answer, _shown = tls_exchange(
        page_proxy, "edge-chat.facebook.com:443", "edge-chat.facebook.com", request,
        ca_file(page_proxy),
    )  # fmt: skip
    assert answer.startswith(b"HTTP/1.1 403")
    assert_nothing_social_left(internet[1])


# -- spellings of one name ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "target",
    [
        "WWW.FaceBook.COM:443",  # mixed case
        "www.facebook.com.:443",  # trailing dot
        "WWW.FACEBOOK.COM.:443",
    ],
)
def test_spellings_of_a_blocked_connect_are_refused(
    refuse_proxy: RunningProxy, internet, target: str
) -> None:
    """Mixed case and a trailing dot name the same service."""
    answer = raw(refuse_proxy, f"CONNECT {target} HTTP/1.1\r\n\r\n".encode())
    assert answer.startswith(b"HTTP/1.1 403")
    assert_nothing_social_left(internet[1])


@pytest.mark.parametrize(
    "host",
    [
        "WWW.FACEBOOK.COM",
        "www.facebook.com.",
        fullwidth("www.facebook.com"),  # UTS #46 maps full-width forms to www.facebook.com
        fullwidth("FACEBOOK") + ".com",
    ],
)
def test_spellings_of_a_blocked_host_header_are_blocked(
    refuse_proxy: RunningProxy, internet, host: str
) -> None:
    """Case, trailing dot and Unicode forms of a blocked name in the Host header are blocked."""
    request = f"GET http://news.example.org/ HTTP/1.1\r\nHost: {host}\r\n\r\n".encode()
    answer = raw(refuse_proxy, request)
    assert answer.startswith((b"HTTP/1.1 403", b"HTTP/1.1 400"))
    assert not any("news.example.org" in seen for seen in internet[1])
    assert_nothing_social_left(internet[1])


def test_idn_service_in_a_practice_catalogue_is_blocked(
    run_proxy: Any, tmp_path: Path, internet
) -> None:
    """A service listed by its IDN (A-label) is matched in punycode and in Unicode, any case."""
    extra = tmp_path / "extra.yaml"
    extra.write_text(
        "version: 1\nservices:\n  vk:\n    name: VK\n    category: social-networking\n"
        "    domains: [xn--80adksbqg7ac.xn--p1ai]\n"  # вконтакте.рф
    )
    config = tmp_path / "policy.yaml"
    config.write_text(f"catalogs: [{extra}]\n")
    port, seen = internet
    proxy = run_proxy("--config", str(config), "--upstream", f"http://{LOOPBACK}:{port}")
    punycode = "xn--80adksbqg7ac.xn--p1ai"
    assert raw(proxy, f"CONNECT www.{punycode}:443 HTTP/1.1\r\n\r\n".encode()).startswith(
        b"HTTP/1.1 403"
    )
    unicode_host = "GET http://ok.example.org/ HTTP/1.1\r\nHost: ВКонтакте.рф\r\n\r\n"
    assert raw(proxy, unicode_host.encode()).startswith((b"HTTP/1.1 403", b"HTTP/1.1 400"))
    assert not any(punycode in s or "ok.example.org" in s for s in seen)


def test_absolute_form_with_a_blocked_host_header_is_blocked(
    page_proxy: RunningProxy, internet
) -> None:
    """`GET http://allowed/` carrying `Host: <blocked>` is blocked, in page mode as in refuse."""
    request = b"GET http://news.example.org/ HTTP/1.1\r\nHost: www.tiktok.com\r\n\r\n"
    answer = raw(page_proxy, request)
    assert answer.startswith(b"HTTP/1.1 403")
    assert not any("news.example.org" in seen for seen in internet[1])


# -- HTTP/3 advertisements ---------------------------------------------------------------------


class _AltSvcHandler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Alt-Svc", 'h3=":443"; ma=86400, h3-29=":443", h2=":8443"; ma=60')
        self.send_header("Alt-Svc", 'quic=":443"')
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def alt_svc_origin() -> Iterator[int]:
    server = _Server((LOOPBACK, 0), _AltSvcHandler)
    with serving(server):
        yield server.server_address[1]


def test_alt_svc_h3_is_stripped(run_proxy: Any, alt_svc_origin: int) -> None:
    """Responses through the proxy lose their HTTP/3 advertisements and keep the rest."""
    proxy = run_proxy()
    with httpx.Client(proxy=proxy.url, timeout=10) as client:
        response = client.get(f"http://{LOOPBACK}:{alt_svc_origin}/")
    assert response.text == "ok"
    assert response.headers.get_list("alt-svc") == ['h2=":8443"; ma=60']


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ('h3=":443"; ma=86400', None),
        ('h3-29=":443", h3-Q050=":443"', None),
        ('h2=":443", h3=":443"', 'h2=":443"'),
        ("clear", "clear"),
        ('h2="alt.example:443"; ma=60, H3=":443"', 'h2="alt.example:443"; ma=60'),
        ('h2="a,b:443"', 'h2="a,b:443"'),
        ('hq-interop=":443"', None),
    ],
)
def test_strip_quic_alt_svc(value: str, expected: str | None) -> None:
    """Only the QUIC alternatives are removed; quoted commas do not split an alternative."""
    assert strip_quic_alt_svc(value) == expected
