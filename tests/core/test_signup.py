"""The signup guard's test of a request: work addresses found in every form a site sends them."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pytest

from socialguard.core.authorisations import parse_authorisations
from socialguard.core.policy import Action, Policy, Reason, Who
from socialguard.core.problems import ConfigError
from socialguard.core.signup import (
    MAX_INSPECTED,
    Rule,
    SignupRequest,
    Verdict,
    examine,
    is_guarded,
    signup_decision,
    work_address_domain,
)
from socialguard.core.signup_endpoints import parse_endpoints
from socialguard.files.signup_file import embedded_endpoints
from socialguard.files.yamlfile import parse_yaml
from tests.conftest import NOW, make_policy

WORK = ("nhs.net", "oakfieldsurgery.co.uk")


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (b"email=j.smith%40nhs.net&password=x", "application/x-www-form-urlencoded"),
        (b"email=j.smith@nhs.net&password=x", "application/x-www-form-urlencoded"),
        (json.dumps({"user": {"email": "J.Smith@NHS.NET"}}).encode(), "application/json"),
        (b'{"email": "j.smith\\u0040nhs.net"}', "application/json"),
        (
            b'--b\r\nContent-Disposition: form-data; name="email"\r\n\r\nj.smith@nhs.net\r\n--b--',
            "multipart/form-data; boundary=b",
        ),
        (b"email=reception%40mail.oakfieldsurgery.co.uk", "application/x-www-form-urlencoded"),
    ],
)
def test_work_addresses_are_found_however_the_form_is_sent(body: bytes, content_type: str) -> None:
    assert work_address_domain(body, "", content_type, WORK) in WORK


def test_query_strings_are_searched_too() -> None:
    assert work_address_domain(b"", "email=a.b%40nhs.net", "", WORK) == "nhs.net"


@pytest.mark.parametrize(
    "body",
    [
        b"email=j.smith%40gmail.com",
        b"email=j.smith@notnhs.net",  # a look-alike, not under nhs.net
        b"email=j.smith@nhs.net.example.com",
        b"comment=we use nhs.net for work",
        b"",
    ],
)
def test_other_addresses_and_mentions_pass(body: bytes) -> None:
    assert work_address_domain(body, "", "application/x-www-form-urlencoded", WORK) is None


def test_nothing_is_found_without_work_domains() -> None:
    assert work_address_domain(b"email=a@nhs.net", "", "", ()) is None


def test_only_the_first_megabyte_is_read() -> None:
    late = b"x" * MAX_INSPECTED + b"&email=a@nhs.net"
    assert work_address_domain(late, "", "", WORK) is None
    assert work_address_domain(b"email=a@nhs.net&" + late, "", "", WORK) == "nhs.net"


def test_broken_json_is_still_searched_as_text() -> None:
    assert work_address_domain(b'{"email": "a@nhs.net"', "", "application/json", WORK) == "nhs.net"


@pytest.mark.parametrize(
    ("host", "guarded"),
    [
        ("www.amazon.co.uk", True),
        ("amazon.co.uk", True),
        ("notamazon.co.uk", False),
        ("www.facebook.com", True),
        ("www.nhs.uk", False),
    ],
)
def test_only_listed_hosts_and_those_under_them_are_guarded(host: str, guarded: bool) -> None:
    assert is_guarded(host, ("amazon.co.uk", "facebook.com")) is guarded


def test_hostile_bodies_are_searched_in_linear_time() -> None:
    """A megabyte of one letter, of `@`s, or of labels without a dot answers at once."""
    for body in (b"x" * MAX_INSPECTED, b"@" * MAX_INSPECTED, b"a@" + b"b" * MAX_INSPECTED):
        assert work_address_domain(body, "", "text/plain", WORK) is None


# -- registering, not using ---------------------------------------------------------------------

ENDPOINTS = embedded_endpoints()
FORM = "application/x-www-form-urlencoded"
HOSTS = ("amazon.co.uk", "etsy.com", "shop.example", "x.com")


def verdict(url_path: str, body: bytes, content_type: str = FORM, host: str = "") -> Verdict:
    path, _, query = url_path.partition("?")
    request = SignupRequest(
        host=host or "www.shop.example", path=path, query=query, body=body,
        content_type=content_type,
    )  # fmt: skip
    return examine(request, HOSTS, WORK, ENDPOINTS)


@pytest.mark.parametrize(
    ("host", "path"),
    [
        ("www.amazon.co.uk", "/ap/signin"),
        ("www.amazon.co.uk", "/gp/buy/spc/handlers/static-submit-decoupled.html"),
        ("www.etsy.com", "/signin"),
        ("www.shop.example", "/newsletter/subscribe"),
        ("www.shop.example", "/checkout"),
        ("www.shop.example", "/newsletter/unregister"),
    ],
)
def test_signing_in_checking_out_and_newsletters_pass(host: str, path: str) -> None:
    """The policy forbids registering with the work address, not using it."""
    found = verdict(path, b"email=sam.jones%40nhs.net&password=pw", host=host)
    assert not found.refuse
    assert found.rule is Rule.NOT_REGISTRATION
    assert found.work_domain == "nhs.net"
    assert "signing in" in found.why


@pytest.mark.parametrize(
    ("host", "path", "label"),
    [
        ("www.amazon.co.uk", "/ap/register", "Amazon's registration endpoint /ap/register"),
        ("www.amazon.co.uk", "/ap/cnep", "Amazon's e-mail change endpoint /ap/cnep"),
        ("www.etsy.com", "/join", "Etsy's registration endpoint /join"),
        ("api.x.com", "/1.1/onboarding/task.json?flow_name=signup", "X (Twitter)'s registration"),
    ],
)
def test_known_endpoints_are_refused_and_named(host: str, path: str, label: str) -> None:
    found = verdict(path, b"email=sam.jones%40nhs.net", host=host)
    assert found.refuse
    assert found.rule is Rule.KNOWN_ENDPOINT
    assert label in found.why
    assert "checked 1 December 2026" in found.why


def test_a_known_endpoint_needs_its_query() -> None:
    """X's onboarding API registers only in its sign-up flow; its login flow passes."""
    found = verdict("/1.1/onboarding/task.json?flow_name=login", b"email=a%40nhs.net", host="x.com")
    assert not found.refuse


