"""The page in a real browser: Debian's Chromium, driven by Playwright. A member of staff meets
the block page through the real proxy and asks for an exemption from it; the Practice Manager
signs in, approves one request, declines another, grants from a block's reference, renews and
revokes. Every page is screenshotted under the test's tmp dir and checked with axe-core, and
the authorisation list ends as the CLI would have written it.

Needs `chromium`, the `playwright` package and build/npm/node_modules/axe-core: installed by
.ci/install-system-packages. Blocked requests are answered inside the proxy; nothing leaves
loopback.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509

from socialguard.proxy.ca import spki_hash
from tests.loopback import LOOPBACK, free_port, loopback_internet
from tests.proxy.conftest import start, stop
from tests.proxy.test_browser import AXE, CHROMIUM, WCAG_TAGS, axe_script
from tests.web.conftest import APPROVER, PASSWORD, start_admin, today

sync_api = pytest.importorskip("playwright.sync_api", reason="pip install -e '.[test]'")

REFERENCE = re.compile(r"SG-[0-9A-Z]{10}")


@pytest.fixture
def chromium(tmp_path: Path) -> Iterator[Any]:
    """A factory for headless Chromium contexts with fresh profiles (CSP bypassed for axe)."""
    if not CHROMIUM.exists():
        pytest.skip("Debian's chromium is not installed: run .ci/install-system-packages")
    axe_script()
    contexts: list[Any] = []
    with sync_api.sync_playwright() as playwright:

        def launch(*extra: str) -> Any:
            profile = tmp_path / f"profile{len(contexts)}"
            profile.mkdir()
            context = playwright.chromium.launch_persistent_context(
                str(profile), executable_path=str(CHROMIUM), headless=True, bypass_csp=True,
                args=["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                      "--disable-background-networking", "--disable-component-update",
                      "--disable-sync", *extra],
                timeout=30_000,
            )  # fmt: skip
            context.set_default_timeout(15_000)
            contexts.append(context)
            return context

        yield launch
        for context in contexts:
            context.close()


class Checker:
    """Screenshots each page under tmp_path and runs axe-core on it (WCAG 2.2 AA)."""

    def __init__(self, tmp_path: Path) -> None:
        self.directory = tmp_path / "screenshots"
        self.directory.mkdir()
        self.checked: list[str] = []

    def __call__(self, page: Any, name: str) -> None:
        shot = self.directory / f"{len(self.checked):02d}-{name}.png"
        page.screenshot(path=str(shot), full_page=True)
        assert shot.stat().st_size > 1000
        assert page.evaluate("document.documentElement.lang") == "en-GB"
        page.add_script_tag(path=str(AXE))
        result = page.evaluate(
            "tags => axe.run(document, {runOnly: {type: 'tag', values: tags}})", WCAG_TAGS
        )
        violations = [(v["id"], v["help"], len(v["nodes"])) for v in result["violations"]]
        assert violations == [], f"{name}: {violations}"
        assert len(result["passes"]) > 5
        self.checked.append(name)


def _ask(staff: Any, check: Checker, url: str, name: str, purpose: str) -> str:
    """Meet the block page, follow "Ask for an exemption", send a request; its reference."""
    page = staff.new_page()
    response = page.goto(url)
    assert response is not None
    assert response.status == 403
    check(page, f"block-{name}")
    page.get_by_role("link", name="Ask for an exemption").click()
    page.wait_for_url(re.compile(r"/request\?ref="))
    check(page, f"request-{name}")
    assert "reception-pc-1" in page.content()  # bound to the block: the proxy knew the device
    page.get_by_label("Business purpose").fill(purpose)
    page.get_by_role("button", name="Send the request").click()
    page.wait_for_url(re.compile(r"/answer\?ref="))
    assert "Waiting for the Practice Manager" in page.content()
    check(page, f"sent-{name}")
    match = REFERENCE.search(page.url)
    assert match
    page.close()
    return match[0]


def test_staff_ask_and_the_manager_answers_in_chromium(chromium: Any, tmp_path: Path) -> None:
    year = today().year
    until = str(today() + dt.timedelta(days=60))
    later = str(today() + dt.timedelta(days=300))
    check = Checker(tmp_path)
    admin_port = free_port()
    proxy_dir = tmp_path / "proxy"
    proxy_dir.mkdir()
    admin_dir = tmp_path / "admin"
    admin_dir.mkdir()
    with loopback_internet() as (internet_port, seen):
        admin = start_admin(
            admin_dir,
            port=admin_port,
            proxy_audit=proxy_dir / "audit.jsonl",
            admin_extra=f'  public_url: "http://{LOOPBACK}:{admin_port}"\n',
            extra_policy=(
                "https_block: page\ndevices: {reception-pc-1: 127.0.0.1}\n"
                "practice: {name: Riverside Surgery, contact: 'Mrs Patel, Practice Manager'}\n"
            ),
        )
        original = admin.authorisations.read_text()
        proxy = start(proxy_dir, "--config", str(admin.policy),
                      "--upstream", f"http://{LOOPBACK}:{internet_port}")  # fmt: skip
        try:
            ca = x509.load_pem_x509_certificate(
                (proxy_dir / "mitmproxy" / "mitmproxy-ca-cert.pem").read_bytes()
            )
            staff = chromium(
                f"--proxy-server={proxy.url}",
                f"--ignore-certificate-errors-spki-list={spki_hash(ca)}",
            )
            approved_ref = _ask(staff, check, "https://www.instagram.com/", "instagram",
                                "Post the practice's flu clinic dates")  # fmt: skip
            declined_ref = _ask(staff, check, "https://www.tiktok.com/", "tiktok",
                                "Watch videos about the new phone system")  # fmt: skip
            block = staff.new_page()
            block.goto("https://www.pinterest.com/")
            grant_ref = REFERENCE.search(block.content())
            assert grant_ref
            block.close()

            manager = chromium().new_page()
            manager.goto(f"{admin.url}/")
            manager.wait_for_url(re.compile("/sign-in$"))
            check(manager, "sign-in")
            manager.get_by_label("Your proxy sign-in name").fill(APPROVER)
            manager.get_by_label("Password").fill(PASSWORD)
            manager.get_by_role("button", name="Sign in").click()
            manager.wait_for_url(f"{admin.url}/")
            check(manager, "overview")
            assert approved_ref in manager.content()
            assert "Ends soon" in manager.content()

            # Approve the first request: choose the end date and grant.
            manager.get_by_role(
                "link", name=f"Approve or decline the request {approved_ref}"
            ).click()
            check(manager, "request-review")
            manager.get_by_role("link", name="Approve: choose the end date and grant").click()
            check(manager, "grant-from-request")
            manager.get_by_label("Last day").fill(until)
            manager.get_by_role("button", name="Grant").click()
            assert f"granted EX-{year}-003" in manager.content()
            check(manager, "granted")

            # Decline the second, with a reason the member of staff will read.
            manager.get_by_role(
                "link", name=f"Approve or decline the request {declined_ref}"
            ).click()
            manager.get_by_label("Why it is declined").fill("Not needed for work")
            manager.get_by_role("button", name="Decline").click()
            assert f"declined request {declined_ref}" in manager.content()

            # Grant from a block's reference, found by searching for it.
            manager.get_by_label("Reference").fill(grant_ref[0])
            manager.get_by_role("button", name="Search").click()
            check(manager, "search")
            manager.get_by_role("link", name=f"Grant an exemption for {grant_ref[0]}").click()
            check(manager, "grant-from-block")
            manager.get_by_label("Business purpose").fill("Share the practice's leaflets")
            manager.get_by_label("Last day").fill(until)
            manager.get_by_role("button", name="Grant").click()
            assert f"granted EX-{year}-004 (from event {grant_ref[0]})" in manager.content()

            # Renew one, revoke another.
            manager.get_by_role("link", name=f"Renew or revoke exemption EX-{year}-001").click()
            check(manager, "exemption")
            manager.get_by_label("New last day").fill(later)
            manager.get_by_role("button", name="Renew").click()
            assert f"renewed EX-{year}-001 until" in manager.content()
            manager.get_by_role("link", name=f"Renew or revoke exemption EX-{year}-002").click()
            manager.get_by_label("Why it is withdrawn").fill("Recruitment finished")
            manager.get_by_role("button", name="Revoke now").click()
            assert f"revoked EX-{year}-002" in manager.content()
            check(manager, "after-changes")

            # The member of staff looks up both answers.
            answer = staff.new_page()
            answer.goto(f"{admin.url}/answer?ref={approved_ref}")
            assert f"Approved by {APPROVER}" in answer.content()
            check(answer, "answer-approved")
            answer.goto(f"{admin.url}/answer?ref={declined_ref}")
            assert "Not needed for work" in answer.content()
            check(answer, "answer-declined")
        finally:
            stop(proxy)
            admin.stop()
        assert not [h for h in seen if "instagram" in h or "tiktok" in h or "pinterest" in h]

    # The list after those clicks is what the CLI writes for the same four actions.
    cli_file = tmp_path / "cli.yaml"
    cli_file.write_text(original)
    common = ("--config", str(admin.policy), "--authorisations", str(cli_file))
    for args in (
        ("grant", "--device", "reception-pc-1", "--service", "instagram", "--purpose",
         "Post the practice's flu clinic dates", "--approved-by", APPROVER, "--until", until),
        ("grant", "--from-event", grant_ref[0], "--audit-log", str(proxy.audit), "--purpose",
         "Share the practice's leaflets", "--approved-by", APPROVER, "--until", until),
        ("renew", f"EX-{year}-001", "--approved-by", APPROVER, "--until", later),
        ("revoke", f"EX-{year}-002", "--reason", "Recruitment finished", "--by", APPROVER),
    ):  # fmt: skip
        done = admin.cli("exemptions", *args, *common)
        assert done.returncode == 0, done.stderr
    assert admin.authorisations.read_text() == cli_file.read_text()
    assert len(check.checked) == 17  # every kind of page the page and the proxy show here
