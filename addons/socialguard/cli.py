"""The `socialguard` command line. Bad input is a message naming file, line and fix, exit 1;
wrong usage exits 2 (click's own convention); nothing prints a traceback.

Only `run` imports mitmproxy, so `check` and `validate` start fast.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import socket
import sys
import urllib.parse
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import NoReturn

import click

from socialguard.cli_common import config_option
from socialguard.cli_common import fail as fail_with
from socialguard.policy import Decision, Policy, Who, attribute, decide
from socialguard.policy_files import PolicyPaths, load_policy
from socialguard.settings import parse_listen
from socialguard.yamlfile import ConfigError

CONFIG_OPTION = config_option()
AUTHORISATIONS_OPTION = click.option(
    "--authorisations",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="The practice manager's list (default: allowlists/authorisations.yaml).",
)


def fail(message: str, error: ConfigError | None = None) -> NoReturn:
    fail_with(message, error.problems if error is not None else ())


def load_or_exit(paths: PolicyPaths) -> Policy:
    try:
        return load_policy(paths)
    except ConfigError as error:
        fail("the policy was not loaded; fix these and try again:", error)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="socialguard")
def main() -> None:
    """Enforce the practice's social-media policy on its proxy gateway."""


@main.command()
@CONFIG_OPTION
@AUTHORISATIONS_OPTION
@click.option("--listen", help="HOST:PORT to listen on (default from policy.yaml: 0.0.0.0:8080).")
@click.option(
    "--audit-log",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Audit log file (default from policy.yaml: var/audit.jsonl).",
)
@click.option("--proxyauth", help="Require proxy sign-in: @/path/to/htpasswd, or an LDAP spec.")
@click.option("--upstream", help="Send allowed traffic through this HTTP proxy (http://host:port).")
@click.option(
    "--mode",
    type=click.Choice(["regular", "transparent"]),
    default="regular",
    show_default=True,
    help="Explicit proxy, or transparently redirected traffic.",
)
@click.option(
    "--confdir",
    help="Directory of the CA that signs block pages (default from policy.yaml: var/ca).",
)
def run(
    config: Path | None,
    authorisations: Path | None,
    listen: str | None,
    audit_log: Path | None,
    proxyauth: str | None,
    upstream: str | None,
    mode: str,
    confdir: str | None,
) -> None:
    """Start the proxy. An invalid policy stops it before it listens."""
    paths = PolicyPaths(config, authorisations)
    policy = load_or_exit(paths)
    settings = policy.settings
    try:
        host, port = (
            parse_listen(listen) if listen else (settings.listen_host, settings.listen_port)
        )
    except ValueError as error:
        raise click.BadParameter(str(error), param_hint="--listen") from None
    if upstream and not upstream.startswith(("http://", "https://")):
        raise click.BadParameter("write it as http://HOST:PORT", param_hint="--upstream")
    problem = listen_problem(host, port)
    if problem:
        fail(
            f"cannot listen on {host}:{port}: {problem} — is socialguard (or another proxy) "
            "already running there? Choose another with --listen HOST:PORT or `listen:` in "
            "policy.yaml"
        )
    from socialguard.events import AuditError, AuditLog, audit_options, console_stream  # noqa: PLC0415
    from socialguard.reload import PolicyHolder, record_start  # noqa: PLC0415
    from socialguard.runner import ProxyOptions, serve  # noqa: PLC0415 - mitmproxy is slow

    audit_path = audit_log or settings.audit_path
    try:
        audit = AuditLog(audit_path, console=console_stream(), options=audit_options(settings))
    except AuditError as error:
        fail(str(error))
    except OSError as error:
        fail(
            f"cannot write the audit log {audit_path}: {error.strerror} — check the path "
            "and its permissions"
        )
    try:
        # policy.loaded, and the exemption.* events for what changed while the proxy was stopped
        record_start(audit, policy, paths, audit_path)
    except OSError as error:
        fail(
            f"cannot write the audit log {audit_path}: {error.strerror or error} — check the "
            "disk and the file's permissions"
        )
    options = ProxyOptions(
        listen_host=host,
        listen_port=port,
        mode=mode,
        upstream=upstream or settings.upstream,
        proxyauth=proxyauth or settings.proxyauth,
        https_block_page=settings.https_block == "page",
        confdir=confdir,
    )
    holder = PolicyHolder(policy)
    metrics = None
    if settings.metrics_listen:
        from socialguard.metrics import Metrics  # noqa: PLC0415

        metrics = Metrics(holder)
        try:
            metrics.serve(settings.metrics_listen)
        except (OSError, ValueError) as error:
            fail(
                f"cannot serve metrics on {settings.metrics_listen}: {error} — set "
                "metrics.listen in policy.yaml to a free HOST:PORT, or remove it"
            )
    click.echo(f"socialguard: listening on {host}:{port}; audit log {audit_path}", err=True)
    sys.exit(asyncio.run(serve(options, holder, audit, paths, metrics)))


