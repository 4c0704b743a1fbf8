"""Staff requests for an exemption, made from the block page: one small JSON file in the
state folder, written atomically under a lock, one request per block reference.

A request is bound to its block: who and what come from the proxy's audit event, never from
the form, so nobody can ask on someone else's behalf for something else; and a reference can
be used once, so a request cannot be replayed.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from socialguard.files.authorisation_edit import locked, write_atomic

PENDING = "pending"
APPROVED = "approved"
DECLINED = "declined"
EXPIRED = "expired"


class RequestError(Exception):
    """A request that cannot be made or answered; the message is for the person asking."""


@dataclass(frozen=True, slots=True, kw_only=True)
class StaffRequest:
    """One request: the block it answers, who asked, why, and what became of it."""

    reference: str
    who_kind: str  # user, device, or "name" when the proxy did not know them
    who: str
    service: str
    host: str
    blocked_at: str
    purpose: str
    requested_at: str
    expires_at: str
    status: str = PENDING
    answered_by: str | None = None
    answered_at: str | None = None
    reason: str | None = None
    exemption_id: str | None = None
    until: str | None = None

    def state(self, now: dt.datetime) -> str:
        """Pending requests past their time count as expired even before the file says so."""
        if self.status == PENDING and now.isoformat() >= self.expires_at:
            return EXPIRED
        return self.status


class RequestStore:
    """The requests file (`exemption-requests.json` beside the audit log)."""

    def __init__(self, path: Path, clock: Callable[[], dt.datetime]) -> None:
        self.path = path
        self._clock = clock

    def _read(self) -> dict[str, StaffRequest]:
        try:
            data: Any = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as error:
            raise RequestError(
                f"{self.path}: the requests file cannot be read ({error}) — restore it from a "
                "backup or move it aside"
            ) from None
        known = set(StaffRequest.__dataclass_fields__)
        return {
            str(ref): StaffRequest(**{k: v for k, v in item.items() if k in known})
            for ref, item in (data.get("requests") or {}).items()
            if isinstance(item, dict)
        }

    def _write(self, requests: dict[str, StaffRequest]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        body = {"version": 1, "requests": {ref: asdict(r) for ref, r in requests.items()}}
        write_atomic(self.path, json.dumps(body, indent=2, ensure_ascii=False) + "\n")

    def _locked(self) -> Any:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if not self.path.exists():
            self._write({})
        return locked(self.path)

    def all(self) -> list[StaffRequest]:
        return sorted(self._read().values(), key=lambda r: r.requested_at, reverse=True)

    def get(self, reference: str) -> StaffRequest | None:
        return self._read().get(reference)

    def add(self, request: StaffRequest) -> StaffRequest:
        """Store a new request; RequestError if this reference was used already."""
        with self._locked():
            requests = self._read()
            if request.reference in requests:
                raise RequestError(
                    f"a request was already made for {request.reference}; one request per "
                    "reference — look up its answer instead"
                )
            requests[request.reference] = request
            self._write(requests)
        return request

    def answer(self, reference: str, **changes: Any) -> StaffRequest:
        """Record the answer to a pending request; RequestError if it is not pending."""
        with self._locked():
            requests = self._read()
            current = requests.get(reference)
            if current is None:
                raise RequestError(f"no request for {reference}")
            if current.state(self._clock()) != PENDING:
                raise RequestError(
                    f"the request for {reference} is {current.state(self._clock())}, "
                    "not waiting for an answer"
                )
            requests[reference] = replace(current, **changes)
            self._write(requests)
            return requests[reference]

    def sweep(self) -> list[StaffRequest]:
        """Mark pending requests past their time expired; returns those newly expired."""
        now = self._clock()
        with self._locked():
            requests = self._read()
            expired = [
                r for r in requests.values() if r.status == PENDING and r.state(now) != PENDING
            ]
            for r in expired:
                requests[r.reference] = replace(r, status=EXPIRED)
            if expired:
                self._write(requests)
        return expired