@pytest.mark.parametrize(
    ("path", "word"),
    [
        ("/register", "register"),
        ("/customer/account/create-account", "create-account"),
        ("/users/sign_up", "sign_up"),
        ("/api/signUp", "signUp"),
        ("/join-now", "join"),
        ("/account/change-email", "change-email"),
        ("/CreateAccount.aspx", "CreateAccount"),
    ],
)
def test_a_path_that_says_so_is_refused(path: str, word: str) -> None:
    found = verdict(path, b"email=a%40nhs.net")
    assert found.refuse
    assert found.rule is Rule.PATH_WORD
    assert f"('{word}')" in found.why


@pytest.mark.parametrize(
    ("body", "content_type", "field"),
    [
        (b"email=a%40nhs.net&password=x&password_confirmation=x", FORM, "password_confirmation"),
        (b'{"email": "a@nhs.net", "confirmPassword": "x"}', "application/json", "confirmPassword"),
        (b"user%5Bemail%5D=a%40nhs.net&user%5Bpassword2%5D=x", FORM, "password2"),
        (
            b'--b\r\nContent-Disposition: form-data; name="email"\r\n\r\na@nhs.net\r\n'
            b'--b\r\nContent-Disposition: form-data; name="repeat_password"\r\n\r\nx\r\n--b--',
            "multipart/form-data; boundary=b",
            "repeat_password",
        ),
    ],
)
def test_a_password_confirmation_field_is_refused(
    body: bytes, content_type: str, field: str
) -> None:
    found = verdict("/account", body, content_type)
    assert found.refuse
    assert found.rule is Rule.PASSWORD_CONFIRMATION
    assert field in found.why


@pytest.mark.parametrize(
    "body",
    [
        {"query": "mutation SignUp($e: String!) { signUp(email: $e) { id } }",
         "variables": {"e": "a@nhs.net"}},
        {"query": "mutation { createAccount(input: {email: \"a@nhs.net\"}) { id } }"},
        {"operationName": "UpdateEmail", "variables": {"email": "a@nhs.net"},
         "extensions": {"persistedQuery": {"sha256Hash": "abc"}}},
        [{"query": "mutation Go { r: registerUser(email: \"a@nhs.net\") { id } }"}],
    ],
)  # fmt: skip
def test_a_graphql_mutation_that_says_so_is_refused(body: Any) -> None:
    found = verdict("/graphql", json.dumps(body).encode(), "application/json")
    assert found.refuse
    assert found.rule is Rule.GRAPHQL_MUTATION


@pytest.mark.parametrize(
    "body",
    [
        {"query": "mutation SignIn { signIn(email: \"a@nhs.net\") { token } }"},
        {"query": "query SignupPage { user(email: \"a@nhs.net\") { id } }"},
        {"query": "mutation { joinGroup(email: \"a@nhs.net\") { id } }"},
    ],
)  # fmt: skip
def test_other_graphql_operations_pass(body: Any) -> None:
    found = verdict("/graphql", json.dumps(body).encode(), "application/json")
    assert not found.refuse


