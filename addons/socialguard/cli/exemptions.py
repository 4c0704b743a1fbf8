"""`socialguard exemptions`: grant, renew, revoke, list and review the practice manager's
exemptions from the command line, safely.

Every change goes through `authorisation_edit`: comments and order survive, the whole new file
is validated by the proxy's own rules before anything is written, and the write is atomic. The
running proxy notices the file and records the change in the audit log itself, so this module
never writes to the audit log (two writers would break its hash chain).
"""

from __future__ import annotations

import datetime as dt
import getpass
import json
import os
import pwd
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from socialguard.audit.files import AuditError, log_segments
from socialguard.audit.search import find_event
from socialguard.cli.common import CommandGroup, Refusal, config_option
from socialguard.core.authorisations import Authorisations, Exemption, parse_authorisations
from socialguard.core.catalog import CATEGORIES, Catalog
from socialguard.core.dates import EXAMPLES, parse_day, parse_length, parse_moment
from socialguard.core.events import Event
from socialguard.core.names import UnknownNameError, resolve_category, resolve_id, resolve_service
from socialguard.core.problems import ConfigError
from socialguard.core.settings import DEFAULT_AUTHORISATIONS_PATH, Settings
from socialguard.files.authorisation_edit import (
    AuthorisationDocument,
    EditError,
    EditResult,
    InvalidFileError,
    NewExemption,
    edit_file,
)
from socialguard.files.catalog_file import load_catalog
from socialguard.files.policy_files import PolicyPaths, check_exists, load_settings
from socialguard.files.yamlfile import read_yaml

_TIME_TODAY = re.compile(r"([01]?\d|2[0-3]):([0-5]\d)")
# Far beyond any exemption or review window, yet a date one can still add it to.
_LONGEST = dt.timedelta(days=100 * 366)
_TOO_FAR = "{} is far in the future — exemptions last at most a year; give a nearer date"
# Events a grant can be made from: a refusal of a catalogued service.
_BLOCK_EVENTS = (Event.ACCESS_BLOCKED,)
_ANONYMOUS = "anonymous"


def system_user() -> str:
    """The account running this command (its effective user, as `id -un` says), recorded
    beside the approver a grant names: the approver is who said yes, this is who typed it."""
    try:
        return pwd.getpwuid(os.geteuid()).pw_name
    except (KeyError, OSError):  # an account with no passwd entry (a container's bare uid)
        return getpass.getuser()


def now() -> dt.datetime:
    """The current instant; tests replace it to stand at a chosen moment."""
    return dt.datetime.now(dt.UTC)


@dataclass(frozen=True, slots=True)
class Context:
    """Where the list is, and the settings and catalogue it is checked against."""

    path: Path
    settings: Settings
    catalog: Catalog

    def parse(self, data: Any, source: str) -> Authorisations:
        return parse_authorisations(data, source, self.catalog, self.settings, now=now())

    def today(self) -> dt.date:
        return now().astimezone(self.settings.timezone).date()


def _context(config: Path | None, authorisations: Path | None) -> Context:
    if config is not None:
        check_exists(config, "the policy file")
    settings, _ = load_settings(PolicyPaths(config).config_path())
    catalog, _ = load_catalog(settings.catalogs, settings.practice.domains)
    return Context(authorisations or settings.authorisations_path, settings, catalog)


def _load(context: Context) -> Authorisations:
    try:
        check_exists(context.path, "the authorisation list")
        data, _ = read_yaml(context.path)
        return context.parse(data, str(context.path))
    except ConfigError as error:
        raise Refusal(
            f"{context.path} is not valid; fix these and try again:", error.problems
        ) from None


def _edit(context: Context, change: Any) -> EditResult:
    try:
        result = edit_file(context.path, change, context.parse)
    except EditError as error:
        raise Refusal(f"{error} — nothing was written") from None
    except InvalidFileError as error:
        raise Refusal(
            f"{context.path} is not valid; fix the file first, then try again "
            "(nothing was written):",
            error.problems,
        ) from None
    except ConfigError as error:
        raise Refusal(
            f"nothing was written: {context.path} would not be valid after this change "
            "(lines are those of the file as it would have been):",
            error.problems,
        ) from None
    except OSError as error:
        raise Refusal(
            f"cannot write {context.path}: {error.strerror or error} — check its permissions"
        ) from None
    for warning in result.warnings:
        click.echo(f"warning: {warning}", err=True)
    return result


# -- names as people type them ------------------------------------------------------------


