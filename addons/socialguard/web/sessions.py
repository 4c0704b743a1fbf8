"""Signed cookies for the page: a session (who signed in, until when) and a visitor id that
the sign-in and staff-request forms' CSRF tokens are bound to.

The key is made afresh when the page starts, so a restart signs everyone out. Cookies are
HttpOnly and SameSite=Strict, Secure when the page is served over HTTPS, and never set over
plain HTTP except to a browser on this machine (loopback).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass
from typing import Any

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

SESSION_COOKIE = "sg_session"
VISITOR_COOKIE = "sg_visitor"
CSRF_FIELD = "csrf"


@dataclass(frozen=True, slots=True)
class Session:
    """A signed-in approver: their name and this session's own id (the CSRF tokens' key)."""

    user: str
    sid: str


class SessionExpiredError(Exception):
    """A session cookie that was good but is too old: the approver must sign in again."""

    def __init__(self, user: str) -> None:
        super().__init__(user)
        self.user = user


class Signer:
    """Makes and checks the page's cookies and tokens with one key held in memory."""

    def __init__(self, session_seconds: float, key: bytes | None = None) -> None:
        self.key = key or secrets.token_bytes(32)
        self.session_seconds = session_seconds
        self._sessions = URLSafeTimedSerializer(self.key, salt="socialguard-admin-session")
        self._visitors = URLSafeTimedSerializer(self.key, salt="socialguard-admin-visitor")
        # Sessions signed out before their time: a copied cookie must not outlive sign-out.
        self._ended: dict[str, float] = {}

    def end(self, session: Session) -> None:
        """Refuse this session from now on (until the key changes at the next start)."""
        now = time.time()
        self._ended = {
            sid: at for sid, at in self._ended.items() if now - at < self.session_seconds
        }
        self._ended[session.sid] = now

    def new_session(self, user: str) -> str:
        return self._sessions.dumps({"u": user, "sid": secrets.token_urlsafe(18)})

    def session(self, cookie: str | None) -> Session | None:
        """The session in a cookie; None if none or not ours; SessionExpiredError if too old."""
        if not cookie:
            return None
        try:
            data: Any = self._sessions.loads(cookie, max_age=max(1, int(self.session_seconds)))
        except SignatureExpired as error:
            payload = error.payload
            user = ""
            if payload is not None:
                try:
                    user = str(self._sessions.load_payload(payload).get("u", ""))
                except (BadSignature, AttributeError):
                    user = ""
            raise SessionExpiredError(user) from None
        except BadSignature:
            return None
        if not isinstance(data, dict) or not data.get("u") or not data.get("sid"):
            return None
        if str(data["sid"]) in self._ended:
            return None
        return Session(user=str(data["u"]), sid=str(data["sid"]))

    def new_visitor(self) -> str:
        return self._visitors.dumps(secrets.token_urlsafe(18))

    def visitor(self, cookie: str | None) -> str | None:
        """The visitor id in a cookie, if it is one we signed (good for a day)."""
        if not cookie:
            return None
        try:
            value: Any = self._visitors.loads(cookie, max_age=86400)
        except BadSignature:
            return None
        return value if isinstance(value, str) else None

    def token(self, bound_to: str) -> str:
        """The CSRF token of forms shown to this session or visitor."""
        return hmac.new(self.key, f"csrf|{bound_to}".encode(), hashlib.sha256).hexdigest()

    def token_ok(self, bound_to: str | None, given: str | None) -> bool:
        if not bound_to or not given:
            return False
        return hmac.compare_digest(self.token(bound_to), given)
