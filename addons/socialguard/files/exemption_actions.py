"""Grant, renew and revoke: the one code path behind `socialguard exemptions …` and the
Practice Manager's page.

Both front ends hand the same values to these functions and show the same messages: a bad value
is a FieldError naming the field it belongs to (the command prints it against its option, the
page next to its field); a refused change is an ActionRefusedError with the problems under it.
Every change goes through `authorisation_edit`: comments kept, validated whole, written
atomically. No click, no web framework, no audit log (the proxy records list changes itself).
"""

from __future__ import annotations

import datetime as dt
import getpass
import os
import pwd
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from socialguard.core.authorisations import Authorisations, Exemption, parse_authorisations
from socialguard.core.catalog import Catalog
from socialguard.core.dates import EXAMPLES, parse_day, parse_length, parse_moment
from socialguard.core.events import Event
from socialguard.core.names import UnknownNameError, resolve_id
from socialguard.core.problems import ConfigError
from socialguard.core.settings import Settings
from socialguard.files.authorisation_edit import (
    AuthorisationDocument,
    EditError,
    EditResult,
    InvalidFileError,
    NewExemption,
    edit_file,
)
from socialguard.files.catalog_file import load_catalog
from socialguard.files.list_source import RepositoryList, kept_in_repository
from socialguard.files.policy_files import PolicyPaths, check_exists, load_settings
from socialguard.files.yamlfile import read_yaml

_TIME_TODAY = re.compile(r"([01]?\d|2[0-3]):([0-5]\d)")
# Far beyond any exemption or review window, yet a date one can still add it to.
_LONGEST = dt.timedelta(days=100 * 366)
_TOO_FAR = "{} is far in the future — exemptions last at most a year; give a nearer date"
# Events a grant can be made from: a refusal of a catalogued service.
BLOCK_EVENTS = (Event.ACCESS_BLOCKED,)
ANONYMOUS = "anonymous"


class FieldError(ValueError):
    """A value that cannot be used, and the field (CLI option without its dashes) it is in."""

    def __init__(self, field_name: str, message: str) -> None:
        super().__init__(message)
        self.field = field_name
        self.message = message


class UsageProblemError(ValueError):
    """Fields given together that cannot be, or one missing (the CLI's usage error)."""


class ActionRefusedError(Exception):
    """A change that was not made: one line saying why, the located problems under it."""

    def __init__(self, message: str, problems: Iterable[object] = ()) -> None:
        super().__init__(message)
        self.message = message
        self.problems = tuple(problems)


def system_user() -> str:
    """The account running this process (its effective user, as `id -un` says), recorded
    beside the approver a grant names: the approver is who said yes, this is who typed it."""
    try:
        return pwd.getpwuid(os.geteuid()).pw_name
    except (KeyError, OSError):  # an account with no passwd entry (a container's bare uid)
        return getpass.getuser()


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass(frozen=True, slots=True)
class Context:
    """Where the list is, and the settings and catalogue it is checked against."""

    path: Path
    settings: Settings
    catalog: Catalog
    clock: Callable[[], dt.datetime] = field(default=utc_now)

    def now(self) -> dt.datetime:
        return self.clock()

    def parse(self, data: Any, source: str) -> Authorisations:
        return parse_authorisations(data, source, self.catalog, self.settings, now=self.now())

    def today(self) -> dt.date:
        return self.now().astimezone(self.settings.timezone).date()


def load_context(
    config: Path | None,
    authorisations: Path | None,
    clock: Callable[[], dt.datetime] = utc_now,
) -> Context:
    """The settings and catalogue from policy.yaml, and the list's path (refused if bad)."""
    try:
        if config is not None:
            check_exists(config, "the policy file")
        settings, _ = load_settings(PolicyPaths(config).config_path())
        catalog, _ = load_catalog(settings.catalogs, settings.practice.domains)
    except ConfigError as error:
        raise ActionRefusedError(
            "the policy settings could not be loaded; fix these and try again:", error.problems
        ) from None
    return Context(authorisations or settings.authorisations_path, settings, catalog, clock)


def load(context: Context) -> Authorisations:
    """The list as it is now, validated; ActionRefusedError naming every problem otherwise."""
    try:
        check_exists(context.path, "the authorisation list")
        data, _ = read_yaml(context.path)
        return context.parse(data, str(context.path))
    except ConfigError as error:
        raise ActionRefusedError(
            f"{context.path} is not valid; fix these and try again:", error.problems
        ) from None


def kept_elsewhere(context: Context) -> RepositoryList | None:
    """The shared repository that keeps this list (so it is not edited here), if any."""
    return kept_in_repository(context.path)


def refuse_if_kept_elsewhere(context: Context) -> None:
    """A list `socialguard policy pull` copies from git is IT's to change, in git."""
    origin = kept_elsewhere(context)
    if origin is not None:
        raise ActionRefusedError(origin.refusal())


