"""`socialguard run --mode transparent` with real redirection: an nftables rule sends this test's
own traffic (source 127.0.0.3, one destination port) into the proxy, which reads the original
destination with SO_ORIGINAL_DST as it would on a gateway. SNI and Host are decided as in the
explicit proxy. Needs root and `nft` (Debian's nftables); skipped otherwise.

The rule matches only source 127.0.0.3, so the proxy's own upstream connections (from
127.0.0.1) are never redirected back into it, and it lives in a table of its own, removed after.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.loopback import LOOPBACK, ORIGIN_BODY
from tests.proxy.conftest import RunningProxy
from tests.proxy.test_blockpage_https import access_events, ca_file

CLIENT = "127.0.0.3"


def nft(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["nft", *args], capture_output=True, text=True, timeout=20, check=False)


@pytest.fixture
def redirect() -> Iterator[Any]:
    """Redirect CLIENT's connections to 127.0.0.1:<port> into the proxy's port."""
    if os.geteuid() != 0 or shutil.which("nft") is None:
        pytest.skip("transparent redirection needs root and nft (apt-get install nftables)")
    table = f"socialguard_test_{os.getpid()}"
    if nft("add", "table", "ip", table).returncode != 0:
        pytest.skip("nftables is not usable here (no CAP_NET_ADMIN?)")
    nft("add", "chain", "ip", table, "out", "{ type nat hook output priority -100; }")

    def _redirect(port: int, proxy: RunningProxy) -> None:
        result = nft(
            "add", "rule", "ip", table, "out", "ip", "saddr", CLIENT, "ip", "daddr", LOOPBACK,
            "tcp", "dport", str(port), "redirect", "to", f":{proxy.port}",
        )  # fmt: skip
        assert result.returncode == 0, result.stderr

    try:
        yield _redirect
    finally:
        nft("delete", "table", "ip", table)


def curl(*args: str) -> subprocess.CompletedProcess[str]:
    """curl as a client on the practice network: no proxy configured, source CLIENT."""
    return subprocess.run(
        ["curl", "-sS", "-m", "10", "--noproxy", "*", "--interface", CLIENT, *args],
        capture_output=True, text=True, timeout=20, check=False,
    )  # fmt: skip


@pytest.fixture
def transparent(run_proxy: Any) -> RunningProxy:
    proxy: RunningProxy = run_proxy("--mode", "transparent")
    return proxy


def test_allowed_https_is_relayed_undecrypted(transparent, redirect, origin) -> None:
    """An allowed SNI passes untouched: the client verifies the origin's own certificate."""
    port, cert = origin
    redirect(port, transparent)
    result = curl("--cacert", str(cert), f"https://localhost:{port}/")
    assert result.stdout.encode() == ORIGIN_BODY, result.stderr
    assert access_events(transparent, 0) == []


def test_blocked_sni_is_refused(transparent, redirect, origin) -> None:
    """A ClientHello naming Facebook is refused with a TLS alert and recorded with its address."""
    port, _cert = origin
    redirect(port, transparent)
    result = curl("-k", "--connect-to", f"www.facebook.com:443:{LOOPBACK}:{port}",
                  "https://www.facebook.com/")  # fmt: skip
    assert result.returncode != 0
    assert "access denied" in result.stderr.lower()
    (event,) = access_events(transparent, 1)
    assert (event["host"], event["client_ip"], event["via"]) == ("www.facebook.com", CLIENT, "tls")


def test_blocked_host_header_is_blocked(transparent, redirect, internet_origin) -> None:
    """Plain HTTP is decided on the Host header, whatever address it was sent to."""
    redirect(internet_origin, transparent)
    result = curl("-o", "/dev/null", "-w", "%{http_code}", "-H", "Host: www.tiktok.com",
                  f"http://{LOOPBACK}:{internet_origin}/")  # fmt: skip
    assert result.stdout == "403"
    allowed = curl(f"http://{LOOPBACK}:{internet_origin}/")
    assert allowed.returncode == 0, allowed.stderr


def test_blocked_sni_gets_the_page_in_page_mode(
    run_proxy, redirect, origin, tmp_path: Path
) -> None:
    """With `https_block: page`, a transparently redirected blocked site shows the block page."""
    config = tmp_path / "policy.yaml"
    config.write_text("https_block: page\n")
    proxy = run_proxy("--mode", "transparent", "--config", str(config))
    port, _cert = origin
    redirect(port, proxy)
    result = curl("--cacert", str(ca_file(proxy)), "-w", "\n%{http_code}",
                  "--connect-to", f"www.instagram.com:443:{LOOPBACK}:{port}",
                  "https://www.instagram.com/")  # fmt: skip
    body, _, code = result.stdout.rpartition("\n")
    assert code == "403", result.stderr
    assert "Instagram" in body


@pytest.fixture
def internet_origin(internet: tuple[int, list[str]]) -> int:
    """A plain-HTTP server on loopback (the loopback internet answers any GET itself)."""
    return internet[0]
