"""Tests for socialguard.core.hosts: one canonical form for every host string from the wire."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from socialguard.core.hosts import (
    MAX_HOST_LENGTH,
    MAX_LABEL_LENGTH,
    Host,
    HostError,
    HostKind,
    normalise_host,
    plain_name,
    suffixes,
)


def fullwidth(ascii_text: str) -> str:
    """The fullwidth form (U+FF01..U+FF5E) of printable ASCII, as an IME might type it."""
    return "".join(chr(ord(c) + 0xFEE0) for c in ascii_text)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("facebook.com", "facebook.com"),
        ("FaceBook.COM", "facebook.com"),
        ("facebook.com.", "facebook.com"),
        ("FACEBOOK.COM.", "facebook.com"),
        ("facebook.com:443", "facebook.com"),
        ("www.facebook.com:8080", "www.facebook.com"),
        ("facebook.com.:443", "facebook.com"),
        ("facebook.com.evil.example", "facebook.com.evil.example"),
        ("notfacebook.com", "notfacebook.com"),
        ("_dmarc.example.com", "_dmarc.example.com"),
        ("a-b.example", "a-b.example"),
        ("localhost", "localhost"),
        (" facebook.com ", "facebook.com"),
        # IDN: U-labels become A-labels, by UTS46 (as a browser maps them).
        ("bücher.example", "xn--bcher-kva.example"),
        ("BÜCHER.example", "xn--bcher-kva.example"),
        ("bücher.example:443", "xn--bcher-kva.example"),
        (fullwidth("FACEBOOK.COM"), "facebook.com"),
        (fullwidth("facebook") + ".com", "facebook.com"),
        ("face\u200bbook.com", "facebook.com"),
        ("xn--bcher-kva.example", "xn--bcher-kva.example"),
    ],
)
def test_names_are_normalised(raw: str, expected: str) -> None:
    """A host name is lower-cased and loses its port and trailing dot; IDNs become A-labels."""
    assert normalise_host(raw) == Host(expected, HostKind.NAME)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("1.2.3.4", "1.2.3.4"),
        ("1.2.3.4:8080", "1.2.3.4"),
        ("::1", "::1"),
        ("[::1]", "::1"),
        ("[::1]:8443", "::1"),
        ("[2001:DB8::1]:443", "2001:db8::1"),
        ("2001:0db8:0000:0000:0000:0000:0000:0001", "2001:db8::1"),
        ("::ffff:1.2.3.4", "1.2.3.4"),
        ("[::ffff:1.2.3.4]:443", "1.2.3.4"),
        ("::ffff:0102:0304", "1.2.3.4"),
    ],
)
def test_ip_literals_are_recognised(raw: str, expected: str) -> None:
    """IP literals (v4, v6 with or without brackets and port, v4-mapped v6) are kind IP."""
    assert normalise_host(raw) == Host(expected, HostKind.IP)


@pytest.mark.parametrize(
    ("raw", "reason_contains"),
    [
        ("", "empty"),
        (".", "empty"),
        (":443", "empty"),
        ("a" * 300, "longer than"),
        ("a." * 150 + "com", "longer than"),
        (("a" * 62 + ".") * 4 + "com", "longer than"),
        ("a" * 64 + ".com", "label"),
        ("face\x00book.com", "not allowed"),
        ("facebook.com\x00", "not allowed"),
        ("face book.com", "not allowed"),
        ("facebook.com :443", "not allowed"),
        ("facebook.com/path", "not allowed"),
        ("user@facebook.com", "not allowed"),
        ("*.facebook.com", "not allowed"),
        ("facebook..com", "not allowed"),
        (".facebook.com", "not allowed"),
        ("facebook.com..", "not allowed"),
        ("facebook.com:", "port"),
        ("facebook.com:https", "port"),
        ("facebook.com:123456", "port"),
        ("[::1", "unterminated"),
        ("[::1]x", "not a port"),
        ("[::1]:http", "not a port"),
        ("127.1", "numeric"),
        ("2130706433", "numeric"),
        ("10.0.1", "numeric"),
        ("1.2.3.4.", "numeric"),
        ("999.999.999.999", "numeric"),
        ("bü..com", "international"),
        ("\ud800.com", "international"),
    ],
)
def test_hostile_strings_are_rejected(raw: str, reason_contains: str) -> None:
    """Anything a browser would not send as a host is a HostError with a plain reason."""
    with pytest.raises(HostError) as caught:
        normalise_host(raw)
    assert reason_contains in caught.value.reason
    assert caught.value.raw == raw


def test_host_error_message_is_bounded() -> None:
    """A HostError's message quotes at most 80 characters of a huge input."""
    with pytest.raises(HostError) as caught:
        normalise_host("x" * 5000)
    assert len(str(caught.value)) < 200


