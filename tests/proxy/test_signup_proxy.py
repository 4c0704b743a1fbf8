"""The signup guard through the real proxy: a registration with a work address is refused."""

from __future__ import annotations

import datetime as dt
import json
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import PRACTICE_ENDPOINTS
from tests.loopback import LOOPBACK
from tests.proxy.conftest import RunningProxy
from tests.proxy.test_blockpage_https import ca_file

SETTINGS = """\
email_domains: [nhs.net, oakfield.example]
signup_guard:
  hosts: [amazon.co.uk, www.facebook.com]
"""


@pytest.fixture
def proxy(run_proxy: Any, tmp_path: Path, internet: Any) -> RunningProxy:
    config = tmp_path / "policy.yaml"
    config.write_text(SETTINGS)
    return run_proxy("--config", str(config), "--upstream", f"http://{LOOPBACK}:{internet[0]}")


def post(proxy: RunningProxy, url: str, *args: str) -> tuple[str, str]:
    result = proxy.curl("-w", "\n%{http_code}", *args, url)
    body, _, code = result.stdout.rpartition("\n")
    return code, body


def test_a_work_address_in_a_registration_form_is_refused_and_recorded(
    proxy: RunningProxy, internet: Any
) -> None:
    code, body = post(
        proxy,
        "http://www.amazon.co.uk/ap/register?openid=1",
        "-H", "Accept: text/html",
        "--data", "customerName=Jo&email=jo.smith%40nhs.net&password=hunter2",
    )  # fmt: skip
    assert code == "403"
    assert "Your work e-mail address cannot be used to register here" in body
    assert "an address at nhs.net" in body
    assert internet[1] == []  # the form never left the gateway
    [event] = [e for e in proxy.events() if e["event"] == "signup.blocked"]
    assert event["host"] == "www.amazon.co.uk"
    assert event["reason"] == "work_email_signup"
    assert event["detail"] == "an address at nhs.net"
    assert event["id"] in body
    written = proxy.audit.read_text()
    assert "jo.smith" not in written  # only the domain is kept, never the address
    assert "hunter2" not in written
    assert "/ap/register" not in written


def test_an_app_gets_a_short_json_refusal(proxy: RunningProxy) -> None:
    code, body = post(
        proxy,
        "http://www.amazon.co.uk/api/signup",
        "-H", "Accept: application/json",
        "-H", "Content-Type: application/json",
        "--data", json.dumps({"user": {"email": "reception@mail.oakfield.example"}}),
    )  # fmt: skip
    assert code == "403"
    assert json.loads(body)["reason"] == "work_email_signup"


def test_personal_addresses_and_unlisted_sites_pass(proxy: RunningProxy, internet: Any) -> None:
    code, _ = post(proxy, "http://www.amazon.co.uk/ap/register", "--data", "email=jo%40gmail.com")
    assert code == "200"
    code, _ = post(proxy, "http://shop.example.org/register", "--data", "email=jo%40nhs.net")
    assert code == "200"
    assert len(internet[1]) == 2
    assert not [e for e in proxy.events() if e["event"] == "signup.blocked"]


def test_a_blocked_service_stays_blocked_whatever_the_form(proxy: RunningProxy) -> None:
    """The guard adds a refusal; it never lets through what the policy blocks."""
    code, _ = post(proxy, "http://www.facebook.com/reg", "--data", "email=jo%40gmail.com")
    assert code == "403"
    assert [e["event"] for e in proxy.events() if e["event"] != "policy.loaded"] == [
        "access.blocked"
    ]


