"""The destination guard's hooks with mitmproxy's test flows: fast, no proxy (the real-proxy
tests are in test_gate.py). Only addresses written as such: nothing is resolved here."""

from __future__ import annotations

import asyncio
from pathlib import Path

from mitmproxy import connection
from mitmproxy.proxy import server_hooks
from mitmproxy.test import taddons

from tests.conftest import SETTINGS
from tests.proxy.hooks import Fixture, client, connect_flow, http_flow

ALLOW_TEST_NET = SETTINGS + "destinations: {allow: [192.0.2.0/24], deny: [198.51.100.0/24]}\n"


def test_connect_to_another_port_is_refused_unless_the_address_is_allowed(
    tmp_path: Path,
) -> None:
    fx = Fixture(tmp_path, ALLOW_TEST_NET)
    with taddons.context(fx.enforcer):
        refused = connect_flow("203.0.113.5", 22)
        allowed = connect_flow("192.0.2.7", 8443)
        asyncio.run(fx.enforcer.destination_guard.http_connect(refused))
        asyncio.run(fx.enforcer.destination_guard.http_connect(allowed))
    assert refused.response is not None
    assert refused.response.status_code == 403
    assert allowed.response is None
    (event,) = fx.events()
    assert (event["reason"], event["via"]) == ("port_not_allowed", "connect")


def test_loopback_link_local_and_denied_networks_are_refused(tmp_path: Path) -> None:
    fx = Fixture(tmp_path, ALLOW_TEST_NET)
    urls = ["http://127.0.0.1:9464/metrics", "http://169.254.169.254/", "http://198.51.100.9/"]
    with taddons.context(fx.enforcer):
        flows = [http_flow(url) for url in urls]
        for flow in flows:
            asyncio.run(fx.enforcer.destination_guard.requestheaders(flow))
        ordinary = http_flow("http://203.0.113.80/")
        asyncio.run(fx.enforcer.destination_guard.requestheaders(ordinary))
    assert [f.response.status_code for f in flows] == [403, 403, 403]
    assert ordinary.response is None
    assert [e["reason"] for e in fx.events()] == ["destination_refused"] * 3


def test_the_last_gate_refuses_a_dial_and_a_connected_address(tmp_path: Path) -> None:
    fx = Fixture(tmp_path)
    with taddons.context(fx.enforcer):
        conn = client()
        server = connection.Server(address=("127.0.0.1", 80))
        asyncio.run(
            fx.enforcer.destination_guard.server_connect(
                server_hooks.ServerConnectionHookData(client=conn, server=server)
            )
        )
        assert server.error is not None
        rebound = connection.Server(address=("news.example.com", 80))
        rebound.peername = ("127.0.0.1", 80)
        fx.enforcer.destination_guard.server_connected(
            server_hooks.ServerConnectionHookData(client=conn, server=rebound)
        )
    assert [(e["reason"], e["via"]) for e in fx.events()] == [
        ("destination_refused", "server-connect"),
        ("destination_refused", "server-connect"),
    ]
