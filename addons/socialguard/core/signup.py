"""The signup guard's question: does this request register an account on a listed site with
a work e-mail address (or move an account to one)?

The policy forbids using the work address *to register* on social media or shopping sites; it
does not forbid signing in, checking out or reading a newsletter. So a request is refused only
when it carries a work address AND it creates an account or changes an account's e-mail: by a
known endpoint of the site (shipped in data/signup_endpoints.yaml, or in the practice's own
file; each with the day it was checked: core/signup_endpoints.py) or, for sites not described
there, by the heuristic below (see docs/SIGNUP.md). Only the hosts IT
lists (`signup_guard.hosts`) are inspected, and only the domain of an address is ever kept: the
address itself is personal data the audit log does not need.

Pure: `examine` answers from the request alone, and says which rule matched and why, so the
proxy and `socialguard check --signup` give the same answer.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import enum
import json
import re
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from socialguard.core.authorisations import Exemption
from socialguard.core.hosts import suffixes
from socialguard.core.policy import Action, Decision, Policy, Reason, Who
from socialguard.core.signup_endpoints import Endpoint, Kind

# Forms are small; a large body is an upload, and its first megabyte holds any form fields.
MAX_INSPECTED = 1 << 20
# The domain after an `@`, bounded like DNS labels so that no input makes the match slow.
_DOMAIN_AFTER_AT = re.compile(r"[a-z0-9-]{1,63}(?:\.[a-z0-9-]{1,63}){1,126}", re.IGNORECASE)
_LOCAL_PART_END = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._%+'-")


def is_guarded(host: str, hosts: tuple[str, ...]) -> bool:
    """Whether a normalised host is, or is under, one of the listed sign-up hosts."""
    listed = {h.lower().strip(".") for h in hosts}
    return any(s in listed for s in suffixes(host))


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield str(key)
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def _texts(body: bytes, query: str, content_type: str) -> Iterator[str]:
    """Every readable form of the fields: as sent, URL-decoded (once and twice), and JSON
    strings unescaped."""
    text = body[:MAX_INSPECTED].decode("utf-8", errors="replace")
    yield text
    for encoded in (text, query):
        once = urllib.parse.unquote_plus(encoded)
        yield once
        if "%" in once:  # encoded twice (`%2540`): some scripts encode a form already encoded
            yield urllib.parse.unquote_plus(once)
    if "json" in content_type.lower():
        # Not JSON after all: the plain text above was still searched.
        with contextlib.suppress(ValueError):
            yield from _strings(json.loads(text))


def work_address_domain(
    body: bytes, query: str, content_type: str, email_domains: tuple[str, ...]
) -> str | None:
    """The work e-mail domain an address in the request belongs to, or None."""
    if not email_domains:
        return None
    work = {d.lower().lstrip("@").rstrip(".") for d in email_domains}
    for text in _texts(body, query, content_type):
        for domain in _address_domains(text):
            for suffix in suffixes(domain.lower()):
                if suffix in work:
                    return suffix
    return None


def _address_domains(text: str) -> Iterator[str]:
    """The domain of each e-mail address in `text`: linear in its length, whatever it holds."""
    at = text.find("@")
    while at != -1:
        if at > 0 and text[at - 1] in _LOCAL_PART_END:
            match = _DOMAIN_AFTER_AT.match(text, at + 1)
            if match:
                yield match[0]
        at = text.find("@", at + 1)


# -- is it a registration? ---------------------------------------------------------------------


class Rule(enum.StrEnum):
    """Which rule decided. Values appear in audit events (`rule`): never rename one."""

    NOT_GUARDED = "not_guarded"
    NO_WORK_ADDRESS = "no_work_address"
    KNOWN_ENDPOINT = "known_endpoint"
    PATH_WORD = "path_word"
    PASSWORD_CONFIRMATION = "password_confirmation"  # noqa: S105 - a rule's name
    GRAPHQL_MUTATION = "graphql_mutation"
    NOT_REGISTRATION = "not_registration"


_KIND_WORDS = {Kind.REGISTRATION: "registers an account", Kind.EMAIL_CHANGE: "changes the e-mail"}


@dataclass(frozen=True, slots=True, kw_only=True)
class SignupRequest:
    """What the guard reads of a request: where it goes and what it carries."""

    host: str
    path: str
    query: str = ""
    body: bytes = b""
    content_type: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class Verdict:
    """Refuse or not, the rule that decided, and a sentence saying why (for people only: it
    may name the path, which the audit log does not keep)."""

    refuse: bool
    rule: Rule
    why: str
    work_domain: str | None = None
    endpoint: Endpoint | None = None  # the known endpoint that matched, and where it is written


# A path segment that says the request registers or moves the account's e-mail. Linear: each
# segment is short and the alternatives do not nest. "unregister" (newsletters) is not one.
_PATH_WORD = re.compile(
    r"(?<!un)regist(?:er|ration)|sign[-_]?up|create[-_]?(?:account|user)|new[-_]?account"
    r"|(?:^|[-_.])join(?:$|[-_.]|now|us)|(?:change|update|edit)[-_]?e-?mail",
    re.IGNORECASE,
)
# A field that repeats a new password: `password_confirmation`, `confirmPassword`, `password2`.
_CONFIRMATION = re.compile(
    r"(?:confirm|repeat|retype|verify|re[-_])[-_]?pass(?:word|wd)?"
    r"|pass(?:word|wd)?[-_]?(?:confirm(?:ation)?|again|repeat|retype|verify|check|2(?![0-9]))",
    re.IGNORECASE,
)
# A GraphQL operation whose name says it registers or moves the e-mail (`SignUp`,
# `createAccount`, `updateEmail`); `join` is left out: `joinGroup` is not a registration.
_MUTATION_NAME = re.compile(
    r"sign_?up|regist(?:er|ration)|create_?(?:account|user|member)|(?:change|update|set)_?e_?mail",
    re.IGNORECASE,
)
_MUTATION = re.compile(
    r"\bmutation\b\s*([A-Za-z_][A-Za-z0-9_]{0,100})?[^{]{0,1000}\{\s*"
    r"(?:[A-Za-z_][A-Za-z0-9_]{0,100}\s*:\s*)?([A-Za-z_][A-Za-z0-9_]{0,100})"
)
# Only this much of a field list is searched for a confirmation field: forms are small.
_FIELD_WINDOW = 64 * 1024


def path_word(path: str) -> str | None:
    """The word in a path that says it registers (or moves the e-mail), or None."""
    for segment in path.split("/")[:64]:
        match = _PATH_WORD.search(segment[:200])
        if match:
            return match[0].strip("-_.")
    return None


def confirmation_field(texts: list[str]) -> str | None:
    """The name of a password-confirmation field in the body, or None."""
    for text in texts:
        match = _CONFIRMATION.search(text[:_FIELD_WINDOW])
        if match:
            return match[0]
    return None


def _operations(value: Any) -> Iterator[dict[str, Any]]:
    if isinstance(value, dict):
        yield value
    elif isinstance(value, list):  # a batch
        for item in value[:100]:
            if isinstance(item, dict):
                yield item


def graphql_mutation(body: bytes, content_type: str) -> str | None:
    """The name of a GraphQL operation that registers or moves the e-mail, or None.

    Read: `operationName` (also with persisted queries, which send no query text) and the name
    and first field of a `mutation` in `query`.
    """
    text = body[:MAX_INSPECTED].decode("utf-8", errors="replace").lstrip()
    if "json" not in content_type.lower() and not text.startswith(("{", "[")):
        return None
    try:
        data = json.loads(text)
    except ValueError:
        return None
    for operation in _operations(data):
        names: list[str] = []
        operation_name = operation.get("operationName")
        if isinstance(operation_name, str):
            names.append(operation_name)
        query = operation.get("query")
        if isinstance(query, str):
            for match in _MUTATION.finditer(query[:_FIELD_WINDOW]):
                names += [str(n) for n in match.groups() if n]
        for name in names:
            if _MUTATION_NAME.search(name[:200]):
                return name[:200]
    return None


def examine(
    request: SignupRequest,
    hosts: tuple[str, ...],
    email_domains: tuple[str, ...],
    endpoints: tuple[Endpoint, ...],
) -> Verdict:
    """Whether the signup guard refuses this request, by which rule, and why."""
    host = request.host.lower().rstrip(".")
    if not is_guarded(host, hosts):
        return Verdict(
            refuse=False,
            rule=Rule.NOT_GUARDED,
            why=f"{host} is not one of the sites the signup guard watches (signup_guard.hosts).",
        )
    work = work_address_domain(request.body, request.query, request.content_type, email_domains)
    if work is None:
        return Verdict(
            refuse=False,
            rule=Rule.NO_WORK_ADDRESS,
            why="The request carries no work e-mail address, so the guard lets it through.",
        )
    carries = f"it carries an address at {work}"
    for endpoint in endpoints:
        if endpoint.matches(host, request.path, request.query):
            return Verdict(
                refuse=True,
                rule=Rule.KNOWN_ENDPOINT,
                why=f"Refused: this is {endpoint.label} "
                f"(checked {endpoint.checked_label}), which {_KIND_WORDS[endpoint.kind]}, "
                f"and {carries}.",
                work_domain=work,
                endpoint=endpoint,
            )
    word = path_word(request.path)
    if word is not None:
        return Verdict(
            refuse=True,
            rule=Rule.PATH_WORD,
            why=f"Refused: the path {request.path} says it registers or changes the e-mail "
            f"('{word}'), and {carries}.",
            work_domain=work,
        )
    texts = list(_texts(request.body, request.query, request.content_type))
    field = confirmation_field(texts)
    if field is not None:
        return Verdict(
            refuse=True,
            rule=Rule.PASSWORD_CONFIRMATION,
            why=f"Refused: the form asks for a new password twice ('{field}'), as a "
            f"registration does, and {carries}.",
            work_domain=work,
        )
    mutation = graphql_mutation(request.body, request.content_type)
    if mutation is not None:
        return Verdict(
            refuse=True,
            rule=Rule.GRAPHQL_MUTATION,
            why=f"Refused: the GraphQL operation '{mutation}' registers or changes the e-mail, "
            f"and {carries}.",
            work_domain=work,
        )
    return Verdict(
        refuse=False,
        rule=Rule.NOT_REGISTRATION,
        why=f"Let through: {carries}, but nothing says it creates an account or changes its "
        "e-mail (signing in, checking out and newsletters are allowed).",
        work_domain=work,
    )


# -- a registration for a business purpose ----------------------------------------------------


def exemption_for(who: Who, host: str, when: dt.datetime, policy: Policy) -> Exemption | None:
    """An active exemption that names this site (its service or its domain) for this person,
    their group or their device: a business registration, like the practice's Amazon Business
    account. A whole category is not enough: it does not name the site."""
    service = policy.catalog.lookup(host).service
    service_id = service.id if service is not None else ""
    host_suffixes = suffixes(host)
    authorisations = policy.authorisations
    candidates: list[Exemption] = []
    if who.authenticated:
        candidates += authorisations.for_who("user", who.user)
        for group in sorted(who.groups):
            candidates += authorisations.for_who("group", group)
    if who.device:
        candidates += authorisations.for_who("device", who.device)
    for exemption in candidates:
        if exemption.covers(service_id, "", host_suffixes) and exemption.status(when) == "active":
            return exemption
    return None


def signup_decision(
    verdict: Verdict, host: str, who: Who, when: dt.datetime, policy: Policy
) -> Decision:
    """What to record for a refused registration: a block, or its exemption if one names the
    site."""
    service = policy.catalog.lookup(host).service
    detail = f"an address at {verdict.work_domain}"
    exemption = exemption_for(who, host, when, policy)
    if exemption is not None:
        return Decision(
            action=Action.ALLOW,
            reason=Reason.EXEMPTION,
            host=host,
            service=service.id if service else None,
            service_name=service.name if service else None,
            category=service.category if service else None,
            exemption_id=exemption.id,
            purpose=exemption.purpose,
            exemption_ends=exemption.expires_label,
            detail=f"a registration with {detail}",
        )
    return Decision(
        action=Action.BLOCK,
        reason=Reason.WORK_EMAIL_SIGNUP,
        host=host,
        service=service.id if service else None,
        service_name=service.name if service else None,
        category=service.category if service else None,
        detail=detail,
    )
