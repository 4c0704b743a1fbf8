"""Where socialguard sits in mitmproxy's addon chain, and the options it starts with."""

from __future__ import annotations

from mitmproxy.addons import next_layer, proxyauth

from socialguard.proxy.runner import UNUSED_ADDONS, ProxyOptions, addon_chain, mitmproxy_options
from socialguard.proxy.signin import SignIn


def test_enforcer_sits_after_sign_in_and_before_next_layer() -> None:
    """Identity is known when the enforcer runs, and its next_layer decision still counts."""
    marker = object()
    chain = addon_chain(marker)
    auth = [i for i, a in enumerate(chain) if isinstance(a, proxyauth.ProxyAuth)]
    nxt = [i for i, a in enumerate(chain) if isinstance(a, next_layer.NextLayer)]
    assert len(auth) == 1
    assert isinstance(chain[auth[0]], SignIn)
    assert auth[0] < chain.index(marker) == nxt[0] - 1


def test_page_mode_connects_lazily() -> None:
    """With the HTTPS block page, mitmproxy must not connect to a blocked site at CONNECT."""
    base = {"listen_host": "127.0.0.1", "listen_port": 8080}
    assert mitmproxy_options(ProxyOptions(**base))["connection_strategy"] == "eager"
    paged = mitmproxy_options(ProxyOptions(**base, https_block_page=True))
    assert paged["connection_strategy"] == "lazy"


def test_upstream_mode() -> None:
    """--upstream chains allowed traffic through another HTTP proxy."""
    options = mitmproxy_options(
        ProxyOptions(listen_host="127.0.0.1", listen_port=8080, upstream="http://127.0.0.1:3128")
    )
    assert options["mode"] == ["upstream:http://127.0.0.1:3128"]


def test_the_gateway_carries_only_the_addons_it_uses() -> None:
    """Replay, rewriting, saving, scripts and the mitm.it site are not in the chain: each addon
    is asked about every event of every connection."""
    chain = addon_chain(object())
    assert not [a for a in chain if isinstance(a, UNUSED_ADDONS)]
    kept = {type(a).__name__ for a in chain}
    assert {"Core", "Block", "Proxyserver", "NextLayer", "TlsConfig", "UpstreamAuth"} <= kept