def listen_problem(host: str, port: int) -> str | None:
    """Why the proxy could not listen on HOST:PORT, asked before mitmproxy starts: its own
    message suggests a `--mode` option that socialguard does not have."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
        with socket.socket(family, kind, proto) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind(address)
    except OSError as error:
        return str(error.strerror or error)
    return None


def _targets(targets: Iterable[str]) -> Iterator[str]:
    for target in targets:
        if target == "-":
            for line in sys.stdin:
                if stripped := line.strip():
                    yield stripped
        else:
            yield target


def host_of(target: str) -> str:
    """A URL's host, or the target itself when it is a bare host (with or without a port)."""
    if "://" in target:
        try:
            return urllib.parse.urlsplit(target).netloc.rpartition("@")[2]
        except ValueError:
            return target
    return target.split("/", 1)[0]


def parse_when(at: str | None, policy: Policy) -> dt.datetime:
    if at is None:
        return dt.datetime.now(dt.UTC)
    try:
        when = dt.datetime.fromisoformat(at)
    except ValueError:
        raise click.BadParameter(
            f"{at!r} is not a date and time like 2026-11-24T12:45", param_hint="--at"
        ) from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=policy.settings.timezone)  # the practice's local time
    return when


@main.command()
@CONFIG_OPTION
@AUTHORISATIONS_OPTION
@click.option("--user", help="Proxy sign-in name of the person asking.")
@click.option("--ip", default="127.0.0.1", show_default=True, help="Their device's address.")
@click.option("--at", help="When (ISO 8601; without an offset, the practice's local time).")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per target.")
@click.argument("targets", nargs=-1, required=True)
def check(
    config: Path | None,
    authorisations: Path | None,
    user: str | None,
    ip: str,
    at: str | None,
    as_json: bool,
    targets: tuple[str, ...],
) -> None:
    """Explain the decision for each TARGET (a URL or host; - reads them from standard input)."""
    policy = load_or_exit(PolicyPaths(config, authorisations))
    when = parse_when(at, policy)
    who: Who = attribute(ip, user, policy.settings)
    # One person, one instant: the same host always gets the same answer, so bulk input
    # (a proxy log, a blocklist) pays for each distinct host once.
    answers: dict[str, str] = {}
    lines: list[str] = []
    for target in _targets(targets):
        host = host_of(target)
        answer = answers.get(host)
        if answer is None:
            answer = _describe(decide(who, host, when, policy), as_json=as_json)
            if len(answers) < 1_000_000:
                answers[host] = answer
        lines.append(f'{{"target": {json.dumps(target)}, {answer}' if as_json else answer)
        if len(lines) >= 4096:
            sys.stdout.write("".join(lines))
            lines.clear()
    sys.stdout.write("".join(lines))
    sys.stdout.flush()


def _describe(decision: Decision, *, as_json: bool) -> str:
    """One output line; in JSON, all but the opening `{"target": …,` that each line adds."""
    if as_json:
        return (
            json.dumps(
                {
                    "host": decision.host,
                    "action": str(decision.action),
                    "service": decision.service,
                    "category": decision.category,
                    "reason": str(decision.reason),
                    "exemption_id": decision.exemption_id,
                    "detail": decision.detail or None,
                }
            )[1:]
            + "\n"
        )
    what = f" — {decision.service_name} ({decision.category})" if decision.service else ""
    because = f": {decision.detail}" if decision.detail else ""
    via = f" [{decision.exemption_id}]" if decision.exemption_id else ""
    return f"{decision.host}: {decision.action}{what}; {decision.reason}{via}{because}\n"


@main.command()
@CONFIG_OPTION
@AUTHORISATIONS_OPTION
def validate(config: Path | None, authorisations: Path | None) -> None:
    """Check the policy files; exit 0 when valid, 1 with every problem listed."""
    paths = PolicyPaths(config, authorisations)
    policy = load_or_exit(paths)
    for warning in policy.authorisations.warnings:
        click.echo(f"warning: {warning}", err=True)
    files = ", ".join(str(p) for p in paths.watched()) or "embedded defaults"
    click.echo(
        f"valid: {files} — {len(policy.catalog.services)} services, "
        f"{len(policy.authorisations.exemptions)} exemptions, policy {policy.digest}"
    )


from socialguard.cli_audit import audit  # noqa: E402
from socialguard.cli_ca import ca  # noqa: E402
from socialguard.cli_catalog import catalog  # noqa: E402
from socialguard.cli_exemptions import exemptions  # noqa: E402

for _group in (audit, ca, catalog, exemptions):
    main.add_command(_group)