def edit(context: Context, change: Callable[[AuthorisationDocument], str]) -> EditResult:
    """Make one change through authorisation_edit; the refusal says why nothing was written."""
    refuse_if_kept_elsewhere(context)

    def guarded(document: AuthorisationDocument) -> str:
        # Again under the edit lock, which the pull holds while it takes the list over.
        refuse_if_kept_elsewhere(context)
        return change(document)

    try:
        return edit_file(context.path, guarded, context.parse)
    except EditError as error:
        raise ActionRefusedError(f"{error} — nothing was written") from None
    except InvalidFileError as error:
        raise ActionRefusedError(
            f"{context.path} is not valid; fix the file first, then try again "
            "(nothing was written):",
            error.problems,
        ) from None
    except ConfigError as error:
        raise ActionRefusedError(
            f"nothing was written: {context.path} would not be valid after this change "
            "(lines are those of the file as it would have been):",
            error.problems,
        ) from None
    except OSError as error:
        raise ActionRefusedError(
            f"cannot write {context.path}: {error.strerror or error} — check its permissions"
        ) from None


# -- dates and durations ------------------------------------------------------------------


def parse_duration(
    text: str, field_name: str, start: dt.datetime | None = None, now: dt.datetime | None = None
) -> dt.timedelta:
    """`90m`, `2h`, `3d`, `2w`, `3 months`, `1y` (also `2 hours`) → the time from `start` (now
    by default; a month is a calendar month from there)."""
    length = parse_length(text)
    if length is None or length.amount == 0:
        raise FieldError(
            field_name, f"{text!r} is not a length of time like 30m, 2h, 3d, 2w, 3 months or 1y"
        )
    origin = start or now or utc_now()
    try:
        span: dt.timedelta | None = length.after(origin) - origin
    except (OverflowError, ValueError):  # past the last date Python has
        span = None
    if span is None or span > _LONGEST:
        raise FieldError(
            field_name,
            f"{text!r} is far too long — give a length of time like 30m, 2h, 3d, 2w or "
            "3 months (exemptions last at most a year)",
        )
    return span


def local_instant(when: dt.datetime, tz: dt.tzinfo) -> dt.datetime:
    """An aware instant written with its local UTC offset: unambiguous across clock changes."""
    local = when.astimezone(tz).replace(microsecond=0)
    offset = local.utcoffset() or dt.timedelta(0)
    return local.replace(tzinfo=dt.timezone(offset))


def parse_until(until: str | None, for_: str | None, context: Context) -> dt.date | dt.datetime:
    """`until` a date, a time today or a date and time, or `for_` a length of time from now."""
    if until is not None and for_ is not None:
        raise UsageProblemError("give --until or --for, not both")
    tz = context.settings.timezone
    current = context.now()
    if for_ is not None:
        return local_instant(current + parse_duration(for_, "for", now=current), tz)
    if until is None:
        raise UsageProblemError("say until when: --until DATE (or a time today) or --for 2h")
    text = until.strip()
    today = current.astimezone(tz).date()
    if time_match := _TIME_TODAY.fullmatch(text):
        local = dt.datetime.combine(today, dt.time(int(time_match[1]), int(time_match[2])))
        ends = local.replace(tzinfo=tz)
        if ends <= current:
            raise FieldError(
                "until", f"{text} today has already passed — give a later time or a date"
            )
        return local_instant(ends, tz)
    day = parse_day(text)
    if day is not None:
        if day < today:
            raise FieldError("until", f"{text} is in the past")
        if day - today > _LONGEST:
            raise FieldError("until", _TOO_FAR.format(text))
        return day
    instant = parse_moment(text)
    if not isinstance(instant, dt.datetime):
        raise FieldError(
            "until",
            f"{text!r} is not a date like {EXAMPLES}, a time today like 17:00, "
            "or a date and time like '31/10/2027 17:00'",
        )
    ends = instant if instant.tzinfo else instant.replace(tzinfo=tz)
    if ends <= current:
        raise FieldError("until", f"{text} is in the past")
    if ends - current > _LONGEST:
        raise FieldError("until", _TOO_FAR.format(text))
    return local_instant(ends, tz)


def label(value: dt.date | dt.datetime) -> str:
    if isinstance(value, dt.datetime):
        return f"{value.day} {value:%B %Y %H:%M}"
    return f"{value.day} {value:%B %Y}"


# -- the three changes --------------------------------------------------------------------


def grant(context: Context, new: NewExemption) -> EditResult:
    """Add an exemption with a fresh id (EX-YYYY-NNN); nothing is written unless it is valid."""
    today = context.today()

    def change(document: AuthorisationDocument) -> str:
        return document.grant(new, today.year)

    return edit(context, change)


def new_exemption(
    context: Context,
    *,
    kind: str,
    who: str,
    services: tuple[str, ...] = (),
    categories: tuple[str, ...] = (),
    domains: tuple[str, ...] = (),
    purpose: str,
    approved_by: str,
    expires: dt.date | dt.datetime,
    system_user: str = "",
    sudo_user: str = "",
) -> NewExemption:
    """What a grant adds, approved today (the practice's day) by `approved_by`, recorded by
    the account that made the change (and the sudo user behind it, if any)."""
    return NewExemption(
        who_kind=kind,
        who=who,
        services=services,
        categories=categories,
        domains=domains,
        purpose=purpose.strip(),
        approved_by=approved_by.strip(),
        approved_on=context.today(),
        expires=expires,
        system_user=system_user,
        sudo_user=sudo_user,
    )


