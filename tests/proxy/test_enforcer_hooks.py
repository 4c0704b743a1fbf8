"""The enforcer's own hooks (each plain-HTTP request, a client leaving) with mitmproxy's test
flows: fast, no proxy. The real-proxy tests are in test_enforcer.py."""

from __future__ import annotations

from pathlib import Path

from mitmproxy.test import taddons

from tests.proxy.hooks import Fixture, connect_flow, http_flow


def test_a_request_to_social_media_gets_the_block_page(tmp_path: Path) -> None:
    fx = Fixture(tmp_path)
    with taddons.context(fx.enforcer):
        flow = http_flow("http://www.facebook.com/")
        flow.request.headers["accept"] = "text/html"
        fx.enforcer.requestheaders(flow)
    assert flow.response is not None
    assert flow.response.status_code == 403
    (event,) = fx.events()
    assert event["id"] in flow.response.text
    assert (event["event"], event["via"]) == ("access.blocked", "http")


def test_a_host_header_naming_social_media_is_decided_too(tmp_path: Path) -> None:
    fx = Fixture(tmp_path)
    with taddons.context(fx.enforcer):
        flow = http_flow("http://news.example.com/")
        flow.request.headers["host"] = "www.facebook.com"
        fx.enforcer.requestheaders(flow)
    assert flow.response is not None
    assert flow.response.status_code == 403


def test_an_exemption_is_recorded_and_let_through(tmp_path: Path) -> None:
    fx = Fixture(tmp_path)
    with taddons.context(fx.enforcer):
        flow = http_flow("http://www.facebook.com/", user="j.smith")
        fx.enforcer.requestheaders(flow)
    assert flow.response is None
    assert [e["event"] for e in fx.events()] == ["access.exception"]


def test_a_known_name_takes_the_fast_path_and_a_reload_empties_it(tmp_path: Path) -> None:
    fx = Fixture(tmp_path)
    with taddons.context(fx.enforcer):
        fx.enforcer.requestheaders(http_flow("http://news.example.com/"))
        assert fx.enforcer._known_allowed(http_flow("http://news.example.com/")) is not None
        fx.policy = Fixture(tmp_path).policy  # a reload: another Policy object
        assert fx.enforcer._known_allowed(http_flow("http://news.example.com/")) is None
    assert fx.events() == []


def test_an_unreadable_host_is_answered_400_and_recorded(tmp_path: Path) -> None:
    fx = Fixture(tmp_path)
    with taddons.context(fx.enforcer):
        flow = http_flow("http://news.example.com/")
        flow.request.headers["host"] = "www.facebook.com!"
        fx.enforcer.requestheaders(flow)
    assert flow.response is not None
    assert flow.response.status_code == 400
    (event,) = fx.events()
    assert event["reason"] == "malformed_host"


def test_a_failing_check_answers_with_the_internal_error_text(tmp_path: Path) -> None:
    fx = Fixture(tmp_path)
    fx.enforcer.answers.record = None  # type: ignore[assignment,method-assign]
    with taddons.context(fx.enforcer):
        flow = http_flow("http://www.facebook.com/")
        fx.enforcer.requestheaders(flow)
    assert flow.response is not None
    assert flow.response.status_code == 403
    assert "could not be checked just now" in flow.response.text


def test_a_client_leaving_forgets_its_connection(tmp_path: Path) -> None:
    fx = Fixture(tmp_path)
    with taddons.context(fx.enforcer):
        flow = connect_flow("news.example.com")
        fx.enforcer.connections.http_connect(flow)
        assert fx.enforcer.connect_decision(flow.client_conn) is not None
        fx.enforcer.client_disconnected(flow.client_conn)
        assert fx.enforcer.connect_decision(flow.client_conn) is None
