"""`socialguard status`: what is running, in plain words, read from the files and the audit log.

It needs no running proxy and asks it nothing but /healthz (when metrics.listen is set): what
the proxy has in force is read from its own record, the last `policy.loaded` in the audit log.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import socket
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from socialguard.audit.files import AuditError, Segment, iter_lines, log_segments
from socialguard.audit.log import line_hash
from socialguard.cli.common import AUTHORISATIONS_OPTION, CONFIG_OPTION
from socialguard.core.events import Event
from socialguard.core.policy import Policy
from socialguard.core.problems import ConfigError
from socialguard.core.settings import parse_listen
from socialguard.files.policy_files import PolicyPaths, load_policy, load_settings

CA_CERT = "mitmproxy-ca-cert.pem"  # the certificate `run` makes (proxy.ca.CERT_FILE)
EXPIRING_WITHIN = dt.timedelta(days=30)
SCAN_LIMIT = 64 * 1024 * 1024  # how much of the log's end is read for the last events


def _events_from_end(audit_path: Path) -> Iterator[dict[str, Any]]:
    """Events, newest first, from the active file and then the rotated ones, up to SCAN_LIMIT."""
    scanned = 0
    for segment in reversed(log_segments(audit_path)):
        lines = list(iter_lines(segment))
        for line in reversed(lines):
            scanned += len(line)
            if scanned > SCAN_LIMIT:
                return
            try:
                event = json.loads(line)
            except ValueError:
                continue
            if isinstance(event, dict):
                yield event


def _head(segments: list[Segment]) -> str:
    for segment in reversed(segments):
        lines = [line for line in iter_lines(segment) if line.strip()]
        if lines:
            try:
                seq = json.loads(lines[-1]).get("seq")
            except ValueError:
                seq = "? (the last line is torn)"
            return f"seq {seq}, hash {line_hash(lines[-1])[:16]}… ({segment.path})"
    return "empty"


def _ca(ca_dir: Path, now: dt.datetime) -> str:
    path = ca_dir / CA_CERT
    try:
        cert = x509.load_pem_x509_certificate(path.read_bytes())
    except FileNotFoundError:
        return f"none in {ca_dir} yet (`run` makes one at its first start)"
    except (OSError, ValueError) as error:
        return f"{path} cannot be read: {error}"
    der = cert.public_bytes(serialization.Encoding.DER)
    digest = hashlib.sha256(der).hexdigest().upper()
    fingerprint = ":".join(digest[i : i + 2] for i in range(0, len(digest), 2))
    expires = cert.not_valid_after_utc
    left = (expires - now).days
    warn = " — RENEW IT SOON" if left < 60 else ""
    return f"{path}\n    SHA-256 {fingerprint}\n    expires {expires:%Y-%m-%d} ({left} days){warn}"


def _listening(host: str, port: int) -> bool:
    probe = "127.0.0.1" if host in ("0.0.0.0", "") else "::1" if host == "::" else host  # noqa: S104
    try:
        with socket.create_connection((probe, port), timeout=1):
            return True
    except OSError:
        return False


def _healthz(listen: str) -> str:
    host, port = parse_listen(listen)
    host = "127.0.0.1" if host == "0.0.0.0" else host  # noqa: S104
    url = f"http://{f'[{host}]' if ':' in host else host}:{port}/healthz"
    try:
        with urllib.request.urlopen(url, timeout=2) as answer:
            return f"{answer.status} {answer.read(200).decode(errors='replace').strip()}"
    except urllib.error.HTTPError as error:
        return f"{error.code} {error.read(300).decode(errors='replace').strip()}"
    except OSError as error:
        return f"no answer at {url} ({error})"


@click.command()
@CONFIG_OPTION
@AUTHORISATIONS_OPTION
@click.option(
    "--audit-log",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="The audit log (default: audit.path from the policy).",
)
def status(config: Path | None, authorisations: Path | None, audit_log: Path | None) -> None:
    """What is running: listen address, files in force and when each was loaded, the CA, the
    audit log's head, exemptions active and expiring, the last rejected edit. Read from the
    files and the audit log; a running proxy is not needed."""
    now = dt.datetime.now(dt.UTC)
    paths = PolicyPaths(config, authorisations)
    say = click.echo
    policy: Policy | None = None
    try:
        policy = load_policy(paths)
    except ConfigError as error:
        say(
            "The policy files do NOT load as they are now (a running proxy keeps its last good "
            "policy):"
        )
        for problem in error.problems:
            say(f"  {problem}")
    config_path = paths.config_path()
    say(f"Policy file: {config_path or 'none found — the embedded defaults'} ({paths.found_by()})")
    if policy is not None:
        settings = policy.settings
    else:
        try:
            settings = load_settings(config_path)[0]
        except ConfigError:
            return  # policy.yaml itself is broken: nothing more is known for sure
    listen = f"{settings.listen_host}:{settings.listen_port}"
    up = _listening(settings.listen_host, settings.listen_port)
    say(
        f"Listen address: {listen} — "
        + (
            "something is listening there (the proxy, if it is running)"
            if up
            else "nothing is listening there: the proxy is not running (or runs with --listen)"
        )
    )
    if settings.metrics_listen:
        say(f"Health ({settings.metrics_listen}/healthz): {_healthz(settings.metrics_listen)}")
    audit_path = audit_log or settings.audit_path
    say(f"Audit log: {audit_path}")
    try:
        segments = log_segments(audit_path)
    except (OSError, AuditError) as error:
        segments = []
        say(f"  cannot be read: {error}")
    loaded: dict[str, Any] | None = None
    rejected: dict[str, Any] | None = None
    if segments:
        say(f"  head: {_head(segments)}")
        try:
            for event in _events_from_end(audit_path):
                name = event.get("event")
                if name == Event.POLICY_LOADED and loaded is None:
                    loaded = event
                elif name == Event.POLICY_REJECTED and rejected is None:
                    rejected = event
                if loaded is not None and rejected is not None:
                    break
        except (OSError, AuditError) as error:
            say(f"  cannot be read to the end: {error}")
    else:
        say("  none yet")
    say("Files:")
    endpoints = [settings.signup_endpoints] if settings.signup_endpoints is not None else []
    for path in [*paths.watched(settings), *settings.catalogs, *endpoints]:
        try:
            changed = dt.datetime.fromtimestamp(path.stat().st_mtime, dt.UTC)
            say(f"  {path} (changed {changed:%Y-%m-%d %H:%M:%S} UTC)")
        except OSError as error:
            say(f"  {path} ({error.strerror})")
    if loaded is not None and policy is not None:
        same = loaded.get("policy_digest") == policy.digest
        say(
            f"Policy in force (last recorded): {loaded.get('policy_digest')} loaded "
            f"{loaded.get('ts')} ({loaded.get('trigger')}) from "
            f"{', '.join(loaded.get('files') or []) or 'the embedded defaults'}"
        )
        say(
            "  the files on disk are that policy"
            if same
            else f"  the files on disk now make policy {policy.digest}: not yet taken (a running "
            "proxy takes a change within about a second; see the last rejected edit below)"
        )
    elif loaded is not None:
        say(
            f"Policy in force (last recorded): {loaded.get('policy_digest')} loaded "
            f"{loaded.get('ts')} ({loaded.get('trigger')})"
        )
    else:
        say("Policy in force: no policy.loaded in the audit log — the proxy has not run with it")
    say(f"CA: {_ca(settings.ca_dir, now)}")
    exemptions = policy.authorisations.exemptions if policy is not None else ()
    active = [e for e in exemptions if e.status(now) == "active"]
    expiring = sorted(
        (e for e in active if e.expires - now <= EXPIRING_WITHIN), key=lambda e: e.expires
    )
    if policy is None:
        say("Exemptions: not known (the files above do not load)")
    else:
        say(f"Exemptions: {len(active)} active, {len(expiring)} expiring within 30 days")
    for exemption in expiring:
        say(
            f"  {exemption.id} ({exemption.who_kind} {exemption.who}) expires "
            f"{exemption.expires_label}"
        )
    if rejected is not None:
        say(f"Last rejected edit: {rejected.get('ts')}: {rejected.get('detail')}")
    else:
        say("Last rejected edit: none recorded")
    say(
        "Not known without asking the proxy itself: open connections, who is signed in, and "
        "whether it runs with --listen/--audit-log/--confdir other than the policy's."
    )
