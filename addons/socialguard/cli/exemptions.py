"""`socialguard exemptions`: grant, renew, revoke, list and review the practice manager's
exemptions from the command line, safely.

Every change goes through `authorisation_edit`: comments and order survive, the whole new file
is validated by the proxy's own rules before anything is written, and the write is atomic. The
running proxy notices the file and records the change in the audit log itself, so this module
never writes to the audit log (two writers would break its hash chain).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import click

from socialguard.audit.files import AuditError, log_segments
from socialguard.audit.search import find_event
from socialguard.cli.common import CommandGroup, Refusal, config_option
from socialguard.core.authorisations import Authorisations, Exemption
from socialguard.core.catalog import CATEGORIES
from socialguard.core.names import UnknownNameError, resolve_category, resolve_service
from socialguard.core.settings import DEFAULT_AUTHORISATIONS_PATH
from socialguard.files import exemption_actions as actions
from socialguard.files.authorisation_edit import EditResult

_ANONYMOUS = actions.ANONYMOUS


def system_user() -> str:
    """The account running this command, recorded beside the approver a grant names."""
    return actions.system_user()


def now() -> dt.datetime:
    """The current instant; tests replace it to stand at a chosen moment."""
    return dt.datetime.now(dt.UTC)


Context = actions.Context


def _context(config: Path | None, authorisations: Path | None) -> Context:
    with _refusals():
        return actions.load_context(config, authorisations, clock=lambda: now())  # noqa: PLW0108 - tests patch now


@contextlib.contextmanager
def _refusals() -> Iterator[None]:
    """The shared code path's refusals as the command line shows them."""
    try:
        yield
    except actions.ActionRefusedError as error:
        raise Refusal(error.message, error.problems) from None
    except actions.FieldError as error:
        raise click.BadParameter(error.message, param_hint=f"--{error.field}") from None
    except actions.UsageProblemError as error:
        raise click.UsageError(str(error)) from None


def _load(context: Context) -> Authorisations:
    with _refusals():
        return actions.load(context)


def _warn(result: EditResult) -> EditResult:
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


# -- dates and durations ------------------------------------------------------------------


def parse_duration(text: str, option: str, start: dt.datetime | None = None) -> dt.timedelta:
    """`90m`, `2h`, `3d`, `2w`, `3 months`, `1y` (also `2 hours`) → the time from `start` (now
    by default; a month is a calendar month from there)."""
    with _refusals():
        return actions.parse_duration(text, option.lstrip("-"), start, now())
    raise AssertionError  # pragma: no cover - _refusals always raises


def parse_until(until: str | None, for_: str | None, context: Context) -> dt.date | dt.datetime:
    """`--until DATE`, `--until HH:MM` (today), `--until DATE HH:MM`, or `--for 2h` from now."""
    with _refusals():
        return actions.parse_until(until, for_, context)
    raise AssertionError  # pragma: no cover - _refusals always raises


label = actions.label


def find_block(audit_path: Path, reference: str) -> dict[str, Any] | None:
    """The event with this reference in the log at `audit_path` and its rotated files."""
    try:
        return find_event(log_segments(audit_path), reference)
    except (AuditError, ValueError) as error:
        raise actions.SearchError(str(error)) from None


def _grant_from_event(reference: str, audit_path: Path) -> tuple[str, str, str]:
    """(who kind, who, service) that an event was blocked for."""
    with _refusals():
        return actions.grant_from_event(reference, audit_path, find_block)
    raise AssertionError  # pragma: no cover - _refusals always raises


# -- listing ------------------------------------------------------------------------------


review_due = actions.review_due


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
    new = actions.new_exemption(
        context,
        kind=kind,
        who=who,
        services=services,
        categories=categories,
        domains=domains,
        purpose=purpose,
        approved_by=approved_by,
        expires=expires,
        system_user=system_user(),
        sudo_user=os.environ.get("SUDO_USER", "").strip(),
    )
    with _refusals():
        result = _warn(actions.grant(context, new))
    if as_json:
        click.echo(json.dumps({"id": result.result, "warnings": list(result.warnings)}))
        return
    click.echo(actions.granted_text(result.result, new, from_event))


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
    with _refusals():
        ident = _warn(actions.renew(context, ident, expires, approved_by)).result
    click.echo(actions.renewed_text(ident, expires, approved_by))


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
    with _refusals():
        ident = _warn(actions.revoke(context, ident, reason, by)).result
    click.echo(actions.revoked_text(ident, reason))


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
