"""The names of the events socialguard records: one enum for the writer, search, report and CLI.

Values appear in the audit log and auditors' queries: add members, never rename one. Pure: it
says what a decision is recorded as, never writes anything.
"""

from __future__ import annotations

import enum

from socialguard.core.policy import Decision, Reason


class Event(enum.StrEnum):
    """An audit event's `event` field."""

    ACCESS_BLOCKED = "access.blocked"
    ACCESS_EXCEPTION = "access.exception"
    ACCESS_BREAK_WINDOW = "access.break_window"
    SIGNUP_BLOCKED = "signup.blocked"
    POLICY_LOADED = "policy.loaded"
    POLICY_REJECTED = "policy.rejected"
    EXEMPTION_GRANTED = "exemption.granted"
    EXEMPTION_RENEWED = "exemption.renewed"
    EXEMPTION_REVOKED = "exemption.revoked"
    EXEMPTION_CHANGED = "exemption.changed"
    EXEMPTION_REMOVED = "exemption.removed"
    AUDIT_EXPIRED = "audit.expired"
    AUDIT_TORN = "audit.torn"
    AUDIT_EXPORTED = "audit.exported"
    # Directory sign-in (identity.ldap): the directory could not be asked (down, or its
    # certificate not trusted), and a name refused for a while after repeated wrong passwords.
    SIGNIN_DIRECTORY_UNAVAILABLE = "signin.directory_unavailable"
    SIGNIN_THROTTLED = "signin.throttled"
    # `socialguard policy pull` (many practices, one repository): applied or refused.
    POLICY_PULLED = "policy.pulled"
    POLICY_PULL_REJECTED = "policy.pull_rejected"
    AUTH_FAILED = "auth.failed"
    AUTH_RELOADED = "auth.reloaded"
    AUTH_REJECTED = "auth.rejected"
    AUDIT_TRUNCATED = "audit.truncated"
    # The Practice Manager's page, in its own chain (admin/admin-audit.jsonl).
    ADMIN_STARTED = "admin.started"
    ADMIN_SIGNED_IN = "admin.signed_in"
    ADMIN_SIGNIN_FAILED = "admin.signin_failed"
    ADMIN_SIGNIN_LIMITED = "admin.signin_limited"
    ADMIN_SIGNED_OUT = "admin.signed_out"
    ADMIN_SESSION_EXPIRED = "admin.session_expired"
    ADMIN_FORBIDDEN = "admin.forbidden"
    ADMIN_EXEMPTION_GRANTED = "admin.exemption_granted"
    ADMIN_EXEMPTION_RENEWED = "admin.exemption_renewed"
    ADMIN_EXEMPTION_REVOKED = "admin.exemption_revoked"
    ADMIN_ACTION_REFUSED = "admin.action_refused"
    EXEMPTION_REQUESTED = "exemption.requested"
    EXEMPTION_REQUEST_REFUSED = "exemption.request_refused"
    EXEMPTION_DECLINED = "exemption.declined"
    EXEMPTION_REQUEST_EXPIRED = "exemption.request_expired"
    DIGEST_SENT = "digest.sent"
    DIGEST_FAILED = "digest.failed"


def event_for(decision: Decision) -> Event:
    """What a recorded decision is written as."""
    if decision.reason is Reason.WORK_EMAIL_SIGNUP:
        return Event.SIGNUP_BLOCKED
    if decision.blocked:
        return Event.ACCESS_BLOCKED
    if decision.reason is Reason.EXEMPTION:
        return Event.ACCESS_EXCEPTION
    if decision.reason is Reason.BREAK_WINDOW:
        return Event.ACCESS_BREAK_WINDOW
    raise ValueError(f"a decision for {decision.reason} is not recorded")
