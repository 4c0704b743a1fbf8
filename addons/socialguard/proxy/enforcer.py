"""The mitmproxy addon that puts `decide()` on the wire: CONNECT, TLS ClientHello and each
plain-HTTP request are decided, blocked ones refused, allowed tunnels relayed undecrypted.

With `https_block: page`, a blocked HTTPS connection (and only a blocked one) is intercepted
with the gateway's CA so that its requests can be answered with the block page; nothing on such
a connection ever reaches the network (see docs/BYPASSES.md for what each check closes).

Thin: it holds what one client connection is (who, its CONNECT decision, whether it is
intercepted), gathers names, asks the core and records through `answers`. The hooks by
concern are its child addons: connections (CONNECT, TLS), the signup guard, Alt-Svc.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import time
from collections.abc import Callable, Iterable

from mitmproxy import connection, http

from socialguard.audit.log import AuditLog, utc_now
from socialguard.core.hosts import HostError, normalise_host
from socialguard.core.policy import (
    TIMELESS_REASONS,
    Decision,
    Policy,
    Reason,
    Who,
    attribute,
    decide,
    most_restrictive,
    refusal,
)
from socialguard.proxy.alt_svc import AltSvc
from socialguard.proxy.answers import Answers
from socialguard.proxy.connections import Connections
from socialguard.proxy.destination_guard import DestinationGuard
from socialguard.proxy.directory import DIRECTORY_GROUPS
from socialguard.proxy.limits import RECHECK_NAMES, Limits
from socialguard.proxy.metrics import Metrics
from socialguard.proxy.names import request_names, username
from socialguard.proxy.signup_guard import SignupGuard

logger = logging.getLogger("socialguard")

KNOWN_NAMES_SIZE = 65536


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
        if decision.reason not in TIMELESS_REASONS or decision.recorded:
            return
        decisions = self.for_policy(policy)
        if len(decisions) >= self._size:
            decisions.clear()  # simpler than LRU, and a full table is rare: it refills at once
        decisions[name] = decision


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
        self.policy = policy
        # `https_block` is read once: mitmproxy's connection strategy was set from it at start
        # (lazy for pages), and a blocked tunnel must never connect out eagerly.
        self.page_mode = policy().settings.https_block == "page" if page_mode is None else page_mode
        self._clock = clock
        self._metrics = metrics
        self.answers = Answers(audit, policy, metrics, clock=clock)
        # Per client connection: who it is (from the CONNECT, under which policy: a reload may
        # move a device, a subnet or a group member) and the CONNECT decision.
        self._who: dict[str, tuple[Policy, Who]] = {}
        self._connect: dict[str, Decision] = {}
        # Per intercepted (blocked, page mode) connection: its decision and audit reference, so
        # the block page shows the id of the event recorded when the connection was refused.
        self._intercepted: dict[str, tuple[Decision, str]] = {}
        self._known = KnownNames()
        # mitmproxy calls these after the enforcer's own hooks, in this order.
        self.connections = Connections(self, self.answers)
        self.destination_guard = DestinationGuard(self, self.answers)
        self.signup_guard = SignupGuard(self, self.answers)
        self.limits = Limits(self)
        self.addons = [
            self.connections,
            self.destination_guard,
            self.signup_guard,
            AltSvc(),
            self.limits,
        ]

    # -- what one client connection is ---------------------------------------------------
    def who_for(self, client: connection.Client, metadata: dict[str, object] | None) -> Who:
        user = username(metadata)
        policy = self.policy()
        known = self._who.get(client.id)
        if known is not None:
            known_policy, known_who = known
            if user is None or user == known_who.user:
                if known_policy is policy:
                    return known_who
                user = known_who.user  # the sign-in holds for the connection; the rest may move
        who = self._known.who(policy, client.peername[0], user)
        directory_groups = metadata.get(DIRECTORY_GROUPS) if metadata and user else None
        if isinstance(directory_groups, frozenset) and directory_groups:
            # Directory sign-in: the user's directory groups join the policy's own.
            who = dataclasses.replace(who, groups=who.groups | directory_groups)
        self._who[client.id] = (policy, who)
        return who

    def connected(self, client: connection.Client, decision: Decision) -> None:
        self._connect[client.id] = decision

    def connect_decision(self, client: connection.Client) -> Decision | None:
        return self._connect.get(client.id)

    def connect_host(self, flow: http.HTTPFlow) -> str | None:
        connect = self._connect.get(flow.client_conn.id)
        return connect.host if connect is not None else None

    def intercept(self, client: connection.Client, decision: Decision, reference: str) -> None:
        self._intercepted[client.id] = (decision, reference)

    def intercepted(self, client: connection.Client) -> tuple[Decision, str] | None:
        return self._intercepted.get(client.id)

    def done(self) -> None:
        self.answers.flush(everything=True)

    def client_disconnected(self, client: connection.Client) -> None:
        self._who.pop(client.id, None)
        self._connect.pop(client.id, None)
        self._intercepted.pop(client.id, None)

    # -- deciding ------------------------------------------------------------------------
    def decide_names(self, who: Who, names: Iterable[str], policy: Policy) -> Decision:
        """The most restrictive decision over every name a connection travels under."""
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

    def still_allowed(self, client: connection.Client, names: list[str]) -> Callable[[], bool]:
        """Decides an open connection's names again, recording the block if it is now refused."""

        def check() -> bool:
            try:
                policy = self.policy()
                who = self.who_for(client, None)
                decision = self.decide_names(who, names, policy)
                if decision.blocked:
                    self.answers.record(who, decision, policy, via="open-tunnel")
            except Exception:
                logger.exception("socialguard: deciding an open connection failed; closing it")
                return False
            return not decision.blocked

        return check

    def _known_allowed(self, flow: http.HTTPFlow) -> Decision | None:
        """The decision for a request all of whose names are known to pass unrecorded, if so.

        The common case on a keep-alive connection: no identity, no clock, no normalisation.
        Intercepted (blocked) connections always take the full path.
        """
        client = flow.client_conn
        if client.id in self._intercepted:
            return None
        known = self._known.for_policy(self.policy())
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
            policy = self.policy()
            who = self.who_for(flow.client_conn, flow.metadata)
            request = flow.request
            names = request_names(request, flow.client_conn, self.connect_host(flow))
            for name in names:
                normalise_host(name)  # a malformed name is answered 400, never guessed
            decision = self.decide_names(who, names, policy)
            intercepted = self._intercepted.get(flow.client_conn.id)
            if intercepted is not None and not decision.blocked:
                decision = intercepted[0]  # never: the connection's names are among `names`
            # URL paths and queries are personal data: recorded only if IT opted in.
            path = {"path": request.path} if policy.settings.audit_record_paths else {}
            if decision.blocked:
                if intercepted is not None and intercepted[0] == decision:
                    reference = intercepted[1]  # the event recorded when it was intercepted
                else:
                    reference = self.answers.record(who, decision, policy, via="http", **path)
                flow.response = self.answers.refusal(
                    decision, reference, request, html=True, zone=who.zone
                )
            elif decision.recorded:
                self.answers.record(who, decision, policy, via="http", **path)
                # An exemption or a break: a WebSocket opened on it is decided again while open.
                flow.metadata[RECHECK_NAMES] = names
        except HostError as error:
            try:
                self._bad_request(flow, error)
            except Exception:
                logger.exception("socialguard: recording a malformed host failed; refusing")
                flow.response = Answers.internal_error(flow.request)
        except Exception:
            logger.exception("socialguard: request hook failed; refusing")
            flow.response = Answers.internal_error(flow.request)

    def now(self) -> dt.datetime:
        """The enforcer's clock (tests pass a fixed one)."""
        return self._clock()

    def _bad_request(self, flow: http.HTTPFlow, error: HostError) -> None:
        policy = self.policy()
        who = self.who_for(flow.client_conn, flow.metadata)
        decision = refusal(Reason.MALFORMED_HOST, error.raw, error.reason)
        reference = self.answers.record(who, decision, policy, via="http")
        self.answers.counted(decision)
        flow.response = self.answers.bad_request(error, reference)