def known_id(ident: str, document: AuthorisationDocument) -> str:
    """The id as the file spells it ("ex-2026-001" → EX-2026-001), or EditError with the near
    misses."""
    try:
        return resolve_id(ident, document.ids())
    except UnknownNameError as error:
        raise EditError(f"{document.source}: {error}") from None


def renew(
    context: Context, ident: str, expires: dt.date | dt.datetime, approved_by: str
) -> EditResult:
    """Extend an exemption after review: a new expiry, approver and approval date. The
    result is the id as the file spells it."""
    today = context.today()

    def change(document: AuthorisationDocument) -> str:
        found = known_id(ident, document)
        document.renew(found, expires, approved_by.strip(), today, context.settings.timezone)
        return found

    return edit(context, change)


def revoke(context: Context, ident: str, reason: str, by: str) -> EditResult:
    """Withdraw an exemption now; the entry stays in the file, marked revoked, for the record."""
    if not reason.strip():
        raise FieldError("reason", "say why it is withdrawn")
    today = context.today()

    def change(document: AuthorisationDocument) -> str:
        found = known_id(ident, document)
        document.revoke(found, today, by.strip(), reason.strip())
        return found

    return edit(context, change)


def granted_text(ident: str, new: NewExemption, from_event: str | None = None) -> str:
    what = ", ".join((*new.services, *new.categories, *new.domains))
    source = f" (from event {from_event.strip().upper()})" if from_event else ""
    recorded = f", recorded by {new.system_user}" if new.system_user else ""
    sudo = f" (sudo from {new.sudo_user})" if new.sudo_user else ""
    return (
        f"granted {ident}{source}: {new.who_kind} {new.who} may use {what} until "
        f"{label(new.expires)}, approved by {new.approved_by}{recorded}{sudo}. "
        "A running proxy applies it within 2 seconds."
    )


def renewed_text(ident: str, expires: dt.date | dt.datetime, approved_by: str) -> str:
    return f"renewed {ident} until {label(expires)}, approved by {approved_by}."


def revoked_text(ident: str, reason: str) -> str:
    return f"revoked {ident} ({reason.strip()}). A running proxy blocks it within 2 seconds."


def review_due(exemption: Exemption) -> dt.date:
    """A year after approval: the policy is reviewed annually, and so is each exemption."""
    approved = exemption.approved_on
    try:
        return approved.replace(year=approved.year + 1)
    except ValueError:  # 29 February
        return approved.replace(year=approved.year + 1, day=28)


# -- the audit log, for a grant from a block's reference ------------------------------------


def normal_reference(reference: str) -> str:
    """`sg-abc…`, ` SG-ABC… ` and `ABC…` all mean SG-ABC…."""
    ref = reference.strip().upper()
    return ref if ref.startswith("SG-") else f"SG-{ref}"


class SearchError(Exception):
    """The audit log could not be searched (a damaged file, say): the message names it."""


# How a caller finds an event by its reference in the log at a path (audit.search, which this
# wing does not import); it raises SearchError when the log cannot be read.
Finder = Callable[[Path, str], dict[str, Any] | None]


def grant_from_event(reference: str, audit_path: Path, find: Finder) -> tuple[str, str, str]:
    """(who kind, who, service) that a block was for; ActionRefusedError says why there is none."""
    ref = normal_reference(reference)
    if not audit_path.exists():
        raise ActionRefusedError(
            f"the audit log {audit_path} was not found — give its path with --audit-log"
        )
    try:
        event = find(audit_path, ref)
    except SearchError as error:
        raise ActionRefusedError(f"cannot search the audit log {audit_path}: {error}") from None
    if event is None:
        raise ActionRefusedError(
            f"no event {ref} in {audit_path} or its rotated files — check the reference on "
            "the block page, or give the right log with --audit-log"
        )
    return who_of_block(ref, event)


def who_of_block(ref: str, event: dict[str, Any]) -> tuple[str, str, str]:
    """(who kind, who, service) of a block event; ActionRefusedError if it cannot be granted."""
    if event.get("event") not in BLOCK_EVENTS:
        raise ActionRefusedError(
            f"event {ref} is {event.get('event')!r}, not a blocked access: nothing to grant"
        )
    service = event.get("service")
    if not service:
        raise ActionRefusedError(
            f"event {ref} was not blocked for a catalogued service (host "
            f"{event.get('host')!r}, reason {event.get('reason')!r}): grant with --domain instead"
        )
    user = event.get("user")
    signed_in = bool(user) and user != ANONYMOUS
    if not signed_in and not event.get("device"):
        raise ActionRefusedError(
            f"event {ref} came from {event.get('client_ip')} (zone {event.get('zone')}), which "
            "is neither a signed-in user nor a named device: add the device under devices: in "
            "policy.yaml, or grant with --user once they sign in to the proxy"
        )
    if signed_in:
        return "user", str(user), str(service)
    return "device", str(event["device"]), str(service)
