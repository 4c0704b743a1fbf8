"""`https_block: page` through the real proxy: blocked HTTPS is intercepted with the gateway's CA
and answered with the block page (HTML for browsers, JSON or text for apps); allowed HTTPS stays
a plain tunnel; `socialguard ca export` hands out the certificate and never the key.

Every social-media name here stays inside the proxy: blocked connections are answered without
connecting anywhere, and the upstream is the loopback "internet", which records what reached it.
"""

from __future__ import annotations

import json
import re
import signal
import socket
import ssl
import stat
import subprocess
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from socialguard.cli.app import main
from tests.loopback import LOOPBACK, ORIGIN_BODY, free_port, wait_for_port
from tests.proxy.conftest import SOCIALGUARD, RunningProxy

SOCIAL = ("facebook", "instagram", "tiktok", "fbcdn", "cdninstagram")


def start_page_proxy(run_proxy: Any, tmp_path: Path, upstream: int | None, *extra: str) -> Any:
    """`socialguard run` with `https_block: page`; upstream is the loopback internet's port."""
    config = tmp_path / "policy.yaml"
    config.write_text(
        "https_block: page\n"
        "practice: {name: Riverside Surgery, contact: 'Mrs Patel, Practice Manager',"
        " policy_url: 'https://intranet.example/policies/social-media'}\n"
    )
    args = ["--config", str(config), *extra]
    if upstream is not None:
        args += ["--upstream", f"http://{LOOPBACK}:{upstream}"]
    return run_proxy(*args)


def ca_file(proxy: RunningProxy) -> Path:
    """The CA certificate the proxy signs with (conftest gives each proxy its own --confdir)."""
    return proxy.tmp / "mitmproxy" / "mitmproxy-ca-cert.pem"


def tls_exchange(
    proxy: RunningProxy,
    connect: str,
    sni: str | None,
    request: bytes,
    cafile: Path | None,
    alpn: list[str] | None = None,
) -> tuple[bytes, x509.Certificate | None]:
    """CONNECT `connect`, speak TLS with `sni` (verified against `cafile`), send `request`;
    returns what came back and the certificate the client was shown."""
    with socket.create_connection((LOOPBACK, proxy.port), timeout=10) as raw:
        raw.sendall(f"CONNECT {connect} HTTP/1.1\r\nHost: {connect}\r\n\r\n".encode())
        head = raw.recv(4096)
        if not head.startswith(b"HTTP/1.1 200"):
            return head, None
        context = ssl.create_default_context(cafile=str(cafile) if cafile else None)
        context.check_hostname = False  # the SNI is deliberately not always the CONNECT name
        if cafile is None:
            context.verify_mode = ssl.CERT_NONE
        if alpn:
            context.set_alpn_protocols(alpn)
        with context.wrap_socket(raw, server_hostname=sni) as tls:
            der = tls.getpeercert(binary_form=True)
            cert = x509.load_der_x509_certificate(der) if der else None
            tls.sendall(request)
            chunks = []
            while len(b"".join(chunks)) < 1_000_000:
                try:
                    chunk = tls.recv(65536)
                except (TimeoutError, ssl.SSLError, OSError):
                    break
                if not chunk:
                    break
                chunks.append(chunk)
                if b"\r\n\r\n" in b"".join(chunks) and _complete(b"".join(chunks)):
                    break
            return b"".join(chunks), cert


def _complete(data: bytes) -> bool:
    head, _, body = data.partition(b"\r\n\r\n")
    length = re.search(rb"(?i)content-length:\s*(\d+)", head)
    return length is None or len(body) >= int(length.group(1))


def get(host: str, *headers: str) -> bytes:
    lines = ["GET / HTTP/1.1", f"Host: {host}", *headers, "Connection: close", "", ""]
    return "\r\n".join(lines).encode()


def assert_nothing_social_left(seen: list[str]) -> None:
    """The loopback internet was never asked for a social-media host."""
    leaked = [s for s in seen if any(name in s.lower() for name in SOCIAL)]
    assert leaked == []


def access_events(proxy: RunningProxy, wait_for: int) -> list[dict[str, Any]]:
    return [e for e in proxy.events(wait_for) if str(e["event"]).startswith("access.")]


@pytest.fixture
def page_proxy(run_proxy: Any, tmp_path: Path, internet: tuple[int, list[str]]) -> RunningProxy:
    port, _seen = internet
    proxy: RunningProxy = start_page_proxy(run_proxy, tmp_path, port)
    return proxy


