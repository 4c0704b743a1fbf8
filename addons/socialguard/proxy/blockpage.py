"""What a member of staff sees when something is blocked: a plain-English page, or a short
JSON or text answer for apps and scripts that cannot show a page.

Pure rendering: no mitmproxy, no I/O beyond reading the packaged template once.
"""

from __future__ import annotations

import json
import urllib.parse

from socialguard.core.policy import Decision, Reason
from socialguard.core.settings import Practice
from socialguard.templates import environment

REASON_TEXT = {
    Reason.NOT_AUTHORISED: "Social media needs an exemption from the Practice Manager, "
    "and you do not have one for this service.",
    Reason.EXEMPTION_EXPIRED: "Your exemption {exemption_id} expired on {ends}. "
    "Ask for it to be renewed if you still need it.",
    Reason.EXEMPTION_NOT_YET_VALID: "Your exemption {exemption_id} has not started yet.",
    Reason.EXEMPTION_REVOKED: "Your exemption {exemption_id} has been withdrawn.",
    Reason.MALFORMED_HOST: "The address of this site could not be read ({detail}).",
    Reason.WORK_EMAIL_SIGNUP: "The form carried a work e-mail address ({detail}). The policy "
    "does not allow registering on social media or shopping sites with it: use a personal "
    "address for a personal account, and ask the Practice Manager about a business one.",
    Reason.INTERNAL_ERROR: "The policy could not be checked just now, so the site was "
    "blocked to be safe. Please tell IT.",
}


def reason_text(decision: Decision) -> str:
    template = REASON_TEXT.get(decision.reason, "This site is not allowed by the policy.")
    return template.format(
        exemption_id=decision.exemption_id, ends=decision.exemption_ends, detail=decision.detail
    )


def render_html(
    decision: Decision,
    reference: str,
    practice: Practice,
    rest_break: str | None = None,
    *,
    admin_url: str | None = None,
) -> str:
    """The page; `rest_break` is the reader's next break ("today 12:30-13:30"), or None where
    their zone has none — then the page does not mention breaks at all. With the Practice
    Manager's page set up (admin.public_url), a link to ask there for an exemption, carrying
    this block's reference."""
    request_url = None
    if admin_url and decision.service and decision.reason is not Reason.WORK_EMAIL_SIGNUP:
        request_url = f"{admin_url}/request?ref={urllib.parse.quote(reference)}"
    return (
        environment()
        .get_template("block.html")
        .render(
            host=decision.host,
            service_name=decision.service_name,
            category=(decision.category or "").replace("-", " "),
            reason_text=reason_text(decision),
            reference=reference,
            practice=practice.name,
            contact=practice.contact,
            policy_url=practice.policy_url,
            privacy_url=practice.privacy_url,
            signup=decision.reason is Reason.WORK_EMAIL_SIGNUP,
            # A registration with the work address is not allowed in a break either.
            rest_break=None if decision.reason is Reason.WORK_EMAIL_SIGNUP else rest_break,
            request_url=request_url,
        )
    )


def render_json(decision: Decision, reference: str) -> str:
    return json.dumps(
        {
            "error": "blocked_by_practice_policy",
            "host": decision.host,
            "service": decision.service,
            "category": decision.category,
            "reason": str(decision.reason),
            "message": reason_text(decision),
            "reference": reference,
        }
    )


def render_text(decision: Decision, reference: str) -> str:
    what = decision.service_name or decision.host
    return (
        f"Blocked by the practice's social media policy: {what}. {reason_text(decision)} "
        f"Reference {reference}.\n"
    )


def wants_html(accept: str, requested_with: str) -> bool:
    """Browsers ask for text/html; apps, API calls and XHR get a short answer instead."""
    if requested_with.lower() == "xmlhttprequest":
        return False
    accept = accept.lower()
    return not accept or "text/html" in accept or accept.strip() == "*/*"
