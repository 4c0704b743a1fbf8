"""Decision → audit event → answer: what every refusal records and what the client is told.

One place renders every 403 (the block page, JSON or text, by what the client accepts) and the
one 400 for an unreadable host; a hook that fails answers with the block page's internal-error
text (`Reason.INTERNAL_ERROR`), never with a raw string of its own.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from mitmproxy import http

from socialguard.audit.log import AuditLog
from socialguard.core.hosts import HostError
from socialguard.core.policy import Decision, Policy, Reason, Who, event_name, refusal
from socialguard.proxy import blockpage
from socialguard.proxy.metrics import Metrics

NO_CACHE_HEADERS = {"Cache-Control": "no-store", "X-Socialguard": "blocked"}


class Answers:
    """Records decisions in the audit log and renders the client's answer to a refusal."""

    def __init__(
        self, audit: AuditLog, policy: Callable[[], Policy], metrics: Metrics | None = None
    ) -> None:
        self._audit = audit
        self._policy = policy
        self._metrics = metrics

    def record(self, who: Who, decision: Decision, policy: Policy, **extra: Any) -> str:
        """Write the decision's event; returns its reference. A failed write raises: the hook
        refuses, since nothing may be allowed that could not be recorded."""
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
            written = self._audit.record(event_name(decision), fields)
        except Exception:
            if self._metrics is not None:
                self._metrics.audit_failures.inc()
            raise
        return str(written["id"])

    def counted(self, decision: Decision) -> None:
        """Count a decision reached outside `decide()` (no latency to report)."""
        if self._metrics is not None:
            self._metrics.decided(decision, None)

    def refusal(
        self, decision: Decision, reference: str, request: http.Request, *, html: bool
    ) -> http.Response:
        """The 403 for a refused request: the page for browsers, JSON or text for the rest."""
        practice = self._policy().settings.practice
        headers = request.headers
        if html and blockpage.wants_html(
            headers.get("accept", ""), headers.get("x-requested-with", "")
        ):
            body = blockpage.render_html(decision, reference, practice)
            content_type = "text/html; charset=utf-8"
        elif "json" in headers.get("accept", "").lower():
            body = blockpage.render_json(decision, reference)
            content_type = "application/json"
        else:
            body = blockpage.render_text(decision, reference)
            content_type = "text/plain; charset=utf-8"
        return http.Response.make(403, body, {"Content-Type": content_type, **NO_CACHE_HEADERS})

    def bad_request(self, error: HostError, reference: str) -> http.Response:
        """The 400 for a host name that cannot be read: never guessed at, always refused."""
        return http.Response.make(
            400,
            f"Bad request: the host name could not be read ({error.reason}). "
            f"Reference {reference}.\n",
            {"Content-Type": "text/plain; charset=utf-8", **NO_CACHE_HEADERS},
        )

    @staticmethod
    def internal_error(request: http.Request | None = None) -> http.Response:
        """The 403 when the policy could not be checked: blocked to be safe, nothing recorded
        (the failure is in the log), told in the block page's words."""
        host = request.pretty_host if request is not None else "this site"
        decision = refusal(Reason.INTERNAL_ERROR, host)
        body = blockpage.render_text(decision, "not recorded")
        return http.Response.make(
            403, body, {"Content-Type": "text/plain; charset=utf-8", **NO_CACHE_HEADERS}
        )