def _named[T](resolve: Callable[[str, T], str], text: str, known: T, option: str) -> str:
    """A service or category as typed ("Facebook" → facebook). A miss is kept as typed, so the
    validation that follows lists it with every other problem; the near misses are said first."""
    try:
        return resolve(text, known)
    except UnknownNameError as error:
        click.echo(f"{option}: {error}", err=True)
        return text


def _known_id(ident: str, document: AuthorisationDocument) -> str:
    """The id as the file spells it ("ex-2026-001" → EX-2026-001), or EditError with the near
    misses."""
    try:
        return resolve_id(ident, document.ids())
    except UnknownNameError as error:
        raise EditError(f"{document.source}: {error}") from None


# -- dates and durations ------------------------------------------------------------------


def parse_duration(text: str, option: str, start: dt.datetime | None = None) -> dt.timedelta:
    """`90m`, `2h`, `3d`, `2w`, `3 months`, `1y` (also `2 hours`) → the time from `start` (now
    by default; a month is a calendar month from there)."""
    length = parse_length(text)
    if length is None or length.amount == 0:
        raise click.BadParameter(
            f"{text!r} is not a length of time like 30m, 2h, 3d, 2w, 3 months or 1y",
            param_hint=option,
        )
    origin = start or now()
    try:
        span: dt.timedelta | None = length.after(origin) - origin
    except (OverflowError, ValueError):  # past the last date Python has
        span = None
    if span is None or span > _LONGEST:
        raise click.BadParameter(
            f"{text!r} is far too long — give a length of time like 30m, 2h, 3d, 2w or "
            "3 months (exemptions last at most a year)",
            param_hint=option,
        )
    return span


def _local_instant(when: dt.datetime, tz: dt.tzinfo) -> dt.datetime:
    """An aware instant written with its local UTC offset: unambiguous across clock changes."""
    local = when.astimezone(tz).replace(microsecond=0)
    offset = local.utcoffset() or dt.timedelta(0)
    return local.replace(tzinfo=dt.timezone(offset))


def parse_until(until: str | None, for_: str | None, context: Context) -> dt.date | dt.datetime:
    """`--until DATE`, `--until HH:MM` (today), `--until DATE HH:MM`, or `--for 2h` from now."""
    if until is not None and for_ is not None:
        raise click.UsageError("give --until or --for, not both")
    tz = context.settings.timezone
    current = now()
    if for_ is not None:
        return _local_instant(current + parse_duration(for_, "--for"), tz)
    if until is None:
        raise click.UsageError("say until when: --until DATE (or a time today) or --for 2h")
    text = until.strip()
    today = current.astimezone(tz).date()
    if time_match := _TIME_TODAY.fullmatch(text):
        local = dt.datetime.combine(today, dt.time(int(time_match[1]), int(time_match[2])))
        ends = local.replace(tzinfo=tz)
        if ends <= current:
            raise click.BadParameter(
                f"{text} today has already passed — give a later time or a date",
                param_hint="--until",
            )
        return _local_instant(ends, tz)
    day = parse_day(text)
    if day is not None:
        if day < today:
            raise click.BadParameter(f"{text} is in the past", param_hint="--until")
        if day - today > _LONGEST:
            raise click.BadParameter(_TOO_FAR.format(text), param_hint="--until")
        return day
    instant = parse_moment(text)
    if not isinstance(instant, dt.datetime):
        raise click.BadParameter(
            f"{text!r} is not a date like {EXAMPLES}, a time today like 17:00, "
            "or a date and time like '31/10/2027 17:00'",
            param_hint="--until",
        )
    ends = instant if instant.tzinfo else instant.replace(tzinfo=tz)
    if ends <= current:
        raise click.BadParameter(f"{text} is in the past", param_hint="--until")
    if ends - current > _LONGEST:
        raise click.BadParameter(_TOO_FAR.format(text), param_hint="--until")
    return _local_instant(ends, tz)


def label(value: dt.date | dt.datetime) -> str:
    if isinstance(value, dt.datetime):
        return f"{value.day} {value:%B %Y %H:%M}"
    return f"{value.day} {value:%B %Y}"


# -- the audit log, for --from-event ------------------------------------------------------


