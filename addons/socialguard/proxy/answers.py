"""Decision → audit event → answer: what every refusal records and what the client is told.

One place renders every 403 (the block page, JSON or text, by what the client accepts) and the
one 400 for an unreadable host; a hook that fails answers with the block page's internal-error
text (`Reason.INTERNAL_ERROR`), never with a raw string of its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from mitmproxy import http

from socialguard.audit.log import AuditLog, utc_now
from socialguard.core.breaks import next_break_label
from socialguard.core.events import event_for
from socialguard.core.hosts import HostError
from socialguard.core.policy import Decision, Policy, Reason, Who, refusal
from socialguard.proxy import blockpage
from socialguard.proxy.metrics import Metrics

logger = logging.getLogger("socialguard")

NO_CACHE_HEADERS = {"Cache-Control": "no-store", "X-Socialguard": "blocked"}
# Repeats of one block — same client address, user, service (or host) and reason — within
# this many seconds of the first are enforced each time but recorded once, as one event with
# their `count` (docs/AUDITORS.md): a stuck app cannot fill the disk or drown the record.
REPEAT_WINDOW_SECONDS = 10.0
_BURSTS_SIZE = 10_000


@dataclass(slots=True)
class _Burst:
    """The first block of a burst (already recorded) and the repeats since."""

    reference: str
    started: float
    event: str
    fields: dict[str, Any]
    count: int = 0


class Answers:
    """Records decisions in the audit log and renders the client's answer to a refusal."""

    def __init__(
        self,
        audit: AuditLog,
        policy: Callable[[], Policy],
        metrics: Metrics | None = None,
        monotonic: Callable[[], float] = time.monotonic,
        clock: Callable[[], dt.datetime] = utc_now,
    ) -> None:
        self._audit = audit
        self._policy = policy
        self._metrics = metrics
        self._monotonic = monotonic
        self._clock = clock
        self._bursts: dict[tuple[str, str, str, str], _Burst] = {}

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
        event = event_for(decision)
        if not decision.blocked:
            return self._write(event, fields)
        now = self._monotonic()
        key = (who.client_ip, who.user, decision.service or decision.host, str(decision.reason))
        burst = self._bursts.get(key)
        if burst is not None and now - burst.started < REPEAT_WINDOW_SECONDS:
            burst.count += 1  # enforced by the caller all the same; recorded with the burst
            burst.fields = fields
            return burst.reference
        if burst is not None or len(self._bursts) >= _BURSTS_SIZE:
            self.flush(everything=len(self._bursts) >= _BURSTS_SIZE)
        reference = self._write(event, fields)
        self._bursts[key] = _Burst(reference=reference, started=now, event=event, fields=fields)
        # Without an event loop (a test), the next record or `flush` writes the burst.
        with contextlib.suppress(RuntimeError):
            asyncio.get_running_loop().call_later(REPEAT_WINDOW_SECONDS, self._flush_quietly)
        return reference

    def flush(self, *, everything: bool = False) -> None:
        """Record each burst whose window has closed (all of them if `everything`) as one
        event with its `count` of repeats; a burst without repeats was recorded already."""
        now = self._monotonic()
        for key, burst in list(self._bursts.items()):
            if not everything and now - burst.started < REPEAT_WINDOW_SECONDS:
                continue
            del self._bursts[key]
            if burst.count:
                fields = {
                    **burst.fields,
                    "count": burst.count,
                    "window_seconds": REPEAT_WINDOW_SECONDS,
                    "repeat_of": burst.reference,
                }
                self._write(burst.event, fields)

    def _flush_quietly(self) -> None:
        try:
            self.flush()
        except Exception:
            logger.exception("socialguard: recording repeated blocks failed")

    def _write(self, event: str, fields: dict[str, Any]) -> str:
        try:
            written = self._audit.record(event, fields)
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
        self,
        decision: Decision,
        reference: str,
        request: http.Request,
        *,
        html: bool,
        zone: str | None = None,
    ) -> http.Response:
        """The 403 for a refused request: the page for browsers, JSON or text for the rest.
        The page names the reader's next rest break where their `zone` has break windows."""
        settings = self._policy().settings
        headers = request.headers
        if html and blockpage.wants_html(
            headers.get("accept", ""), headers.get("x-requested-with", "")
        ):
            rest_break = next_break_label(settings, zone, self._clock()) if zone else None
            body = blockpage.render_html(decision, reference, settings.practice, rest_break)
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
