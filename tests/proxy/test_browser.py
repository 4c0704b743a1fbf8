"""The block page in a real browser: Debian's Chromium, driven by Playwright, through the real
proxy. Plain HTTP and, with socialguard's CA trusted by this browser profile only, HTTPS; each
page is screenshotted under the test's tmp dir and checked with axe-core (WCAG 2.2 AA).

Needs `chromium`, the `playwright` package and build/npm/node_modules/axe-core: installed by
.ci/install-system-packages. Blocked requests are answered inside the proxy, and the upstream is
the loopback "internet": no social-media host is ever resolved.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509

from socialguard.proxy.ca import spki_hash
from tests.proxy.conftest import RunningProxy
from tests.proxy.test_blockpage_https import assert_nothing_social_left, ca_file, start_page_proxy

CHROMIUM = Path("/usr/bin/chromium")
PROJECT = Path(__file__).resolve().parents[2]
AXE_VERSION = "4.14.1"  # keep in step with .ci/install-system-packages
AXE = PROJECT / "build" / "npm" / "node_modules" / "axe-core" / "axe.min.js"
WCAG_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa", "best-practice"]

sync_api = pytest.importorskip("playwright.sync_api", reason="pip install -e '.[test]'")


def axe_script() -> Path:
    """axe-core's browser bundle, installed from npm into build/npm if it is missing."""
    if not AXE.exists() and shutil.which("npm"):
        subprocess.run(
            ["npm", "install", "--prefix", str(AXE.parents[2]), "--no-audit", "--no-fund",
             "--silent", f"axe-core@{AXE_VERSION}"],
            check=False, timeout=300, capture_output=True,
        )  # fmt: skip
    if not AXE.exists():
        pytest.skip("axe-core is not installed: run .ci/install-system-packages")
    return AXE


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Any]:
    """A factory for a headless Chromium context through a given proxy, with a fresh profile."""
    if not CHROMIUM.exists():
        pytest.skip("Debian's chromium is not installed: run .ci/install-system-packages")
    contexts: list[Any] = []
    with sync_api.sync_playwright() as playwright:

        def launch(proxy: RunningProxy, *extra: str) -> Any:
            profile = tmp_path / f"profile{len(contexts)}"
            profile.mkdir()
            context = playwright.chromium.launch_persistent_context(
                str(profile),
                executable_path=str(CHROMIUM),
                headless=True,
                args=[
                    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                    "--disable-background-networking", "--disable-component-update",
                    "--disable-sync", f"--proxy-server={proxy.url}",
                    "--proxy-bypass-list=<-loopback>",
                    # Plain HTTP must stay plain: no automatic upgrade to HTTPS.
                    "--disable-features=HttpsUpgrades,HttpsFirstBalancedModeAutoEnable",
                    *extra,
                ],
                timeout=30_000,
            )  # fmt: skip
            context.set_default_timeout(15_000)
            contexts.append(context)
            return context

        yield launch
        for context in contexts:
            context.close()


def check_page(page: Any, url: str, screenshot: Path) -> None:
    """Load a blocked URL; the block page must render, reflow at 320 px and pass axe-core."""
    response = page.goto(url)
    assert response is not None
    assert response.status == 403
    assert response.url == url  # not upgraded or redirected: this scheme's block page
    assert page.locator("h1").inner_text() == "Social media is not allowed on the practice network"
    assert page.evaluate("document.documentElement.lang") == "en-GB"
    page.screenshot(path=str(screenshot), full_page=True)
    assert screenshot.stat().st_size > 1000
    page.add_script_tag(path=str(axe_script()))
    result = page.evaluate(
        "tags => axe.run(document, {runOnly: {type: 'tag', values: tags}})", WCAG_TAGS
    )
    violations = [(v["id"], v["help"], len(v["nodes"])) for v in result["violations"]]
    assert violations == []
    assert len(result["passes"]) > 10  # axe really ran its rules
    # WCAG 1.4.10 reflow: at 320 CSS px (a phone, or 1280 px at 400% zoom) nothing scrolls sideways.
    page.set_viewport_size({"width": 320, "height": 640})
    assert page.evaluate("document.documentElement.scrollWidth") <= 320
    page.screenshot(path=str(screenshot.with_suffix(".phone.png")), full_page=True)


def test_http_block_page_in_chromium(browser, run_proxy, tmp_path: Path, internet) -> None:
    """Plain HTTP to a forum shows the block page in Chromium; axe-core finds no violation."""
    port, seen = internet
    proxy = start_page_proxy(run_proxy, tmp_path, port)
    context = browser(proxy)
    # A site that is not on Chromium's HSTS preload list, so the browser really asks over HTTP.
    check_page(context.new_page(), "http://www.mumsnet.com/", tmp_path / "http-block.png")
    assert_nothing_social_left(seen)


def test_https_block_page_in_chromium(browser, run_proxy, tmp_path: Path, internet) -> None:
    """With the CA trusted by this profile only, blocked HTTPS shows the same page."""
    port, seen = internet
    proxy = start_page_proxy(run_proxy, tmp_path, port)
    ca = x509.load_pem_x509_certificate(ca_file(proxy).read_bytes())
    # mitmproxy signs every leaf with the CA's own key, so the CA's SPKI pins the whole chain.
    context = browser(proxy, f"--ignore-certificate-errors-spki-list={spki_hash(ca)}")
    check_page(context.new_page(), "https://www.instagram.com/", tmp_path / "https-block.png")
    assert_nothing_social_left(seen)


def test_https_without_the_ca_is_not_shown_anything(
    browser, run_proxy, tmp_path: Path, internet
) -> None:
    """A browser that does not trust the CA gets a certificate error, never the site."""
    port, seen = internet
    proxy = start_page_proxy(run_proxy, tmp_path, port)
    page = browser(proxy).new_page()
    with pytest.raises(sync_api.Error, match="ERR_CERT_AUTHORITY_INVALID"):
        page.goto("https://www.instagram.com/")
    assert_nothing_social_left(seen)
