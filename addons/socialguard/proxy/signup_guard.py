"""The signup guard's hook: a registration form on a listed site that carries a work e-mail
address is refused (policy: never register on social media or shopping sites with it).

The question itself — is this host guarded, does this form hold a work address — is the core's
(core/signup.py); this adapter reads the request, asks, and answers. Only the address's domain
is recorded.
"""

from __future__ import annotations

import logging
import zlib
from typing import TYPE_CHECKING

from mitmproxy import http

from socialguard.core.hosts import HostError, normalise_host
from socialguard.core.policy import Policy
from socialguard.core.signup import (
    MAX_INSPECTED,
    SignupRequest,
    examine,
    is_guarded,
    signup_decision,
)
from socialguard.proxy.answers import Answers
from socialguard.proxy.names import request_names

if TYPE_CHECKING:
    from socialguard.proxy.enforcer import Enforcer

logger = logging.getLogger("socialguard")


def signup_guarded(names: list[str], policy: Policy) -> bool:
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


def form_bytes(request: http.Request) -> bytes:
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


# Bodies above MAX_INSPECTED are streamed (runner.py), except to a guarded site, where one of
# up to this size is still held whole so that its first MAX_INSPECTED bytes are read before any
# of it is sent on. Larger ones (uploads, never a registration form) stream uninspected.
GUARDED_HOLD_LIMIT = 16 << 20


class SignupGuard:
    """The addon: each request's body, on the sites the signup guard lists."""

    def __init__(self, enforcer: Enforcer, answers: Answers) -> None:
        self._enforcer = enforcer
        self._answers = answers

    def requestheaders(self, flow: http.HTTPFlow) -> None:
        """Hold a guarded site's body whole (up to GUARDED_HOLD_LIMIT) so `request` reads it."""
        if flow.response or flow.error or not flow.live or not flow.request.stream:
            return
        try:
            length = int(flow.request.headers.get("content-length", ""))
        except ValueError:
            return
        if length > GUARDED_HOLD_LIMIT:
            return
        try:
            if self._guarded_host(flow, self._enforcer.policy()) is not None:
                flow.request.stream = False
        except HostError:
            return  # requestheaders has already answered an unreadable host with a 400

    def _guarded_host(self, flow: http.HTTPFlow, policy: Policy) -> str | None:
        """The guarded host among the names the request travels under, if any."""
        settings = policy.settings
        if not settings.signup_hosts or not settings.email_domains:
            return None
        # Every name the request travels under, as requestheaders decides them: a listed
        # CONNECT or SNI with another Host header is still the listed site's server.
        names = request_names(flow.request, flow.client_conn, self._enforcer.connect_host(flow))
        hosts = [normalise_host(name).name for name in names]
        return next((h for h in hosts if is_guarded(h, settings.signup_hosts)), None)

    def request(self, flow: http.HTTPFlow) -> None:
        if flow.response or flow.error or not flow.live:
            return
        try:
            policy = self._enforcer.policy()
            settings = policy.settings
            request = flow.request
            host = self._guarded_host(flow, policy)
            if host is None or request.stream:
                return
            path, _, query = request.path.partition("?")
            verdict = examine(
                SignupRequest(
                    host=host,
                    path=path,
                    query=query,
                    body=form_bytes(request),
                    content_type=request.headers.get("content-type", ""),
                ),
                settings.signup_hosts,
                settings.email_domains,
                policy.signup_endpoints,  # shipped and the practice's, built at load
            )
            if not verdict.refuse:
                return  # signing in, checking out, a newsletter: not a registration
            who = self._enforcer.who_for(flow.client_conn, flow.metadata)
            decision = signup_decision(verdict, host, who, self._enforcer.now(), policy)
            reference = self._answers.record(
                who, decision, policy, via="signup", rule=str(verdict.rule)
            )
            if not decision.blocked:
                return  # a business registration under an exemption that names the site
            self._answers.counted(decision)
            flow.response = self._answers.refusal(
                decision, reference, request, html=True, zone=who.zone
            )
        except HostError:
            return  # requestheaders has already answered an unreadable host with a 400
        except Exception:
            logger.exception("socialguard: signup check failed; refusing")
            flow.response = Answers.internal_error(flow.request)
