"""What socialguard records about staff, said in plain English from the settings in force.

The staff notice (UK GDPR Art. 13) and the record of processing (Art. 30) are built here from
`Settings`, never from a fixed text: a setting that is off is never described as on. Pure: the
commands render the sections as text or HTML.
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass

from socialguard.core.settings import Settings

NOT_SET = "not set — fill in practice.{key} in policy.yaml"


@dataclass(frozen=True, slots=True)
class Section:
    """A heading and its paragraphs; a paragraph that is a tuple is a bulleted list."""

    title: str
    paragraphs: tuple[str | tuple[str, ...], ...]


@dataclass(frozen=True, slots=True)
class Document:
    title: str
    sections: tuple[Section, ...]


def _placeholder(value: str | None, key: str) -> str:
    return value if value else NOT_SET.format(key=key)


def _retention(settings: Settings) -> str:
    days = settings.audit_retention_days
    return (
        f"{days} days. Each day's events are deleted {days} days later, and the deletion itself "
        "is recorded (an audit.expired event saying which days were removed)."
    )


def _what_is_recorded(settings: Settings) -> tuple[str, ...]:
    items = [
        "a blocked attempt to reach a social-media service",
        "each use of social media under an exemption the Practice Manager approved",
    ]
    if any(zone.break_windows for zone in settings.zones):
        items.append("each use of social media on a personal device during a rest break")
    if settings.signup_hosts and settings.email_domains:
        items.append(
            "a refused registration on a listed shopping or social site with a work e-mail "
            "address (only the address's domain is kept, never the address)"
        )
    items.append(
        "every change to the list of exemptions, with who approved it, and every change to "
        "the policy files"
    )
    return tuple(items)


def _fields(settings: Settings) -> tuple[str, ...]:
    fields = [
        "the date and time",
        "your user name if you signed in to the proxy, else the name of the device or the "
        "network zone, and the device's network address",
        "the site's host name (for example www.facebook.com), the service and its category",
        "the reason for the decision and, where one applied, the exemption's reference and "
        "its business purpose",
        "a reference number (shown on the block page) and a check value that links each "
        "record to the one before it, so that nothing can be changed unnoticed",
    ]
    if settings.audit_record_paths:
        fields.append(
            "the page's path and query (the part of the address after the host name): "
            "audit.record_paths is on"
        )
    return tuple(fields)


def _never_recorded(settings: Settings) -> tuple[str, ...]:
    items = [
        "sites that are not social media: they are allowed and only counted, never recorded",
        "the contents of any page, message or post",
        "passwords (the proxy checks them and keeps none)",
        "what you type into forms",
    ]
    if not settings.audit_record_paths:
        items.append("the page's path or query: only the host name is kept")
    return tuple(items)


def _decryption(settings: Settings) -> tuple[str | tuple[str, ...], ...]:
    text: list[str | tuple[str, ...]] = [
        "Allowed secure (HTTPS) connections are passed through without being opened: "
        "socialguard sees only the site's name, as any network does."
    ]
    opened = []
    if settings.https_block == "page":
        opened.append(
            "a connection to a blocked social-media site is opened with the practice's own "
            "certificate, only to show you the block page instead of a browser error"
        )
    if settings.signup_hosts and settings.email_domains:
        sites = ", ".join(settings.signup_hosts)
        opened.append(
            f"connections to these sites are opened so that a registration with a work "
            f"e-mail address can be refused: {sites}. Forms sent there are read for a work "
            "address and not kept"
        )
    if opened:
        text.append("Where socialguard does open a connection, and why:")
        text.append(tuple(opened))
    else:
        text.append("No connection is opened: the block page for secure sites is not in use.")
    return tuple(text)


def _copies(settings: Settings) -> str:
    if settings.audit_copies_to:
        return "Copies of the record are sent to: " + "; ".join(settings.audit_copies_to) + "."
    return "No copies are sent elsewhere: the record stays on the practice's gateway."


def notice(settings: Settings) -> Document:
    """The staff privacy notice for the settings in force."""
    practice = settings.practice
    return Document(
        title=f"How {practice.name}'s internet filter uses information about you",
        sections=(
            Section(
                "Why",
                (
                    "The practice's social-media policy allows social media on the practice "
                    "network only where the Practice Manager has authorised it for a business "
                    "purpose (and on personal devices only in rest breaks). socialguard, on the "
                    "practice's internet gateway, applies that policy and keeps a record that "
                    "the policy is applied fairly.",
                    "Lawful basis: " + _placeholder(practice.lawful_basis, "lawful_basis"),
                ),
            ),
            Section("What is recorded, and when", (_what_is_recorded(settings),)),
            Section("What each record holds", (_fields(settings),)),
            Section("What is never recorded", (_never_recorded(settings),)),
            Section("Secure connections", _decryption(settings)),
            Section("How long it is kept", (_retention(settings),)),
            Section(
                "Who can see it",
                (
                    "The Practice Manager and the people they authorise to review the record "
                    "(for example after an incident, as the policy requires), and IT staff "
                    "who look after the gateway.",
                    _copies(settings),
                ),
            ),
            Section(
                "Your rights, and whom to ask",
                (
                    "You can ask for a copy of what is recorded about you (a subject access "
                    f"request): ask {practice.contact}. The practice answers within a month.",
                    "Data protection officer: "
                    + _placeholder(practice.data_protection_officer, "data_protection_officer"),
                ),
            ),
        ),
    )


def record_of_processing(settings: Settings) -> Document:
    """The record of processing (Art. 30) for the practice's data protection officer."""
    practice = settings.practice
    security = [
        "each record is chained to the one before by its SHA-256 hash, so an edit, a "
        "removal or a change of order is found by `socialguard audit verify`",
        "the log's files are created readable by the socialguard account and its group only "
        "(mode 0640), and each record is on disk before the decision is acted on",
        "only policy-relevant events are kept; allowed traffic is counted, not recorded",
    ]
    if settings.audit_hmac_key_file is not None:
        security.insert(
            1,
            f"each record is also signed with a secret key (HMAC-SHA256, key file "
            f"{settings.audit_hmac_key_file}), so records cannot be forged without it",
        )
    else:
        security.insert(1, "records are not signed with a key (audit.hmac_key_file is not set)")
    return Document(
        title=f"Record of processing: internet filtering at {practice.name}",
        sections=(
            Section(
                "Controller and contacts",
                (
                    (
                        f"Controller: {practice.name}",
                        f"Contact: {practice.contact}",
                        "Data protection officer: "
                        + _placeholder(practice.data_protection_officer, "data_protection_officer"),
                        "Lawful basis: " + _placeholder(practice.lawful_basis, "lawful_basis"),
                    ),
                ),
            ),
            Section(
                "Purpose",
                (
                    "Applying the practice's social-media policy on the practice network and "
                    "keeping a verifiable record that it is applied, for review after an "
                    "incident and for the Practice Manager's monitoring.",
                ),
            ),
            Section(
                "People concerned",
                (
                    "Everyone who uses the practice's internet through its gateway: employees, "
                    "volunteers, contractors and partner organisations (the policy's scope).",
                ),
            ),
            Section("Events recorded", (_what_is_recorded(settings),)),
            Section("Data held in each record", (_fields(settings),)),
            Section("Not recorded", (_never_recorded(settings),)),
            Section("Recipients", (_copies(settings),)),
            Section("Retention", (_retention(settings),)),
            Section("Security measures", (tuple(security),)),
        ),
    )


def render_text(document: Document, width: int = 78) -> str:
    """The document as plain text, for a terminal or an e-mail."""
    out = [document.title, "=" * len(document.title), ""]
    for section in document.sections:
        out += [section.title, "-" * len(section.title)]
        for paragraph in section.paragraphs:
            if isinstance(paragraph, tuple):
                for item in paragraph:
                    out += textwrap.wrap(
                        item, width, initial_indent="  - ", subsequent_indent="    "
                    )
            else:
                out += textwrap.wrap(paragraph, width)
            out.append("")
    return "\n".join(out).rstrip() + "\n"