def _grant_from_event(reference: str, audit_path: Path) -> tuple[str, str, str]:
    """(who kind, who, service) that an event was blocked for."""
    ref = reference.strip().upper()
    if not ref.startswith("SG-"):
        ref = f"SG-{ref}"
    if not audit_path.exists():
        raise Refusal(f"the audit log {audit_path} was not found — give its path with --audit-log")
    try:
        event = find_event(log_segments(audit_path), ref)
    except (AuditError, ValueError) as error:
        raise Refusal(f"cannot search the audit log {audit_path}: {error}") from None
    if event is None:
        raise Refusal(
            f"no event {ref} in {audit_path} or its rotated files — check the reference on "
            "the block page, or give the right log with --audit-log"
        )
    if event.get("event") not in _BLOCK_EVENTS:
        raise Refusal(
            f"event {ref} is {event.get('event')!r}, not a blocked access: nothing to grant"
        )
    service = event.get("service")
    if not service:
        raise Refusal(
            f"event {ref} was not blocked for a catalogued service (host "
            f"{event.get('host')!r}, reason {event.get('reason')!r}): grant with --domain instead"
        )
    user = event.get("user")
    signed_in = bool(user) and user != _ANONYMOUS
    if not signed_in and not event.get("device"):
        raise Refusal(
            f"event {ref} came from {event.get('client_ip')} (zone {event.get('zone')}), which "
            "is neither a signed-in user nor a named device: add the device under devices: in "
            "policy.yaml, or grant with --user once they sign in to the proxy"
        )
    if signed_in:
        return "user", str(user), str(service)
    return "device", str(event["device"]), str(service)


# -- listing ------------------------------------------------------------------------------


def review_due(exemption: Exemption) -> dt.date:
    """A year after approval: the policy is reviewed annually, and so is each exemption."""
    approved = exemption.approved_on
    try:
        return approved.replace(year=approved.year + 1)
    except ValueError:  # 29 February
        return approved.replace(year=approved.year + 1, day=28)


def _days_left(exemption: Exemption, when: dt.datetime) -> int:
    return (exemption.expires - when) // dt.timedelta(days=1)


def row(exemption: Exemption, when: dt.datetime) -> dict[str, Any]:
    """One exemption as `list --json` prints it."""
    revoked = exemption.revoked
    status = exemption.status(when)
    return {
        "id": exemption.id,
        "who_kind": exemption.who_kind,
        "who": exemption.who,
        "what": sorted(exemption.services | exemption.categories | exemption.domains),
        "services": sorted(exemption.services),
        "categories": sorted(exemption.categories),
        "domains": sorted(exemption.domains),
        "purpose": exemption.purpose,
        "approved_by": exemption.approved_by,
        "approved_on": exemption.approved_on.isoformat(),
        "starts": exemption.starts.isoformat(),
        "expires": exemption.expires.isoformat(),
        "expires_label": exemption.expires_label,
        "days_left": (
            max(_days_left(exemption, when), 0) if status in ("active", "not-yet-valid") else None
        ),
        "review_due": review_due(exemption).isoformat(),
        "recorded_by": exemption.recorded_by or None,
        "status": status,
        "revoked": (
            {"on": revoked.on.isoformat(), "by": revoked.by, "reason": revoked.reason}
            if revoked
            else None
        ),
        "line": exemption.line,
    }


def _clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def table(rows: list[dict[str, Any]]) -> str:
    """A plain table for a person: who, what, purpose, approver, expiry, days left, status."""
    header = ("ID", "WHO", "WHAT", "PURPOSE", "APPROVED BY", "EXPIRES", "DAYS LEFT", "STATUS")
    lines = [
        (
            r["id"],
            f"{r['who_kind']} {r['who']}",
            _clip(", ".join(r["what"]), 30),
            _clip(r["purpose"], 40),
            r["approved_by"],
            r["expires_label"],
            "-" if r["days_left"] is None else str(r["days_left"]),
            r["status"],
        )
        for r in rows
    ]
    widths = [max(len(c) for c in column) for column in zip(header, *lines, strict=False)]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(cells, widths, strict=True)).rstrip()
        for cells in (header, *lines)
    )


# -- the commands -------------------------------------------------------------------------

CONFIG = config_option()
AUTHORISATIONS = click.option(
    "--authorisations",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="The list to read or change (default: policy.yaml's `authorisations:`, else "
    f"{DEFAULT_AUTHORISATIONS_PATH} beside the checkout's config/, as for run).",
)
UNTIL = click.option(
    "--until",
    help="Last day (2027-10-31, 31/10/2027 or '31 October 2027'), a time today (17:00), "
    "or '31/10/2027 17:00'.",
)
FOR = click.option(
    "--for", "for_", help="How long from now: 30m, 2h, 3d, 2w, 3 months (mo), 1y (year)."
)
JSON = click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")