def test_longest_legal_name_is_accepted() -> None:
    """A name of exactly 253 characters with 63-character labels is accepted unchanged."""
    name = ".".join(["a" * MAX_LABEL_LENGTH] * 3 + ["b" * 61])
    assert len(name) == MAX_HOST_LENGTH
    assert normalise_host(name.upper()).name == name


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("a.b.c", ["a.b.c", "b.c", "c"]),
        ("www.facebook.com", ["www.facebook.com", "facebook.com", "com"]),
        ("localhost", ["localhost"]),
        ("", [""]),
    ],
)
def test_suffixes_are_most_specific_first(name: str, expected: list[str]) -> None:
    """suffixes() gives one entry per label boundary, most specific first."""
    assert suffixes(name) == expected


def test_suffixes_only_cut_on_label_boundaries() -> None:
    """No suffix of notfacebook.com is facebook.com."""
    assert "facebook.com" not in suffixes("notfacebook.com")


@given(st.text(max_size=300))
def test_normalise_host_property(raw: str) -> None:
    """normalise_host raises only HostError; a name is lower case with no trailing dot or port."""
    try:
        host = normalise_host(raw)
    except HostError:
        return
    assert host.name
    if host.kind is HostKind.NAME:
        assert host.name == host.name.lower()
        assert host.name.isascii()
        assert not host.name.endswith(".")
        assert ":" not in host.name
        assert len(host.name) <= MAX_HOST_LENGTH
        assert normalise_host(host.name) == host
    else:
        assert not host.name.startswith("[")


@given(
    st.lists(
        st.text(alphabet="abcXYZ019-_ü.:[]", min_size=1, max_size=20), min_size=1, max_size=4
    ).map(".".join)
)
def test_normalise_host_property_hostish(raw: str) -> None:
    """On host-like strings too, normalise_host raises only HostError and is idempotent."""
    try:
        host = normalise_host(raw)
    except HostError:
        return
    assert normalise_host(host.name).name == host.name
    if host.kind is HostKind.NAME:
        assert host.name == host.name.lower()
        assert not host.name.endswith(".")
        assert ":" not in host.name


def test_a_long_last_label_is_rejected_like_any_other() -> None:
    """The quick path once let a last label of up to 125 characters through; 63 is the limit."""
    with pytest.raises(HostError, match="label is longer"):
        normalise_host("a." + "b" * (MAX_LABEL_LENGTH + 1))
    assert normalise_host("a." + "b" * MAX_LABEL_LENGTH).name == "a." + "b" * MAX_LABEL_LENGTH


@pytest.mark.parametrize("raw", ["\u0131nstagram.com", "faceboo\u212a.com"])
def test_letters_that_case_fold_to_ascii_take_the_careful_path(raw: str) -> None:
    """Dotless i and the Kelvin sign matched [a-z] case-insensitively: never returned as-is."""
    assert plain_name(raw) is None
    assert normalise_host(raw).name.isascii()


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("www.facebook.com", "www.facebook.com"),
        ("WWW.Facebook.COM.", "www.facebook.com"),
        ("x.123", None),  # the careful path decides (here: a name)
        ("1.2.3.4", None),
        ("facebook.com:443", None),
        ("a..b", None),
        ("", None),
        (".", None),
        ("bücher.example", None),
    ],
)
def test_plain_name_only_takes_names_needing_no_careful_reading(
    raw: str, expected: str | None
) -> None:
    assert plain_name(raw) == expected


@given(st.text(alphabet="abcXYZ019-_ü.:[]\u0131", max_size=80))
def test_plain_name_agrees_with_normalise_host(raw: str) -> None:
    """Whatever the quick path accepts, the careful one gives the same name."""
    name = plain_name(raw)
    if name is not None:
        assert normalise_host(raw) == Host(name)
