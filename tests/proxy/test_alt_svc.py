"""Alt-Svc: HTTP/3 alternatives are removed from relayed responses, the rest kept."""

from __future__ import annotations

from mitmproxy.test import taddons, tflow

from socialguard.proxy.alt_svc import AltSvc, strip_quic_alt_svc


def test_h3_alternatives_are_removed_and_others_kept() -> None:
    assert strip_quic_alt_svc('h3=":443"; ma=86400, h2="alt.example:443"') == 'h2="alt.example:443"'
    assert strip_quic_alt_svc('h3-29=":443", quic=":443"') is None


def test_the_hook_rewrites_the_response_header() -> None:
    addon = AltSvc()
    with taddons.context(addon):
        flow = tflow.tflow(resp=True)
        flow.response.headers["alt-svc"] = 'h3=":443"; ma=86400'
        flow.response.headers.add("alt-svc", 'h2=":8443"')
        addon.responseheaders(flow)
    assert flow.response.headers.get_all("alt-svc") == ['h2=":8443"']