def test_blocked_https_gets_the_block_page(page_proxy: RunningProxy, internet) -> None:
    """With the CA trusted, blocked HTTPS shows the page; its reference is the CONNECT event's."""
    _port, seen = internet
    result = page_proxy.curl(
        "--cacert", str(ca_file(page_proxy)), "-w", "\n%{http_code}", "https://www.instagram.com/"
    )
    body, _, code = result.stdout.rpartition("\n")
    assert code == "403", result.stderr
    assert '<html lang="en-GB">' in body
    assert "Instagram" in body
    assert "Riverside Surgery" in body
    assert "Mrs Patel, Practice Manager" in body
    assert 'href="https://intranet.example/policies/social-media"' in body
    reference = re.search(r"<code>(SG-[A-Z0-9]+)</code>", body)
    assert reference is not None
    (event,) = access_events(page_proxy, 1)
    assert (event["id"], event["via"], event["service"]) == (
        reference.group(1),
        "connect",
        "instagram",
    )
    assert_nothing_social_left(seen)


@pytest.mark.parametrize(
    ("headers", "content_type"),
    [
        (["-H", "Accept: application/json"], "application/json"),
        (["-H", "X-Requested-With: XMLHttpRequest"], "text/plain; charset=utf-8"),
        (["-H", "Accept: image/webp,*/*"], "text/plain; charset=utf-8"),
    ],
)
def test_api_calls_get_a_short_403(
    page_proxy: RunningProxy, headers: list[str], content_type: str
) -> None:
    """An app's API call or an XHR over intercepted HTTPS gets JSON or text, never the page."""
    body_file = page_proxy.tmp / "answer"
    result = page_proxy.curl(
        "--cacert", str(ca_file(page_proxy)), "-o", str(body_file),
        "-w", "%{http_code}|%{content_type}", *headers, "https://graph.facebook.com/v19.0/me",
    )  # fmt: skip
    assert result.stdout == f"403|{content_type}", result.stderr
    body = body_file.read_text()
    assert "<html" not in body
    if content_type == "application/json":
        answer = json.loads(body)
        assert (answer["service"], answer["reason"]) == ("facebook", "not_authorised")
        assert answer["reference"].startswith("SG-")
    else:
        assert "Facebook" in body


def test_allowed_https_stays_a_plain_tunnel(page_proxy: RunningProxy, origin) -> None:
    """In page mode an allowed site is not intercepted: the client sees the origin's own cert."""
    port, cert_path = origin
    origin_cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    answer, shown = tls_exchange(
        page_proxy, f"localhost:{port}", "localhost", get("localhost"), cert_path
    )
    assert shown == origin_cert
    assert answer.endswith(ORIGIN_BODY)
    assert access_events(page_proxy, 0) == []


def test_device_without_the_ca_is_still_recorded(page_proxy: RunningProxy) -> None:
    """A device that does not trust the CA sees a TLS error, and the attempt is still recorded."""
    result = page_proxy.curl("https://www.tiktok.com/")
    assert result.returncode == 60  # curl: peer certificate cannot be authenticated
    (event,) = access_events(page_proxy, 1)
    assert (event["event"], event["service"], event["via"]) == (
        "access.blocked",
        "tiktok",
        "connect",
    )