def test_https_to_a_listed_site_is_opened_so_its_forms_can_be_read(
    run_proxy: Any, tmp_path: Path, origin: tuple[int, Path]
) -> None:
    """A listed host's tunnel is intercepted with the practice CA (devices that trust it see
    the refusal); an unlisted host's tunnel stays a plain one with the origin's certificate."""
    config = tmp_path / "policy.yaml"
    config.write_text("email_domains: [nhs.net]\nsignup_guard:\n  hosts: [localhost]\n")
    proxy = run_proxy("--config", str(config))
    port, origin_cert = origin
    result = proxy.curl(
        "--cacert", str(ca_file(proxy)), "-w", "\n%{http_code}",
        "--data", "email=jo%40nhs.net", f"https://localhost:{port}/register",
    )  # fmt: skip
    assert result.stdout.rpartition("\n")[2] == "403", result.stderr
    assert [e["event"] for e in proxy.events()].count("signup.blocked") == 1
    plain = proxy.curl(
        "--cacert", str(origin_cert), "-o", "/dev/null", "-w", "%{http_code}",
        f"https://{LOOPBACK}:{port}/",
    )  # fmt: skip
    assert plain.stdout == "200", plain.stderr  # not listed: the origin's own certificate


def test_signing_in_with_a_work_address_passes_and_registering_does_not(
    proxy: RunningProxy, internet: Any
) -> None:
    """The policy forbids registering with the work address, not using an account: sign-in,
    checkout and a newsletter go through; a registration by a form that asks for the password
    twice is refused, and the audit event says which rule matched (never the path)."""
    for path in ("/ap/signin", "/gp/buy/spc/handlers/static-submit-decoupled.html", "/newsletter"):
        code, _ = post(proxy, f"http://www.amazon.co.uk{path}", "--data",
                       "email=jo.smith%40nhs.net&password=pw")  # fmt: skip
        assert code == "200", path
    assert len(internet[1]) == 3
    code, _ = post(proxy, "http://www.amazon.co.uk/account", "--data",
                   "email=jo.smith%40nhs.net&password=pw&password_confirm=pw")  # fmt: skip
    assert code == "403"
    assert len(internet[1]) == 3
    [event] = [e for e in proxy.events() if e["event"] == "signup.blocked"]
    assert event["rule"] == "password_confirmation"
    assert "/account" not in proxy.audit.read_text()


def test_a_business_registration_under_an_exemption_passes_and_is_recorded(
    run_proxy: Any, tmp_path: Path, htpasswd: Path, internet: Any
) -> None:
    """The practice's Amazon Business account: an exemption naming the site lets its holder
    register with the work address; everyone else is still refused."""
    config = tmp_path / "policy.yaml"
    config.write_text(SETTINGS)
    authorisations = tmp_path / "authorisations.yaml"
    today = dt.datetime.now(dt.UTC).date()
    authorisations.write_text(
        "approvers: [practice.manager]\n"
        "exemptions:\n"
        "  - id: EX-2026-010\n"
        "    who: {user: m.patel}\n"
        "    domains: [amazon.co.uk]\n"
        "    purpose: Run the practice's Amazon Business account for supplies\n"
        "    approved_by: practice.manager\n"
        f"    approved_on: {today}\n"
        f"    expires: {today + dt.timedelta(days=300)}\n"
    )
    proxy = run_proxy(
        "--config", str(config), "--authorisations", str(authorisations),
        "--proxyauth", f"@{htpasswd}", "--upstream", f"http://{LOOPBACK}:{internet[0]}",
    )  # fmt: skip
    form = "email=supplies%40nhs.net&password=pw"
    url = "http://www.amazon.co.uk/ap/register"
    allowed = proxy.curl("-o", "/dev/null", "-w", "%{http_code}", "--data", form, url,
                         user="m.patel")  # fmt: skip
    assert allowed.stdout == "200", allowed.stderr
    refused = proxy.curl("-o", "/dev/null", "-w", "%{http_code}", "--data", form, url,
                         user="j.smith")  # fmt: skip
    assert refused.stdout == "403"
    events = proxy.events()
    [used] = [e for e in events if e["event"] == "access.exception"]
    assert (used["user"], used["exemption_id"], used["via"]) == ("m.patel", "EX-2026-010", "signup")
    assert used["rule"] == "known_endpoint"
    [blocked] = [e for e in events if e["event"] == "signup.blocked"]
    assert blocked["user"] == "j.smith"


