"""Per-client bounds and held connections, with mitmproxy's test connections: fast, no proxy
(test_gate.py drives the same through a real proxy)."""

from __future__ import annotations

import time
from pathlib import Path

from mitmproxy.test import taddons

from tests.conftest import SETTINGS
from tests.proxy.hooks import Fixture, client, http_flow

BOUNDED = SETTINGS + "limits: {connections_per_client: 2, header_timeout_seconds: 1}\n"


def test_connections_per_address_are_bounded_and_freed(tmp_path: Path) -> None:
    fx = Fixture(tmp_path, BOUNDED)
    limits = fx.enforcer.limits
    with taddons.context(fx.enforcer):
        first, second, third = client(), client(), client()
        for conn in (first, second, third):
            limits.client_connected(conn)
        assert (first.error, second.error) == (None, None)
        assert third.error is not None
        limits.client_disconnected(first)
        fourth = client()
        limits.client_connected(fourth)
        assert fourth.error is None


def test_carrier_grade_nat_clients_are_served_only_if_a_zone_lists_them(
    tmp_path: Path,
) -> None:
    zoned = SETTINGS.replace("subnets: [10.10.0.0/24]", "subnets: [10.10.0.0/24, 100.64.0.0/24]")
    fx = Fixture(tmp_path, zoned)
    with taddons.context(fx.enforcer):
        listed, unlisted = client("100.64.0.9"), client("100.65.0.9")
        fx.enforcer.limits.client_connected(listed)
        fx.enforcer.limits.client_connected(unlisted)
    assert listed.error is None
    assert unlisted.error is not None


def test_a_request_in_flight_has_no_deadline_and_the_next_head_has_one(tmp_path: Path) -> None:
    fx = Fixture(tmp_path, BOUNDED)
    limits = fx.enforcer.limits
    with taddons.context(fx.enforcer):
        flow = http_flow("http://news.example.com/")
        limits.client_connected(flow.client_conn)
        assert flow.client_conn.id in limits._deadlines
        limits.requestheaders(flow)
        assert flow.client_conn.id not in limits._deadlines
        limits.response(flow)
        assert limits._deadlines[flow.client_conn.id] <= time.monotonic() + 1
        limits.sweep(time.monotonic() + 2)  # past the bound: closed (no live handler here)
        assert flow.client_conn.id not in limits._deadlines


def test_a_held_connection_is_dropped_once_refused(tmp_path: Path) -> None:
    fx = Fixture(tmp_path, BOUNDED)
    limits = fx.enforcer.limits
    verdicts = [True, False]
    with taddons.context(fx.enforcer):
        conn = client()
        limits.hold(conn, lambda: verdicts.pop(0))
        limits.sweep(time.monotonic())
        assert conn.id in limits._held
        limits.sweep(time.monotonic() + 2)
        assert conn.id not in limits._held