def test_intercepted_certificate_is_signed_by_the_exported_ca(
    page_proxy: RunningProxy, tmp_path: Path
) -> None:
    """`ca export` hands out the very CA that signs block pages, and never its key."""
    out = tmp_path / "export"
    result = CliRunner().invoke(
        main, ["ca", "export", "--confdir", str(page_proxy.tmp / "mitmproxy"), "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    exported = x509.load_pem_x509_certificate((out / "socialguard-ca.pem").read_bytes())
    _answer, shown = tls_exchange(
        page_proxy, "www.instagram.com:443", "www.instagram.com", get("www.instagram.com"),
        out / "socialguard-ca.pem",
    )  # fmt: skip
    assert shown is not None
    assert shown.issuer == exported.subject
    shown.verify_directly_issued_by(exported)


def test_ca_export_before_the_proxy_ever_ran(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`ca export` creates the CA if missing: key 0600 in a 0700 directory, never exported."""
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, ["ca", "export", "--out", "export"])
    assert result.exit_code == 0, result.output
    ca_dir = tmp_path / "var" / "ca"
    assert stat.S_IMODE(ca_dir.stat().st_mode) == 0o700
    assert stat.S_IMODE((ca_dir / "mitmproxy-ca.pem").stat().st_mode) == 0o600
    files = sorted(p.name for p in (tmp_path / "export").iterdir())
    assert files == [
        "INSTALL.txt",
        "socialguard-ca.der",
        "socialguard-ca.pem",
        "socialguard-ca.sha256",
    ]
    for path in (tmp_path / "export").iterdir():
        assert b"PRIVATE KEY" not in path.read_bytes()
    pem = x509.load_pem_x509_certificate((tmp_path / "export" / "socialguard-ca.pem").read_bytes())
    der = x509.load_der_x509_certificate((tmp_path / "export" / "socialguard-ca.der").read_bytes())
    assert pem == der
    pem_path = "export/socialguard-ca.pem"
    openssl = subprocess.run(
        ["openssl", "x509", "-noout", "-fingerprint", "-sha256", "-in", pem_path],
        capture_output=True, text=True, check=True, timeout=20,
    )  # fmt: skip
    fingerprint = openssl.stdout.strip().split("=", 1)[1]
    assert fingerprint in (tmp_path / "export" / "socialguard-ca.sha256").read_text()
    instructions = (tmp_path / "export" / "INSTALL.txt").read_text()
    for words in ("Group Policy", "iOS", "Android", fingerprint):
        assert words in instructions
    assert "socialguard CA" in pem.subject.rfc4514_string()


def test_ca_export_tightens_a_readable_key(tmp_path: Path) -> None:
    """A CA key left readable by others (say, restored from a backup) is made 0600 again."""
    CliRunner().invoke(
        main, ["ca", "export", "--confdir", str(tmp_path / "ca"), "--out", str(tmp_path / "x")]
    )
    key = tmp_path / "ca" / "mitmproxy-ca.pem"
    key.chmod(0o644)
    result = CliRunner().invoke(main, ["ca", "fingerprint", "--confdir", str(tmp_path / "ca")])
    assert result.exit_code == 0
    assert stat.S_IMODE(key.stat().st_mode) == 0o600


def test_run_and_ca_export_agree_without_confdir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """From the same directory, `run` and `ca export` use the same CA with no --confdir."""
    config = tmp_path / "policy.yaml"
    config.write_text("https_block: page\n")
    port = free_port()
    command = [*SOCIALGUARD, "run", "--config", str(config), "--listen", f"{LOOPBACK}:{port}",
               "--audit-log", str(tmp_path / "audit.jsonl")]  # fmt: skip
    with (tmp_path / "proxy.log").open("wb") as log:
        process = subprocess.Popen(command, cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT)
    try:
        assert wait_for_port(port, 30), (tmp_path / "proxy.log").read_text()
        served = (tmp_path / "var" / "ca" / "mitmproxy-ca-cert.pem").read_bytes()
        monkeypatch.chdir(tmp_path)
        result = CliRunner().invoke(main, ["ca", "export", "--out", "export"])
        assert result.exit_code == 0, result.output
        assert (tmp_path / "export" / "socialguard-ca.pem").read_bytes() == served
        with socket.create_connection((LOOPBACK, port), timeout=10) as raw:
            raw.sendall(b"CONNECT www.instagram.com:443 HTTP/1.1\r\n\r\n")
            assert raw.recv(4096).startswith(b"HTTP/1.1 200")
            context = ssl.create_default_context(cafile=str(tmp_path / "export/socialguard-ca.pem"))
            with context.wrap_socket(raw, server_hostname="www.instagram.com") as tls:
                tls.sendall(get("www.instagram.com"))
                assert tls.recv(4096).startswith(b"HTTP/1.1 403")
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)


def test_ca_pem_is_the_certificate_only(tmp_path: Path) -> None:
    """The store's certificate file holds one certificate and no key: safe to hand out."""
    CliRunner().invoke(
        main, ["ca", "export", "--confdir", str(tmp_path / "ca"), "--out", str(tmp_path / "x")]
    )
    cert = (tmp_path / "ca" / "mitmproxy-ca-cert.pem").read_bytes()
    assert b"PRIVATE KEY" not in cert
    key = serialization.load_pem_private_key(
        (tmp_path / "ca" / "mitmproxy-ca.pem").read_bytes(), None
    )
    assert key.public_key() == x509.load_pem_x509_certificate(cert).public_key()