# -- the practice's own endpoints (signup_guard.endpoints) ---------------------------------------

PRACTICE_SETTINGS = """\
email_domains: [nhs.net]
signup_guard:
  hosts: [supplies.example]
  endpoints: signup-endpoints.yaml
"""
# A form the heuristic alone lets through: no path word, no repeated password.
TRADE_FORM = "company=Riverside+Surgery&email=orders%40nhs.net&password=pw"


@pytest.fixture
def practice_proxy(run_proxy: Any, tmp_path: Path, internet: Any) -> tuple[RunningProxy, Path]:
    """A proxy whose policy names the practice's endpoints file, read beside it."""
    config = tmp_path / "policy.yaml"
    config.write_text(PRACTICE_SETTINGS)
    endpoints = tmp_path / "signup-endpoints.yaml"
    endpoints.write_text(PRACTICE_ENDPOINTS)
    upstream = f"http://{LOOPBACK}:{internet[0]}"
    return run_proxy("--config", str(config), "--upstream", upstream), endpoints


def test_a_registration_at_the_practices_endpoint_is_refused(
    practice_proxy: tuple[RunningProxy, Path], internet: Any
) -> None:
    """The supplier's trade-account form is refused; signing in on the same site is not."""
    proxy, _ = practice_proxy
    code, _ = post(proxy, "http://supplies.example/trade/apply", "--data", TRADE_FORM)
    assert code == "403"
    assert internet[1] == []  # the form never left the gateway
    with httpx.Client(proxy=proxy.url, timeout=10) as client:
        signin = client.post("http://supplies.example/trade/login", content=TRADE_FORM)
    assert signin.status_code == 200
    assert internet[1] == ["http://supplies.example/trade/login"]
    [event] = [e for e in proxy.events() if e["event"] == "signup.blocked"]
    assert (event["host"], event["rule"], event["detail"]) == (
        "supplies.example",
        "known_endpoint",
        "an address at nhs.net",
    )
    assert "/trade/apply" not in proxy.audit.read_text()


def wait_for(proxy: RunningProxy, name: str, count: int) -> list[dict[str, Any]]:
    deadline = time.monotonic() + 5
    while True:
        found = [e for e in proxy.events() if e["event"] == name]
        if len(found) >= count or time.monotonic() > deadline:
            return found
        time.sleep(0.05)


def test_a_broken_endpoints_file_keeps_the_last_good_policy(
    practice_proxy: tuple[RunningProxy, Path], internet: Any
) -> None:
    """Edited while running: a broken file is rejected at its line and the old endpoints stay
    in force; put right (with the form moved), it is taken and the new path refused."""
    proxy, endpoints = practice_proxy
    (started,) = wait_for(proxy, "policy.loaded", 1)
    endpoints.write_text(PRACTICE_ENDPOINTS.replace("[/trade/apply]", "[trade/open]"))
    (rejected,) = wait_for(proxy, "policy.rejected", 1)
    assert (rejected["errors"][0]["file"], rejected["errors"][0]["line"]) == (str(endpoints), 7)
    assert "must be a path on the site, starting with /" in rejected["errors"][0]["problem"]
    assert rejected["policy_digest"] == started["policy_digest"]
    assert "the last good policy stays in force" in rejected["detail"]
    assert post(proxy, "http://supplies.example/trade/apply", "--data", TRADE_FORM)[0] == "403"
    assert post(proxy, "http://supplies.example/trade/open", "--data", TRADE_FORM)[0] == "200"
    endpoints.write_text(PRACTICE_ENDPOINTS.replace("[/trade/apply]", "[/trade/open]"))
    loaded = wait_for(proxy, "policy.loaded", 2)
    assert len(loaded) == 2
    assert loaded[-1]["policy_digest"] != started["policy_digest"]
    assert post(proxy, "http://supplies.example/trade/open", "--data", TRADE_FORM)[0] == "403"
    assert post(proxy, "http://supplies.example/trade/apply", "--data", TRADE_FORM)[0] == "200"
