"""`socialguard check --signup`: the signup guard's answer for one request, and why.

The same question the proxy asks (core/signup.py), so what this prints is what the proxy does.
"""

from __future__ import annotations

import datetime as dt
import json
import urllib.parse
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from socialguard.cli.common import Refusal
from socialguard.core.hosts import HostError, normalise_host
from socialguard.core.policy import Policy, Who
from socialguard.core.signup import MAX_INSPECTED, SignupRequest, examine, signup_decision
from socialguard.core.signup_endpoints import Endpoint

_METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "HEAD"})


@dataclass(frozen=True, slots=True)
class Saved:
    """What a saved request file holds: method, path with query, content type and body."""

    method: str
    target: str
    content_type: str
    body: bytes


def read_saved_request(path: Path) -> Saved:
    """A raw HTTP/1 request as saved from a browser or proxy: request line, headers, body."""
    try:
        raw = path.read_bytes()
    except OSError as error:
        raise Refusal(f"{path}: cannot read the saved request: {error.strerror or error}") from None
    head, separator, body = raw.partition(b"\r\n\r\n")
    if not separator:
        head, separator, body = raw.partition(b"\n\n")
    lines = head.decode("latin-1").splitlines()
    parts = lines[0].split() if lines else []
    if len(parts) < 2 or parts[0] not in _METHODS:
        raise Refusal(
            f"{path}:1: not an HTTP request — the first line should be like "
            "'POST /join HTTP/1.1', then the headers, a blank line and the body"
        )
    content_type = ""
    for line in lines[1:]:
        name, _, value = line.partition(":")
        if name.strip().lower() == "content-type":
            content_type = value.strip()
    return Saved(parts[0], parts[1], content_type, body[:MAX_INSPECTED])


def _endpoint_origin(endpoint: Endpoint | None, practice: Path | None) -> dict[str, Any] | None:
    """Where the known endpoint that matched is written: file, line, site id, and whether it is
    the practice's own file or the shipped list."""
    if endpoint is None:
        return None
    return {
        "site": endpoint.site_id,
        "file": endpoint.source,
        "line": endpoint.line,
        "practice": practice is not None and endpoint.source == str(practice),
    }


def _guess_type(body: bytes) -> str:
    start = body.lstrip()[:1]
    return "application/json" if start in (b"{", b"[") else "application/x-www-form-urlencoded"


def explain_signup(
    url: str,
    body: str | None,
    request_file: Path | None,
    content_type: str | None,
    who: Who,
    when: dt.datetime,
    policy: Policy,
    as_json: bool,
) -> None:
    """Print the signup guard's answer for a request to `url`: refused or not, which rule
    matched, why, and whether an exemption naming the site lets it through for this person."""
    if body is not None and request_file is not None:
        raise click.UsageError("give --body or --request, not both")
    parts = urllib.parse.urlsplit(url if "://" in url else f"http://{url}")
    try:
        host = normalise_host(parts.hostname or "").name
    except HostError as error:
        raise click.BadParameter(f"{url!r}: {error.reason}", param_hint="--signup") from None
    path, query = parts.path or "/", parts.query
    data = b""
    kind = content_type or ""
    if request_file is not None:
        saved = read_saved_request(request_file)
        if saved.target.startswith("/"):
            target = urllib.parse.urlsplit(saved.target)
            path, query = target.path, target.query
        data = saved.body
        kind = content_type or saved.content_type
    elif body is not None:
        data = body.encode("utf-8")
    kind = kind or _guess_type(data)
    settings = policy.settings
    request = SignupRequest(host=host, path=path, query=query, body=data, content_type=kind)
    # The policy's endpoints, as the proxy uses them: shipped, and the practice's file over them.
    verdict = examine(
        request, settings.signup_hosts, settings.email_domains, policy.signup_endpoints
    )
    endpoint = _endpoint_origin(verdict.endpoint, settings.signup_endpoints)
    exemption_id = None
    if verdict.refuse:
        decision = signup_decision(verdict, host, who, when, policy)
        exemption_id = decision.exemption_id
    refused = verdict.refuse and exemption_id is None
    if as_json:
        click.echo(
            json.dumps(
                {
                    "url": url,
                    "host": host,
                    "refused": refused,
                    "rule": str(verdict.rule),
                    "why": verdict.why,
                    "work_domain": verdict.work_domain,
                    "exemption_id": exemption_id,
                    "endpoint": endpoint,
                }
            )
        )
        return
    click.echo(f"{host}{path}: {verdict.why}")
    click.echo(f"  rule: {verdict.rule}")
    if endpoint is not None:
        whose = (
            "the practice's own file, signup_guard.endpoints"
            if endpoint["practice"]
            else "shipped with socialguard"
        )
        click.echo(
            f"  from: {endpoint['file']}:{endpoint['line']}, sites.{endpoint['site']} ({whose})"
        )
    if exemption_id is not None:
        click.echo(
            f"  but exemption {exemption_id} names this site for {who.user}: "
            "the registration is let through (a business account)."
        )
    elif verdict.refuse:
        click.echo(
            "  the proxy answers 403 with a page that says why; nothing is sent to the site."
        )
