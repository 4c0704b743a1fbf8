"""Connection decisions: the CONNECT line, then the TLS ClientHello inside the tunnel (or on a
transparently redirected connection). Allowed tunnels are relayed undecrypted; blocked ones are
refused with a TLS alert, or intercepted for the block page with `https_block: page`; tunnels an
exemption or a rest break let through are decided again while open.

Every hook fails closed: an error here blocks, it never allows.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from mitmproxy import exceptions, http
from mitmproxy.net.tls import starts_like_tls_record
from mitmproxy.proxy import commands, events, layer, layers
from mitmproxy.proxy.context import Context
from mitmproxy.proxy.layers.http import HTTPMode

from socialguard.core.hosts import HostError, normalise_host
from socialguard.core.policy import Reason, refusal
from socialguard.proxy.answers import Answers
from socialguard.proxy.hello import HelloError, server_names
from socialguard.proxy.names import tunnel_names
from socialguard.proxy.signup_guard import signup_guarded

if TYPE_CHECKING:
    from socialguard.proxy.enforcer import Enforcer

logger = logging.getLogger("socialguard")

# A TLS fatal alert, access_denied (49), in a TLS 1.2 record: "tlsv1 alert access denied".
TLS_ACCESS_DENIED = bytes([0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 49])
# How often a tunnel let through by an exemption or a rest break is decided again.
RECHECK_SECONDS = 1.0
# A TLS handshake record starts 0x16 0x03; `starts_like_tls_record` needs three bytes to say so.
_TLS_RECORD_START = b"\x16\x03"
_TLS_PREFIX_LEN = 3


_HTTP_METHOD_MAX = 16
_HTTP_REQUEST_START = re.compile(rb"[A-Z]{1,16} ")


def _looks_like_http(data: bytes) -> bool:
    return _HTTP_REQUEST_START.match(data) is not None


def _malformed(sent: list[str]) -> str | None:
    """Why a ClientHello's server names cannot be decided (None: they can): a name that does
    not normalise, or several names that disagree, is never guessed at."""
    hosts = set()
    for name in sent:
        try:
            hosts.add(normalise_host(name).name)
        except HostError as error:
            return f"the ClientHello's server name {name[:80]!r}: {error.reason}"
    if len(hosts) > 1:
        return f"the ClientHello names {len(hosts)} different hosts"
    return None


class Close(layer.Layer):
    """Closes the client connection at once: for what a blocked tunnel may not carry."""

    def _handle_event(self, event: events.Event) -> layer.CommandGenerator[None]:
        if isinstance(event, events.Start):
            yield commands.CloseConnection(self.context.client)


class RefuseTLS(layer.Layer):
    """Answers a ClientHello with an access-denied alert and closes: a clear, early refusal."""

    def _handle_event(self, event: events.Event) -> layer.CommandGenerator[None]:
        if isinstance(event, events.Start):
            yield commands.SendData(self.context.client, TLS_ACCESS_DENIED)
            yield commands.CloseConnection(self.context.client)


class RecheckedTunnel(layers.TCPLayer):
    """A tunnel let through by an exemption or a rest break, closed once that no longer holds.

    Plain tunnels are never decided again; these are, at most once a second while data flows,
    so an expiry, a revocation or the end of a break ends an open connection too.
    """

    def __init__(self, context: Context, still_allowed: Callable[[], bool]) -> None:
        super().__init__(context, ignore=True)
        self._still_allowed = still_allowed
        self._next_check = time.monotonic() + RECHECK_SECONDS

    def relay_messages(self, event: events.Event) -> layer.CommandGenerator[None]:
        if isinstance(event, events.DataReceived) and time.monotonic() >= self._next_check:
            self._next_check = time.monotonic() + RECHECK_SECONDS
            if not self._still_allowed():
                self._handle_event = self.done
                yield commands.CloseConnection(self.context.client)
                yield commands.CloseConnection(self.context.server)
                return
        yield from super().relay_messages(event)


class Connections:
    """The addon: CONNECT and the first bytes of each tunnel."""

    def __init__(self, enforcer: Enforcer, answers: Answers) -> None:
        self._enforcer = enforcer
        self._answers = answers

    # -- CONNECT ---------------------------------------------------------------------------
    def http_connect(self, flow: http.HTTPFlow) -> None:
        if flow.response or flow.error or not flow.live:
            return  # e.g. proxy authentication already answered 407
        enforcer = self._enforcer
        try:
            policy = enforcer.policy()
            who = enforcer.who_for(flow.client_conn, flow.metadata)
            decision = enforcer.decide_names(who, [flow.request.host], policy)
            enforcer.connected(flow.client_conn, decision)
            if decision.blocked or decision.recorded:
                # Recorded now, whatever follows: a device without the CA never gets further.
                reference = self._answers.record(who, decision, policy, via="connect")
                if decision.blocked and enforcer.page_mode:
                    # The tunnel opens, but lazily: nothing connects upstream. next_layer
                    # intercepts it and each request on it is answered with the block page.
                    enforcer.intercept(flow.client_conn, decision, reference)
                elif decision.blocked:
                    flow.response = self._answers.refusal(
                        decision, reference, flow.request, html=False
                    )
        except Exception:
            logger.exception("socialguard: CONNECT hook failed; refusing")
            flow.response = Answers.internal_error(flow.request)

    # -- TLS inside a tunnel, or a transparently redirected connection -----------------------
    def next_layer(self, nextlayer: layer.NextLayer) -> None:
        if nextlayer.layer is not None:
            return
        context = nextlayer.context
        if context.client.transport_protocol != "tcp" or context.server.address is None:
            return
        data = nextlayer.data_client()
        enforcer = self._enforcer
        client = context.client
        intercepted = enforcer.intercepted(client)
        tunnel = enforcer.connect_decision(client) is not None
        if not data:
            if intercepted is not None and nextlayer.data_server():
                nextlayer.layer = Close(context)  # a blocked server that speaks first
            elif nextlayer.data_server():
                # A server that speaks first (SSH, SMTP): nothing reaches the client before
                # the client's own first bytes are a decided ClientHello.
                raise exceptions.AddonHalt
            return
        if len(data) < _TLS_PREFIX_LEN and _TLS_RECORD_START.startswith(data):
            # The first byte or two of a TLS record, sent alone: wait for the ClientHello, or
            # NextLayer would take it for raw TCP and relay it undecided.
            raise exceptions.AddonHalt
        if not starts_like_tls_record(data):
            if intercepted is not None:
                # A blocked tunnel carries HTTP, to be answered with the page, or nothing: left
                # to NextLayer, other bytes would become a raw TCP relay to the blocked site.
                nextlayer.layer = layers.HttpLayer(context, HTTPMode.transparent)
                return
            if client.tls:
                return  # decrypted (a tunnel opened for the signup guard): HTTP, per request
            if not tunnel and _looks_like_http(data):
                return  # transparent plain HTTP: decided per request in requestheaders
            if not tunnel and len(data) < _HTTP_METHOD_MAX and data.isalpha() and data.isupper():
                raise exceptions.AddonHalt  # the start of a method name: wait for the rest
            self._refuse(nextlayer, Close(context), "not a TLS ClientHello", data)
            return
        try:
            sent = server_names(data)
        except HelloError as error:
            self._refuse(nextlayer, RefuseTLS(context), error.reason)
            return
        if sent is None:
            # The ClientHello is split across segments: wait, do not let NextLayer commit.
            raise exceptions.AddonHalt
        try:
            address = str(context.server.address[0])
            names = tunnel_names(address, sent)
            unreadable = False
            malformed = _malformed(sent)
            policy = enforcer.policy()
            who = enforcer.who_for(context.client, None)
            if malformed is not None:
                decision = refusal(Reason.MALFORMED_HOST, address, malformed)
                unreadable = True  # never intercepted for a page: refused at once
            else:
                decision = enforcer.decide_names(who, names, policy)
            if decision.blocked:
                if intercepted is not None and intercepted[0] == decision:
                    reference = intercepted[1]
                else:
                    reference = self._answers.record(who, decision, policy, via="tls")
                if enforcer.page_mode and not unreadable:
                    # NextLayer intercepts with our CA; each request then gets the block page.
                    enforcer.intercept(context.client, decision, reference)
                    return
                nextlayer.layer = RefuseTLS(context)
                return
            if decision.recorded and decision != enforcer.connect_decision(context.client):
                self._answers.record(who, decision, policy, via="tls")
            if signup_guarded(names, policy):
                return  # NextLayer intercepts with our CA, so the `request` hook reads the form
            enforcer.limits.settled(context.client)
            if decision.recorded:  # an exemption or a rest break: it may end while open
                still_allowed = enforcer.still_allowed(context.client, names)
                enforcer.limits.hold(context.client, still_allowed)
                nextlayer.layer = RecheckedTunnel(context, still_allowed)
                return
            nextlayer.layer = layers.TCPLayer(context, ignore=True)
        except Exception:
            logger.exception("socialguard: TLS hook failed; refusing")
            nextlayer.layer = RefuseTLS(context)

    def _refuse(
        self, nextlayer: layer.NextLayer, answer: layer.Layer, why: str, data: bytes = b""
    ) -> None:
        """Refuse a tunnel's first bytes (never relayed) and record it; fails closed."""
        context = nextlayer.context
        nextlayer.layer = answer
        self._enforcer.limits.settled(context.client)
        try:
            enforcer = self._enforcer
            policy = enforcer.policy()
            who = enforcer.who_for(context.client, None)
            connect = enforcer.connect_decision(context.client)
            address = context.server.address
            host = connect.host if connect is not None else str(address[0] if address else "")
            reason = Reason.NOT_TLS if data else Reason.MALFORMED_HOST
            decision = refusal(reason, host, why)
            self._answers.record(who, decision, policy, via="tls")
            self._answers.counted(decision)
        except Exception:
            logger.exception("socialguard: recording a refused tunnel failed")