@click.group(
    cls=CommandGroup,
    not_loaded="the policy settings could not be loaded; fix these and try again:",
)
def exemptions() -> None:
    """Grant, renew, revoke and review the practice manager's exemptions."""


@exemptions.command()
@click.option("--user", help="A proxy sign-in name, e.g. j.smith.")
@click.option("--group", help="A group from policy.yaml's groups:.")
@click.option("--device", help="A device from policy.yaml's devices:.")
@click.option("--service", "services", multiple=True, help="A catalogue service (repeatable).")
@click.option("--category", "categories", multiple=True, help="A whole category (repeatable).")
@click.option("--domain", "domains", multiple=True, help="A domain and its subdomains.")
@click.option(
    "--from-event",
    "from_event",
    metavar="REF",
    help="Grant exactly what a block (its reference, SG-…) was for: that person, that service.",
)
@click.option(
    "--audit-log",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Where --from-event looks (default from policy.yaml: var/audit.jsonl).",
)
@click.option("--purpose", required=True, help="The business reason, in a sentence.")
@click.option("--approved-by", required=True, help="The approver (one of approvers:).")
@UNTIL
@FOR
@AUTHORISATIONS
@CONFIG
@JSON
def grant(
    user: str | None,
    group: str | None,
    device: str | None,
    services: tuple[str, ...],
    categories: tuple[str, ...],
    domains: tuple[str, ...],
    from_event: str | None,
    audit_log: Path | None,
    purpose: str,
    approved_by: str,
    until: str | None,
    for_: str | None,
    authorisations: Path | None,
    config: Path | None,
    as_json: bool,
) -> None:
    """Add an exemption with a fresh id (EX-YYYY-NNN); nothing is written unless it is valid."""
    context = _context(config, authorisations)
    given = [
        (k, name) for k, name in (("user", user), ("group", group), ("device", device)) if name
    ]
    if from_event is not None:
        if given or services or categories or domains:
            raise click.UsageError(
                "--from-event grants exactly what the event was blocked for; "
                "leave out --user/--group/--device and --service/--category/--domain"
            )
        kind, who, service = _grant_from_event(from_event, audit_log or context.settings.audit_path)
        services = (service,)
    else:
        if len(given) != 1:
            raise click.UsageError("name exactly one of --user, --group or --device")
        if not (services or categories or domains):
            raise click.UsageError("name what is allowed: --service, --category or --domain")
        kind, who = given[0][0], str(given[0][1])
        services = tuple(_named(resolve_service, s, context.catalog, "--service") for s in services)
        categories = tuple(
            _named(resolve_category, c, CATEGORIES, "--category") for c in categories
        )
    expires = parse_until(until, for_, context)
    today = context.today()
    new = NewExemption(
        who_kind=kind,
        who=who,
        services=services,
        categories=categories,
        domains=domains,
        purpose=purpose.strip(),
        approved_by=approved_by.strip(),
        approved_on=today,
        expires=expires,
        system_user=system_user(),
        sudo_user=os.environ.get("SUDO_USER", "").strip(),
    )

    def change(document: AuthorisationDocument) -> str:
        return document.grant(new, today.year)

    result = _edit(context, change)
    what = ", ".join((*services, *categories, *domains))
    if as_json:
        click.echo(json.dumps({"id": result.result, "warnings": list(result.warnings)}))
        return
    source = f" (from event {from_event.strip().upper()})" if from_event else ""
    click.echo(
        f"granted {result.result}{source}: {kind} {who} may use {what} until {label(expires)}, "
        f"approved by {approved_by}, recorded by {new.system_user}"
        f"{f' (sudo from {new.sudo_user})' if new.sudo_user else ''}. "
        "A running proxy applies it within 2 seconds."
    )


@exemptions.command()
@click.argument("ident", metavar="ID")
@click.option("--approved-by", required=True, help="The approver of the renewal.")
@UNTIL
@FOR
@AUTHORISATIONS
@CONFIG
def renew(
    ident: str,
    approved_by: str,
    until: str | None,
    for_: str | None,
    authorisations: Path | None,
    config: Path | None,
) -> None:
    """Extend an exemption after review: a new expiry, approver and approval date."""
    context = _context(config, authorisations)
    expires = parse_until(until, for_, context)
    today = context.today()

    def change(document: AuthorisationDocument) -> str:
        found = _known_id(ident, document)
        document.renew(found, expires, approved_by.strip(), today, context.settings.timezone)
        return found

    ident = _edit(context, change).result
    click.echo(f"renewed {ident} until {label(expires)}, approved by {approved_by}.")


