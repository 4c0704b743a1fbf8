"""Reading a tunnel's ClientHello: every server_name as sent, within 64 KiB."""

from __future__ import annotations

import pytest

from socialguard.proxy.hello import MAX_HELLO_BYTES, HelloError, server_names
from tests.proxy.hooks import client_hello


def test_every_name_is_returned_as_sent() -> None:
    assert server_names(client_hello()) == ["placeholder.example"]
    assert server_names(client_hello([b"www.facebook.com!"])) == ["www.facebook.com!"]
    assert server_names(client_hello([b"a.example", b"b.example"])) == ["a.example", "b.example"]


def test_an_incomplete_hello_is_waited_for() -> None:
    assert server_names(client_hello()[:100]) is None


@pytest.mark.parametrize(
    ("data", "why"),
    [
        (b"\x16\x03\x01\x40\x00\x01\xff\xff\xff" + b"\x00" * 100, "claims"),
        (b"\x16\x03\x01\x40\x00\x01\x00\xf0\x00" + b"\x00" * MAX_HELLO_BYTES, "unreadable"),
        (client_hello([b"caf\xc3\xa9.example"]), "not ASCII"),
    ],
    ids=["claims-16-MiB", "never-complete", "not-ascii"],
)
def test_what_cannot_be_decided_is_refused(data: bytes, why: str) -> None:
    with pytest.raises(HelloError, match=why):
        server_names(data)