@pytest.mark.parametrize(
    "body",
    [
        b"email=sam.jones%2540nhs.net&password=x&password_confirm=x",  # encoded twice
        b"email=sam.jones%2Bamazon%40nhs.net&password=x&password_confirm=x",  # sub-address
        b"email=SAM.JONES%40NHS.NET.&password=x&password_confirm=x",  # upper case, trailing dot
        b'{"user":{"profile":{"emails":["sam@nhs.net"]}},"password_confirm":"x"}',  # nested
    ],
)
def test_addresses_in_other_shapes_are_read(body: bytes) -> None:
    content_type = "application/json" if body.startswith(b"{") else FORM
    found = verdict("/account", body, content_type)
    assert found.refuse
    assert found.work_domain == "nhs.net"


def test_unlisted_sites_and_personal_addresses_are_not_refused() -> None:
    unlisted = verdict("/register", b"email=a%40nhs.net", host="www.other.example")
    assert (unlisted.refuse, unlisted.rule) == (False, Rule.NOT_GUARDED)
    personal = verdict("/register", b"email=a%40gmail.com")
    assert (personal.refuse, personal.rule) == (False, Rule.NO_WORK_ADDRESS)


def test_the_shipped_endpoints_each_name_the_day_they_were_checked() -> None:
    assert ENDPOINTS
    assert all(e.checked.year >= 2026 and e.path.startswith("/") for e in ENDPOINTS)


def test_a_bad_endpoints_file_names_its_line() -> None:
    data = parse_yaml("sites:\n  shop:\n    hosts: [shop.example]\n", "endpoints.yaml")
    with pytest.raises(ConfigError) as caught:
        parse_endpoints(data, "endpoints.yaml")
    assert "endpoints.yaml:2: sites.shop.checked" in str(caught.value.problems[0])


# -- a registration for a business purpose --------------------------------------------------

BUSINESS = """\
approvers: [practice.manager]
exemptions:
  - id: EX-2026-010
    who: {user: p.manager}
    domains: [amazon.co.uk]
    purpose: Run the practice's Amazon Business account for supplies
    approved_by: practice.manager
    approved_on: 2026-11-01
    expires: 2027-10-31
  - id: EX-2026-011
    who: {user: p.manager}
    categories: [social-networking]
    purpose: Post the flu clinic dates on the practice pages
    approved_by: practice.manager
    approved_on: 2026-11-01
    expires: 2027-10-31
"""


def business_policy() -> Policy:
    policy = make_policy()
    authorisations = parse_authorisations(
        parse_yaml(BUSINESS, "authorisations.yaml"), "authorisations.yaml", policy.catalog,
        policy.settings,
    )  # fmt: skip
    return dataclasses.replace(policy, authorisations=authorisations)


def who(user: str | None) -> Who:
    return Who(
        client_ip="10.10.0.9", user=user or "anonymous", device=None, zone="staff",
        authenticated=user is not None,
    )  # fmt: skip


def test_an_exemption_naming_the_site_lets_the_registration_through() -> None:
    """The practice's Amazon Business account: who, which site, purpose, approver, end date."""
    refused = verdict("/ap/register", b"email=pm%40nhs.net", host="www.amazon.co.uk")
    policy = business_policy()
    allowed = signup_decision(refused, "www.amazon.co.uk", who("p.manager"), NOW, policy)
    assert (allowed.action, allowed.reason) == (Action.ALLOW, Reason.EXEMPTION)
    assert allowed.exemption_id == "EX-2026-010"
    assert allowed.detail == "a registration with an address at nhs.net"
    for other in (who("j.smith"), who(None)):
        blocked = signup_decision(refused, "www.amazon.co.uk", other, NOW, policy)
        assert blocked.reason is Reason.WORK_EMAIL_SIGNUP
    late = signup_decision(
        refused, "www.amazon.co.uk", who("p.manager"), NOW.replace(year=2028), policy
    )
    assert late.reason is Reason.WORK_EMAIL_SIGNUP


def test_a_category_exemption_does_not_name_the_site() -> None:
    """Using social media for work is not registering Facebook accounts with the work address."""
    refused = verdict("/r.php", b"email=pm%40nhs.net", host="www.facebook.com")
    decision = signup_decision(
        refused, "www.facebook.com", who("p.manager"), NOW, business_policy()
    )
    assert decision.reason is Reason.WORK_EMAIL_SIGNUP
    assert decision.service_name == "Facebook"