@exemptions.command()
@click.argument("ident", metavar="ID")
@click.option("--reason", required=True, help="Why it is withdrawn (kept for the auditor).")
@click.option("--by", "by", required=True, help="Who withdraws it.")
@AUTHORISATIONS
@CONFIG
def revoke(
    ident: str, reason: str, by: str, authorisations: Path | None, config: Path | None
) -> None:
    """Withdraw an exemption now; the entry stays in the file, marked revoked, for the record."""
    context = _context(config, authorisations)
    if not reason.strip():
        raise click.BadParameter("say why it is withdrawn", param_hint="--reason")
    today = context.today()

    def change(document: AuthorisationDocument) -> str:
        found = _known_id(ident, document)
        document.revoke(found, today, by.strip(), reason.strip())
        return found

    ident = _edit(context, change).result
    click.echo(f"revoked {ident} ({reason.strip()}). A running proxy blocks it within 2 seconds.")


@exemptions.command(name="list")
@click.option("--all", "show_all", is_flag=True, help="Include expired and revoked exemptions.")
@AUTHORISATIONS
@CONFIG
@JSON
def list_(show_all: bool, authorisations: Path | None, config: Path | None, as_json: bool) -> None:
    """Who holds which exemption, for what, approved by whom, and until when."""
    context = _context(config, authorisations)
    parsed = _load(context)
    when = now()
    rows = [row(e, when) for e in parsed.exemptions]
    if not show_all:
        rows = [r for r in rows if r["status"] in ("active", "not-yet-valid")]
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    for warning in parsed.warnings:
        click.echo(f"warning: {warning}", err=True)
    if not rows:
        hidden = "" if show_all else " in force (--all shows expired and revoked ones)"
        click.echo(f"No exemptions{hidden}.")
        return
    click.echo(table(rows))


@exemptions.command()
@click.option(
    "--within",
    default="30d",
    show_default=True,
    help="How far ahead to look: 30d, 6w, 3 months, 1y, 90 (days).",
)
@AUTHORISATIONS
@CONFIG
@JSON
def review(within: str, authorisations: Path | None, config: Path | None, as_json: bool) -> None:
    """What expires soon or is past its annual review. Exit 1 when anything is overdue."""
    window = parse_duration(within + ("d" if within.strip().isdigit() else ""), "--within")
    context = _context(config, authorisations)
    parsed = _load(context)
    when = now()
    today = context.today()
    overdue, expiring, expired = [], [], []
    for exemption in parsed.exemptions:
        status = exemption.status(when)
        if status == "revoked":
            continue
        if status in ("active", "not-yet-valid") and review_due(exemption) < today:
            overdue.append(exemption)
        elif status == "active" and exemption.expires - when <= window:
            expiring.append(exemption)
        elif status == "expired" and when - exemption.expires <= window:
            expired.append(exemption)
    if as_json:
        click.echo(
            json.dumps(
                {
                    "overdue": [row(e, when) for e in overdue],
                    "expiring": [row(e, when) for e in expiring],
                    "expired": [row(e, when) for e in expired],
                },
                indent=2,
            )
        )
    else:
        _print_review(overdue, expiring, expired, when, within)
    if overdue:
        sys.exit(1)


def _print_review(
    overdue: list[Exemption],
    expiring: list[Exemption],
    expired: list[Exemption],
    when: dt.datetime,
    within: str,
) -> None:
    if overdue:
        click.echo("Overdue for the annual review (renew or revoke):")
        for e in overdue:
            click.echo(
                f"  {e.id}  {e.who_kind} {e.who}: {e.what} — approved {label(e.approved_on)}, "
                f"review was due {label(review_due(e))}"
            )
    if expiring:
        click.echo(f"Expiring within {within} (renew if still needed):")
        for e in expiring:
            days = _days_left(e, when)
            left = "today" if days == 0 else f"in {days} day{'s' if days != 1 else ''}"
            click.echo(
                f"  {e.id}  {e.who_kind} {e.who}: {e.what} — expires {e.expires_label} ({left})"
            )
    if expired:
        click.echo(f"Expired in the last {within} (no longer applies):")
        for e in expired:
            click.echo(f"  {e.id}  {e.who_kind} {e.who}: {e.what} — expired {e.expires_label}")
    if not (overdue or expiring or expired):
        click.echo(f"Nothing due: no exemption expires within {within} or is overdue for review.")
