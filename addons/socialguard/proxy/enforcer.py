"""The mitmproxy addon that puts `decide()` on the wire: CONNECT, TLS ClientHello and each
plain-HTTP request are decided, blocked ones refused, allowed tunnels relayed undecrypted.

With `https_block: page`, a blocked HTTPS connection (and only a blocked one) is intercepted
with the gateway's CA so that its requests can be answered with the block page; nothing on such
a connection ever reaches the network (see docs/BYPASSES.md for what each check closes).

A thin adapter: it gathers names and identity from mitmproxy, asks the pure core, acts, and
records. Every hook fails closed: an error here blocks, it never allows.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import re
import time
import zlib
from collections.abc import Callable, Iterator
from typing import Any

from mitmproxy import connection, exceptions, http
from mitmproxy.net.tls import starts_like_tls_record
from mitmproxy.proxy import commands, events, layer, layers
from mitmproxy.proxy.context import Context
from mitmproxy.proxy.layers.http import HTTPMode
from mitmproxy.proxy.layers.tls import parse_client_hello

from socialguard.audit.log import AuditLog, utc_now
from socialguard.core.breaks import next_break_label
from socialguard.core.events import event_for
from socialguard.core.hosts import HostError, normalise_host
from socialguard.core.policy import (
    Action,
    Decision,
    Policy,
    Reason,
    Who,
    attribute,
    decide,
    most_restrictive,
)
from socialguard.core.signup import (
    MAX_INSPECTED,
    SignupRequest,
    examine,
    is_guarded,
    signup_decision,
)
from socialguard.files.signup_file import embedded_endpoints
from socialguard.proxy import blockpage
from socialguard.proxy.directory import DIRECTORY_GROUPS
from socialguard.proxy.metrics import Metrics

logger = logging.getLogger("socialguard")

# A TLS fatal alert, access_denied (49), in a TLS 1.2 record: "tlsv1 alert access denied".
TLS_ACCESS_DENIED = bytes([0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 49])
HTTP_403_HEADERS = {"Cache-Control": "no-store", "X-Socialguard": "blocked"}
# How often a tunnel let through by an exemption or a rest break is decided again.
RECHECK_SECONDS = 1.0
# A TLS handshake record starts 0x16 0x03; `starts_like_tls_record` needs three bytes to say so.
_TLS_RECORD_START = b"\x16\x03"
_TLS_PREFIX_LEN = 3
# One Alt-Svc alternative: `h3=":443"; ma=86400`. Commas inside quoted strings do not split.
_ALT_SVC_ITEM = re.compile(r'(?:[^,"]|"[^"]*")+')
# HTTP/3 and the QUIC drafts that preceded it: `h3`, `h3-29`, `h3-Q050`, `quic`, `hq-…`.
_QUIC_PROTOCOLS = ("h3", "quic", "hq")
# Answers that depend on the name and the policy alone, never on who asks or when: the same raw
# name always gets the same one while the policy in force is the same object, so it is kept.
_TIMELESS_REASONS = frozenset(
    {
        Reason.NOT_SOCIAL_MEDIA,
        Reason.NEVER_BLOCK,
        Reason.CATEGORY_NOT_ENFORCED,
        Reason.IP_LITERAL,
    }
)
KNOWN_NAMES_SIZE = 65536


def strip_quic_alt_svc(value: str) -> str | None:
    """An Alt-Svc value without its HTTP/3 alternatives (None if nothing is left).

    A browser told "h3 on UDP 443" would try QUIC straight to the site, around the proxy;
    without the advertisement it stays on TCP, where every connection is decided.
    """
    kept = []
    for item in _ALT_SVC_ITEM.findall(value):
        alternative = item.strip()
        protocol = alternative.split("=", 1)[0].strip().lower()
        if alternative and not protocol.startswith(_QUIC_PROTOCOLS):
            kept.append(alternative)
    return ", ".join(kept) or None


class Close(layer.Layer):
    """Closes the client connection at once: for what a blocked tunnel may not carry."""

    def _handle_event(self, event: events.Event) -> layer.CommandGenerator[None]:
        if isinstance(event, events.Start):
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


class RefuseTLS(layer.Layer):
    """Answers a ClientHello with an access-denied alert and closes: a clear, early refusal."""

    def _handle_event(self, event: events.Event) -> layer.CommandGenerator[None]:
        if isinstance(event, events.Start):
            yield commands.SendData(self.context.client, TLS_ACCESS_DENIED)
            yield commands.CloseConnection(self.context.client)


class KnownNames:
    """Raw names already decided as allowed, unrecorded and timeless under one policy.

    Most traffic is allowed non-social traffic, asked again on every keep-alive request: this
    spares it host normalisation, the catalogue walk and attribution. Bounded; emptied whenever
    the policy in force is replaced, so a reload is seen by the very next request.
    """

    def __init__(self, size: int = KNOWN_NAMES_SIZE) -> None:
        self._size = size
        self._policy: Policy | None = None
        self._decisions: dict[str, Decision] = {}
        self._who: dict[tuple[str, str | None], Who] = {}

    def for_policy(self, policy: Policy) -> dict[str, Decision]:
        """The remembered decisions, valid for `policy` (emptied if it is not the last one)."""
        if policy is not self._policy:
            self._policy = policy
            self._decisions = {}
            self._who = {}
        return self._decisions

    def who(self, policy: Policy, client_ip: str, user: str | None) -> Who:
        """`attribute()` for an address and user name, remembered under the same policy."""
        self.for_policy(policy)
        key = (client_ip, user)
        who = self._who.get(key)
        if who is None:
            who = attribute(client_ip, user, policy.settings)
            if len(self._who) >= self._size:
                self._who.clear()
            self._who[key] = who
        return who

    def remember(self, policy: Policy, name: str, decision: Decision) -> None:
        if decision.reason not in _TIMELESS_REASONS or decision.recorded:
            return
        decisions = self.for_policy(policy)
        if len(decisions) >= self._size:
            decisions.clear()  # simpler than LRU, and a full table is rare: it refills at once
        decisions[name] = decision


def _signup_guarded(names: list[str], policy: Policy) -> bool:
    """Whether a tunnel to these names must be opened so the signup guard can read its forms."""
    settings = policy.settings
    if not settings.signup_hosts or not settings.email_domains:
        return False
    for name in names:
        try:
            host = normalise_host(name).name
        except HostError:
            continue
        if is_guarded(host, settings.signup_hosts):
            return True
    return False


def _form_bytes(request: http.Request) -> bytes:
    """The first MAX_INSPECTED bytes of a request body, decoded without ever inflating more:
    a small gzip body can expand a thousandfold, and all of it would sit on the event loop."""
    raw = request.raw_content or b""
    encoding = request.headers.get("content-encoding", "").strip().lower()
    if encoding in ("", "identity"):
        return raw[:MAX_INSPECTED]
    if encoding in ("gzip", "x-gzip", "deflate"):
        inflate = zlib.decompressobj(zlib.MAX_WBITS | 32)  # a gzip or zlib header
        try:
            return inflate.decompress(raw, MAX_INSPECTED)
        except zlib.error:
            return raw[:MAX_INSPECTED]
    return raw[:MAX_INSPECTED]  # br, zstd: not read; browsers do not compress form posts


def _username(metadata: dict[str, Any]) -> str | None:
    """The proxy-auth user name; the password beside it is never kept or logged."""
    auth = metadata.get("proxyauth")
    if isinstance(auth, tuple) and auth and isinstance(auth[0], str) and auth[0]:
        return auth[0]
    return None


class Enforcer:
    """Decides every connection and request against the policy in force."""

    def __init__(
        self,
        policy: Callable[[], Policy],
        audit: AuditLog,
        clock: Callable[[], dt.datetime] = utc_now,
        metrics: Metrics | None = None,
        *,
        page_mode: bool | None = None,
    ) -> None:
        self._policy = policy
        # `https_block` is read once: mitmproxy's connection strategy was set from it at start
        # (lazy for pages), and a blocked tunnel must never connect out eagerly.
        self._page_mode = (
            policy().settings.https_block == "page" if page_mode is None else page_mode
        )
        self._audit = audit
        self._clock = clock
        self._metrics = metrics
        # Per client connection: who it is (from the CONNECT, under which policy: a reload may
        # move a device, a subnet or a group member) and the CONNECT decision.
        self._who: dict[str, tuple[Policy, Who]] = {}
        self._connect: dict[str, Decision] = {}
        # Per intercepted (blocked, page mode) connection: its decision and audit reference, so
        # the block page shows the id of the event recorded when the connection was refused.
        self._intercepted: dict[str, tuple[Decision, str]] = {}
        self._known = KnownNames()

    # -- identity ------------------------------------------------------------------------
    def _who_for(self, client: connection.Client, metadata: dict[str, Any] | None) -> Who:
        user = _username(metadata) if metadata else None
        policy = self._policy()
        known = self._who.get(client.id)
        if known is not None:
            known_policy, known_who = known
            if user is None or user == known_who.user:
                if known_policy is policy:
                    return known_who
                user = known_who.user  # the sign-in holds for the connection; the rest may move
        who = self._known.who(policy, client.peername[0], user)
        directory_groups = metadata.get(DIRECTORY_GROUPS) if metadata and user else None
        if directory_groups:
            # Directory sign-in: the user's directory groups join the policy's own.
            who = dataclasses.replace(who, groups=who.groups | directory_groups)
        self._who[client.id] = (policy, who)
        return who

    # -- recording -----------------------------------------------------------------------
    def _record(self, who: Who, decision: Decision, policy: Policy, **extra: Any) -> str:
        event = event_for(decision)
        fields = {
            "client_ip": who.client_ip,
            "user": who.user,
            "device": who.device,
            "zone": who.zone,
            "host": decision.host,
            "service": decision.service,
            "category": decision.category,
            "reason": str(decision.reason),
            "exemption_id": decision.exemption_id,
            "purpose": decision.purpose,
            "policy_digest": policy.digest,
        }
        if decision.detail:
            fields["detail"] = decision.detail
        fields.update(extra)
        try:
            written = self._audit.record(event, fields)
        except Exception:
            if self._metrics is not None:
                self._metrics.audit_failures.inc()
            raise  # the hook refuses: nothing is allowed that could not be recorded
        return str(written["id"])

    def _decide_names(self, who: Who, names: Iterator[str], policy: Policy) -> Decision:
        started = time.perf_counter()
        known = self._known.for_policy(policy)
        when: dt.datetime | None = None
        decisions = []
        for name in dict.fromkeys(names):
            if not name:
                continue
            decision = known.get(name)
            if decision is None:
                if when is None:
                    when = self._clock()
                decision = decide(who, name, when, policy)
                self._known.remember(policy, name, decision)
            decisions.append(decision)
        decision = most_restrictive(decisions)
        if self._metrics is not None:
            self._metrics.decided(decision, time.perf_counter() - started)
        return decision

    def _known_allowed(self, flow: http.HTTPFlow) -> Decision | None:
        """The decision for a request all of whose names are known to pass unrecorded, if so.

        The common case on a keep-alive connection: no identity, no clock, no normalisation.
        Intercepted (blocked) connections always take the full path.
        """
        client = flow.client_conn
        if client.id in self._intercepted:
            return None
        known = self._known.for_policy(self._policy())
        request = flow.request
        first = known.get(request.host_header or request.host)
        if first is None or request.host not in known:
            return None
        if client.sni and client.sni not in known:
            return None
        connect = self._connect.get(client.id)
        if connect is not None and connect.host not in known:
            return None
        return first

    # -- CONNECT ---------------------------------------------------------------------------
    def http_connect(self, flow: http.HTTPFlow) -> None:
        if flow.response or flow.error or not flow.live:
            return  # e.g. proxy authentication already answered 407
        try:
            policy = self._policy()
            who = self._who_for(flow.client_conn, flow.metadata)
            decision = self._decide_names(who, iter([flow.request.host]), policy)
            self._connect[flow.client_conn.id] = decision
            if decision.blocked or decision.recorded:
                # Recorded now, whatever follows: a device without the CA never gets further.
                reference = self._record(who, decision, policy, via="connect")
                if decision.blocked and self._page_mode:
                    # The tunnel opens, but lazily: nothing connects upstream. next_layer
                    # intercepts it and each request on it is answered with the block page.
                    self._intercepted[flow.client_conn.id] = (decision, reference)
                elif decision.blocked:
                    flow.response = self._refusal(decision, reference, flow, html=False)
        except Exception:
            logger.exception("socialguard: CONNECT hook failed; refusing")
            flow.response = http.Response.make(403, b"Blocked: the policy could not be checked.\n")

    # -- TLS inside a tunnel, or a transparently redirected connection -----------------------
    def next_layer(self, nextlayer: layer.NextLayer) -> None:
        if nextlayer.layer is not None:
            return
        context = nextlayer.context
        if context.client.transport_protocol != "tcp" or context.server.address is None:
            return
        data = nextlayer.data_client()
        client_id = context.client.id
        if not data:
            if client_id in self._intercepted and nextlayer.data_server():
                nextlayer.layer = Close(context)  # a blocked server that speaks first
            return
        if len(data) < _TLS_PREFIX_LEN and _TLS_RECORD_START.startswith(data):
            # The first byte or two of a TLS record, sent alone: wait for the ClientHello, or
            # NextLayer would take it for raw TCP and relay it undecided.
            raise exceptions.AddonHalt
        if not starts_like_tls_record(data):
            if client_id in self._intercepted:
                # A blocked tunnel carries HTTP, to be answered with the page, or nothing: left
                # to NextLayer, other bytes would become a raw TCP relay to the blocked site.
                nextlayer.layer = layers.HttpLayer(context, HTTPMode.transparent)
            return  # plain HTTP is decided per request in requestheaders
        try:
            try:
                hello = parse_client_hello(data)
            except ValueError:
                hello = None
                names: list[str] = []
                unreadable = True
            else:
                if hello is None:
                    # The ClientHello is split across segments: wait, do not let NextLayer commit.
                    raise exceptions.AddonHalt
                names = [str(context.server.address[0])]
                if hello.sni:
                    names.append(hello.sni)
                unreadable = False
            policy = self._policy()
            who = self._who_for(context.client, None)
            if unreadable:
                decision = Decision(
                    action=Action.BLOCK,
                    reason=Reason.MALFORMED_HOST,
                    host=str(context.server.address[0]),
                    detail="unreadable TLS ClientHello",
                )
            else:
                decision = self._decide_names(who, iter(names), policy)
            if decision.blocked:
                known = self._intercepted.get(client_id)
                if known is not None and known[0] == decision:
                    reference = known[1]
                else:
                    reference = self._record(who, decision, policy, via="tls")
                if self._page_mode and not unreadable:
                    # NextLayer intercepts with our CA; each request then gets the block page.
                    self._intercepted[client_id] = (decision, reference)
                    return
                nextlayer.layer = RefuseTLS(context)
                return
            if decision.recorded and decision != self._connect.get(client_id):
                self._record(who, decision, policy, via="tls")
            if _signup_guarded(names, policy):
                return  # NextLayer intercepts with our CA, so the `request` hook reads the form
            if decision.recorded:  # an exemption or a rest break: it may end while open
                still_allowed = self._still_allowed(context.client, names)
                nextlayer.layer = RecheckedTunnel(context, still_allowed)
                return
            nextlayer.layer = layers.TCPLayer(context, ignore=True)
        except exceptions.AddonHalt:
            raise
        except Exception:
            logger.exception("socialguard: TLS hook failed; refusing")
            nextlayer.layer = RefuseTLS(context)

    def _still_allowed(self, client: connection.Client, names: list[str]) -> Callable[[], bool]:
        """Decides an open tunnel's names again, recording the block if it is now refused."""

        def check() -> bool:
            try:
                policy = self._policy()
                who = self._who_for(client, None)
                decision = self._decide_names(who, iter(names), policy)
                if decision.blocked:
                    self._record(who, decision, policy, via="open-tunnel")
            except Exception:
                logger.exception("socialguard: deciding an open tunnel failed; closing it")
                return False
            return not decision.blocked

        return check

    # -- each HTTP request (plain HTTP, or an intercepted connection) -----------------------
    def requestheaders(self, flow: http.HTTPFlow) -> None:
        if flow.response or flow.error or not flow.live:
            return
        try:
            known = self._known_allowed(flow)
            if known is not None:
                if self._metrics is not None:
                    self._metrics.decided(known, None)
                return  # allowed, not social media: nothing to record, nothing to change
            policy = self._policy()
            who = self._who_for(flow.client_conn, flow.metadata)
            request = flow.request
            # The request's own Host (HTTP/2: :authority) first, so a page names what was asked.
            names = [request.host_header or "", request.host]
            if flow.client_conn.sni:
                names.append(flow.client_conn.sni)
            connect = self._connect.get(flow.client_conn.id)
            if connect is not None:
                names.append(connect.host)
            for name in names:
                if name:
                    normalise_host(name)  # a malformed name is answered 400, never guessed
            decision = self._decide_names(who, iter(names), policy)
            intercepted = self._intercepted.get(flow.client_conn.id)
            if intercepted is not None and not decision.blocked:
                decision = intercepted[0]  # never: the connection's names are among `names`
            # URL paths and queries are personal data: recorded only if IT opted in.
            path = {"path": request.path} if policy.settings.audit_record_paths else {}
            if decision.blocked:
                if intercepted is not None and intercepted[0] == decision:
                    reference = intercepted[1]  # the event recorded when it was intercepted
                else:
                    reference = self._record(who, decision, policy, via="http", **path)
                flow.response = self._refusal(decision, reference, flow, html=True)
            elif decision.recorded:
                self._record(who, decision, policy, via="http", **path)
        except HostError as error:
            try:
                self._bad_request(flow, error)
            except Exception:
                logger.exception("socialguard: recording a malformed host failed; refusing")
                flow.response = http.Response.make(
                    403, b"Blocked: the policy could not be checked.\n"
                )
        except Exception:
            logger.exception("socialguard: request hook failed; refusing")
            flow.response = http.Response.make(403, b"Blocked: the policy could not be checked.\n")

    # -- each request's body, on the sites the signup guard lists --------------------------
    def request(self, flow: http.HTTPFlow) -> None:
        """Refuse a registration that carries a work e-mail address (policy: never register
        on social media or shopping sites with it). Only the address's domain is recorded."""
        if flow.response or flow.error or not flow.live:
            return
        try:
            policy = self._policy()
            settings = policy.settings
            if not settings.signup_hosts or not settings.email_domains:
                return
            request = flow.request
            client = flow.client_conn
            connect = self._connect.get(client.id)
            # Every name the request travels under, as requestheaders decides them: a listed
            # CONNECT or SNI with another Host header is still the listed site's server.
            names = [request.host_header or "", request.host, client.sni or ""]
            names.append(connect.host if connect is not None else "")
            hosts = [normalise_host(name).name for name in names if name]
            host = next((h for h in hosts if is_guarded(h, settings.signup_hosts)), None)
            if host is None:
                return
            path, _, query = request.path.partition("?")
            verdict = examine(
                SignupRequest(
                    host=host,
                    path=path,
                    query=query,
                    body=_form_bytes(request),
                    content_type=request.headers.get("content-type", ""),
                ),
                settings.signup_hosts,
                settings.email_domains,
                embedded_endpoints(),
            )
            if not verdict.refuse:
                return  # signing in, checking out, a newsletter: not a registration
            who = self._who_for(flow.client_conn, flow.metadata)
            decision = signup_decision(verdict, host, who, self._clock(), policy)
            reference = self._record(who, decision, policy, via="signup", rule=str(verdict.rule))
            if not decision.blocked:
                return  # a business registration under an exemption that names the site
            if self._metrics is not None:
                self._metrics.decided(decision, None)
            flow.response = self._refusal(decision, reference, flow, html=True)
        except HostError:
            return  # requestheaders has already answered an unreadable host with a 400
        except Exception:
            logger.exception("socialguard: signup check failed; refusing")
            flow.response = http.Response.make(403, b"Blocked: the policy could not be checked.\n")

    # -- each response socialguard relays (plain HTTP; intercepted ones are all our own) ----
    def responseheaders(self, flow: http.HTTPFlow) -> None:
        if flow.response is None or flow.error or not flow.live:
            return
        try:
            headers = flow.response.headers
            values = headers.get_all("alt-svc")
            if values:
                kept = [v for v in map(strip_quic_alt_svc, values) if v]
                if kept != values:
                    headers.set_all("alt-svc", kept)
        except Exception:
            logger.exception("socialguard: Alt-Svc rewrite failed; header removed")
            flow.response.headers.pop("alt-svc", None)

    def _bad_request(self, flow: http.HTTPFlow, error: HostError) -> None:
        policy = self._policy()
        who = self._who_for(flow.client_conn, flow.metadata)
        decision = Decision(
            action=Action.BLOCK,
            reason=Reason.MALFORMED_HOST,
            host=error.raw[:255],
            detail=error.reason,
        )
        reference = self._record(who, decision, policy, via="http")
        if self._metrics is not None:
            self._metrics.decided(decision, None)
        flow.response = http.Response.make(
            400,
            f"Bad request: the host name could not be read ({error.reason}). "
            f"Reference {reference}.\n",
            {"Content-Type": "text/plain; charset=utf-8", **HTTP_403_HEADERS},
        )

    def _refusal(
        self, decision: Decision, reference: str, flow: http.HTTPFlow, *, html: bool
    ) -> http.Response:
        settings = self._policy().settings
        headers = flow.request.headers
        if html and blockpage.wants_html(
            headers.get("accept", ""), headers.get("x-requested-with", "")
        ):
            zone = self._who_for(flow.client_conn, flow.metadata).zone
            rest_break = next_break_label(settings, zone, self._clock())
            body = blockpage.render_html(decision, reference, settings.practice, rest_break)
            content_type = "text/html; charset=utf-8"
        elif "json" in headers.get("accept", "").lower():
            body = blockpage.render_json(decision, reference)
            content_type = "application/json"
        else:
            body = blockpage.render_text(decision, reference)
            content_type = "text/plain; charset=utf-8"
        return http.Response.make(403, body, {"Content-Type": content_type, **HTTP_403_HEADERS})

    def client_disconnected(self, client: connection.Client) -> None:
        self._who.pop(client.id, None)
        self._connect.pop(client.id, None)
        self._intercepted.pop(client.id, None)
