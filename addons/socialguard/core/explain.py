"""A decision in a sentence, as a person would say it: what `socialguard check` prints.

The reason codes stay the contract of the audit log, the metrics and `--json`; people read these
sentences instead. Pure: no I/O.
"""

from __future__ import annotations

from socialguard.core.policy import Decision, Reason


def _service(decision: Decision) -> str:
    """`Facebook (social networking)`, or the host when no service is named."""
    if not decision.service_name:
        return decision.host
    category = (decision.category or "").replace("-", " ")
    return f"{decision.service_name} ({category})" if category else decision.service_name


def sentence(decision: Decision) -> str:
    """Why this host is allowed or blocked, in one or two sentences."""
    what = _service(decision)
    ident = decision.exemption_id
    ends = decision.exemption_ends
    reason = decision.reason
    if reason is Reason.NOT_SOCIAL_MEDIA:
        return "Allowed: it is not a social media site in the catalogue."
    if reason is Reason.NEVER_BLOCK:
        return "Allowed: it is on the never-block list (clinical and practice sites)."
    if reason is Reason.CATEGORY_NOT_ENFORCED:
        category = (decision.category or "this kind of site").replace("-", " ")
        name = decision.service_name
        return f"Allowed: {name} is {category}, which this practice does not block."
    if reason is Reason.EXEMPTION:
        purpose = f" ({decision.purpose})" if decision.purpose else ""
        until = f", until {ends}" if ends else ""
        return f"Allowed: {what} under exemption {ident}{purpose}{until}."
    if reason is Reason.BREAK_WINDOW:
        return f"Allowed: {what} during a rest break in this network zone."
    if reason is Reason.NOT_AUTHORISED:
        return (
            f"Blocked: {what} needs an exemption from the Practice Manager, "
            "and none applies to this person or device."
        )
    if reason is Reason.EXEMPTION_EXPIRED:
        return f"Blocked: {what}; exemption {ident} expired on {ends}."
    if reason is Reason.EXEMPTION_NOT_YET_VALID:
        return f"Blocked: {what}; exemption {ident} has not started yet."
    if reason is Reason.EXEMPTION_REVOKED:
        return f"Blocked: {what}; exemption {ident} was withdrawn."
    if reason is Reason.IP_LITERAL:
        return "Allowed: an IP address names no service, so none of the policy applies to it."
    if reason is Reason.MALFORMED_HOST:
        return f"Blocked: the host name could not be read ({decision.detail})."
    if reason is Reason.WORK_EMAIL_SIGNUP:
        return (
            f"Blocked: registering on {what} with a work e-mail address ({decision.detail}) "
            "is not allowed."
        )
    if reason is Reason.INTERNAL_ERROR:
        return "Blocked: the policy could not be checked, so the site was blocked to be safe."
    verb = "Blocked" if decision.blocked else "Allowed"  # a reason added later
    return f"{verb}: {what}."
