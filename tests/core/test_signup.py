"""The signup guard's test of a request: work addresses found in every form a site sends them."""

from __future__ import annotations

import json

import pytest

from socialguard.core.signup import MAX_INSPECTED, is_guarded, work_address_domain

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
