"""The connection hooks (CONNECT, the first bytes of a tunnel) with mitmproxy's own test
flows and layers: fast, no proxy. tests/proxy/test_enforcer.py drives the same through a real
proxy."""

from __future__ import annotations

from pathlib import Path

import pytest
from mitmproxy import exceptions
from mitmproxy.proxy import events, layers
from mitmproxy.test import taddons

from socialguard.proxy.connections import Close, RecheckedTunnel, RefuseTLS
from tests.proxy.hooks import Fixture, client, client_hello, connect_flow, next_layer


def test_connect_to_social_media_is_refused_and_recorded(tmp_path: Path) -> None:
    fx = Fixture(tmp_path)
    with taddons.context(fx.enforcer):
        flow = connect_flow("www.facebook.com")
        fx.enforcer.connections.http_connect(flow)
    assert flow.response is not None
    assert flow.response.status_code == 403
    (event,) = fx.events()
    assert (event["event"], event["reason"], event["via"]) == (
        "access.blocked",
        "not_authorised",
        "connect",
    )


def test_connect_to_an_ordinary_site_opens_unrecorded(tmp_path: Path) -> None:
    fx = Fixture(tmp_path)
    with taddons.context(fx.enforcer):
        flow = connect_flow("news.example.com")
        fx.enforcer.connections.http_connect(flow)
    assert flow.response is None
    assert fx.events() == []


def test_connect_fails_closed_with_the_internal_error_text(tmp_path: Path) -> None:
    fx = Fixture(tmp_path)

    def broken() -> None:
        raise RuntimeError("no policy")

    fx.enforcer.policy = broken  # type: ignore[assignment]
    with taddons.context(fx.enforcer):
        flow = connect_flow("news.example.com")
        fx.enforcer.connections.http_connect(flow)
    assert flow.response is not None
    assert flow.response.status_code == 403
    assert b"could not be checked just now" in (flow.response.content or b"")


def test_a_client_hello_naming_social_media_is_refused(tmp_path: Path) -> None:
    fx = Fixture(tmp_path)
    with taddons.context(fx.enforcer) as ctx:
        nl = next_layer(ctx, client(), "news.example.com", client_hello([b"www.facebook.com"]))
        fx.enforcer.connections.next_layer(nl)
    assert isinstance(nl.layer, RefuseTLS)
    assert [e["via"] for e in fx.events()] == ["tls"]


def test_an_ordinary_client_hello_is_relayed_undecrypted(tmp_path: Path) -> None:
    fx = Fixture(tmp_path)
    with taddons.context(fx.enforcer) as ctx:
        nl = next_layer(ctx, client(), "news.example.com", client_hello([b"news.example.com"]))
        fx.enforcer.connections.next_layer(nl)
    assert isinstance(nl.layer, layers.TCPLayer)
    assert not isinstance(nl.layer, RecheckedTunnel)


def test_a_hello_split_across_segments_is_waited_for(tmp_path: Path) -> None:
    fx = Fixture(tmp_path)
    with taddons.context(fx.enforcer) as ctx:
        hello = client_hello([b"www.facebook.com"])
        nl = next_layer(ctx, client(), "news.example.com", hello[:40])
        with pytest.raises(exceptions.AddonHalt):
            fx.enforcer.connections.next_layer(nl)
    assert nl.layer is None


def test_an_exemption_tunnel_is_rechecked(tmp_path: Path) -> None:
    fx = Fixture(tmp_path)
    with taddons.context(fx.enforcer) as ctx:
        flow = connect_flow("www.facebook.com")
        flow.metadata["proxyauth"] = ("j.smith", "secret")
        fx.enforcer.connections.http_connect(flow)
        nl = next_layer(
            ctx, flow.client_conn, "www.facebook.com", client_hello([b"www.facebook.com"])
        )
        fx.enforcer.connections.next_layer(nl)
    assert isinstance(nl.layer, RecheckedTunnel)
    assert [e["event"] for e in fx.events()] == ["access.exception"]


def test_raw_bytes_in_a_tunnel_are_refused_and_recorded(tmp_path: Path) -> None:
    fx = Fixture(tmp_path)
    with taddons.context(fx.enforcer) as ctx:
        flow = connect_flow("news.example.com")
        fx.enforcer.connections.http_connect(flow)
        nl = next_layer(ctx, flow.client_conn, "news.example.com", b"SSH-2.0-OpenSSH_9.6\r\n")
        fx.enforcer.connections.next_layer(nl)
    assert isinstance(nl.layer, Close)
    assert [e["reason"] for e in fx.events()] == ["not_tls"]


def test_a_server_that_speaks_first_is_held_until_the_client_speaks(tmp_path: Path) -> None:
    fx = Fixture(tmp_path)
    with taddons.context(fx.enforcer) as ctx:
        flow = connect_flow("news.example.com")
        fx.enforcer.connections.http_connect(flow)
        nl = next_layer(ctx, flow.client_conn, "news.example.com", b"")
        nl.events = [events.DataReceived(nl.context.server, b"SSH-2.0-banner\r\n")]
        with pytest.raises(exceptions.AddonHalt):
            fx.enforcer.connections.next_layer(nl)
    assert nl.layer is None


@pytest.mark.parametrize(
    "names",
    [[b"www.facebook.com!"], [b"a" * 64 + b".facebook.com"], [b"a.example", b"b.example"]],
)
def test_odd_server_names_are_malformed_never_allowed(tmp_path: Path, names: list[bytes]) -> None:
    fx = Fixture(tmp_path)
    with taddons.context(fx.enforcer) as ctx:
        nl = next_layer(ctx, client(), "news.example.com", client_hello(names))
        fx.enforcer.connections.next_layer(nl)
    assert isinstance(nl.layer, RefuseTLS)
    assert [e["reason"] for e in fx.events()] == ["malformed_host"]
