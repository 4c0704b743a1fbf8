"""The weekly digest for the Practice Manager: pending requests, exemptions ending within 30
days, reviews overdue, and the week's blocks by service, as plain text and HTML in one e-mail.

Built from the same files the page reads; sent with the standard library's smtplib over
STARTTLS or TLS (plain only to a server on this machine).
"""

from __future__ import annotations

import datetime as dt
import email.message
import email.utils
import smtplib
import ssl
from dataclasses import dataclass
from pathlib import Path

from socialguard.core.settings import Settings
from socialguard.files.exemption_actions import Context, label, load
from socialguard.templates import environment
from socialguard.web.overview import (
    ExemptionRow,
    blocks_by_service,
    exemption_rows,
    service_name,
)
from socialguard.web.staff_requests import PENDING, RequestStore, StaffRequest


class DigestError(Exception):
    """The digest could not be sent: the message says what to check."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Digest:
    subject: str
    text: str
    html: str


def build(context: Context, store: RequestStore, audit_path: Path) -> Digest:
    """The digest as of now, in both forms."""
    settings = context.settings
    when = context.now()
    today = context.today()
    authorisations = load(context)
    rows = exemption_rows(authorisations, context.catalog, when, today)
    pending: list[tuple[StaffRequest, str]] = [
        (r, service_name(context.catalog, r.service))
        for r in store.all()
        if r.state(when) == PENDING
    ]
    ending: list[ExemptionRow] = [r for r in rows if r.ending_soon]
    overdue: list[ExemptionRow] = [r for r in rows if r.review_overdue]
    week = blocks_by_service(audit_path, context.catalog, when - dt.timedelta(days=7))
    values = {
        "practice": settings.practice.name,
        "week_of": label(today),
        "pending": pending,
        "ending": ending,
        "overdue": overdue,
        "blocks": week,
        "total_blocks": sum(n for _, n in week),
        "public_url": settings.admin.public_url,
    }
    env = environment(plain_text_too=True)
    return Digest(
        subject=f"socialguard weekly digest for {settings.practice.name}, {label(today)}",
        text=env.get_template("admin-digest.txt").render(values),
        html=env.get_template("admin-digest.html").render(values),
    )


def message(digest: Digest, settings: Settings) -> email.message.EmailMessage:
    config = settings.digest
    msg = email.message.EmailMessage()
    msg["Subject"] = digest.subject
    msg["From"] = config.sender or "socialguard@localhost"
    msg["To"] = ", ".join(config.to)
    msg["Date"] = email.utils.formatdate(localtime=False)
    msg["Message-ID"] = email.utils.make_msgid(domain="socialguard")
    msg.set_content(digest.text)
    msg.add_alternative(digest.html, subtype="html")
    return msg


def send(digest: Digest, settings: Settings, timeout: float = 30.0) -> None:
    """Send the digest to `digest.to`; DigestError says what went wrong."""
    config = settings.digest
    if config.smtp_host is None or not config.to:
        raise DigestError(
            "no digest: set digest.smtp_host, digest.from and digest.to in policy.yaml"
        )
    password = None
    if config.password_file is not None:
        try:
            password = Path(config.password_file).read_text(encoding="utf-8").strip()
        except OSError as error:
            raise DigestError(
                f"{config.password_file}: cannot read the mail password "
                f"({error.strerror or error}) — check digest.password_file"
            ) from None
    msg = message(digest, settings)
    tls = ssl.create_default_context()
    try:
        if config.security == "tls":
            smtp: smtplib.SMTP = smtplib.SMTP_SSL(
                config.smtp_host, config.smtp_port, timeout=timeout, context=tls
            )
        else:
            smtp = smtplib.SMTP(config.smtp_host, config.smtp_port, timeout=timeout)
        with smtp:
            if config.security == "starttls":
                smtp.starttls(context=tls)
            if config.username is not None and password is not None:
                smtp.login(config.username, password)
            smtp.send_message(msg)
    except (OSError, smtplib.SMTPException) as error:
        raise DigestError(
            f"the digest was not sent to {config.smtp_host}:{config.smtp_port} "
            f"({config.security}): {error} — check digest: in policy.yaml"
        ) from None


def next_due(settings: Settings, after: dt.datetime) -> dt.datetime:
    """The next weekday-and-time of `digest:` in the practice's time zone after `after`."""
    tz = settings.timezone
    local = after.astimezone(tz)
    for days in range(8):
        day = local.date() + dt.timedelta(days=days)
        if day.weekday() != settings.digest.weekday:
            continue
        due = dt.datetime.combine(day, settings.digest.time, tzinfo=tz)
        if due > after:
            return due
    raise AssertionError("a week always holds the weekday")  # pragma: no cover
