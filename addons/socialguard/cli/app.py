"""The `socialguard` command line. Bad input is a message naming file, line and fix, exit 1;
wrong usage exits 2 (click's own convention); nothing prints a traceback.

Only `run` (and `ca`) load mitmproxy, so `check` and `validate` start fast.
"""

from __future__ import annotations

import datetime as dt
import importlib
import json
import sys
import urllib.parse
from collections.abc import Iterable, Iterator
from pathlib import Path

import click

from socialguard.cli.common import (
    AUTHORISATIONS_OPTION,
    CONFIG_OPTION,
    CommandGroup,
    Refusal,
    load_or_exit,
)
from socialguard.core.dates import parse_moment
from socialguard.core.explain import sentence
from socialguard.core.policy import Decision, Policy, Who, attribute, decide
from socialguard.files.policy_files import SEARCH_ORDER, PolicyPaths

# Each command's module, loaded only when that command runs or help lists it: `check` and
# `validate` then start without the web page, the directory client, structlog or the CA code
# (on a slow gateway that was a third of a second of every `socialguard check`).
COMMANDS = {
    "admin": ("socialguard.cli.admin", "admin"),
    "audit": ("socialguard.cli.audit", "audit"),
    "ca": ("socialguard.cli.ca", "ca"),
    "catalog": ("socialguard.cli.catalog", "catalog"),
    "digest": ("socialguard.cli.admin", "digest"),
    "exemptions": ("socialguard.cli.exemptions", "exemptions"),
    "pac": ("socialguard.cli.pac", "pac"),
    "policy": ("socialguard.cli.policy_pull", "policy"),
    "privacy": ("socialguard.cli.privacy", "privacy"),
    "run": ("socialguard.cli.run", "run"),
    "status": ("socialguard.cli.status", "status"),
    "users": ("socialguard.cli.users", "users"),
}
# Modules that add subcommands to a group of another module when imported.
EXTENDS = {"audit": ("socialguard.cli.subject_access",)}  # `audit export`


class MainGroup(CommandGroup):
    """The `socialguard` group, loading each command's module on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *COMMANDS})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        command = super().get_command(ctx, cmd_name)
        if command is None and cmd_name in COMMANDS:
            module, attribute = COMMANDS[cmd_name]
            command = getattr(importlib.import_module(module), attribute)
            for extension in EXTENDS.get(cmd_name, ()):
                importlib.import_module(extension)
            self.add_command(command, cmd_name)
        return command


@click.group(cls=MainGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="socialguard")
def main() -> None:
    """Enforce the practice's social-media policy on its proxy gateway."""


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
    moment = parse_moment(at)
    if moment is None:
        raise click.BadParameter(
            f"{at!r} is not a date and time like '24/11/2026 12:45' or 2026-11-24T12:45",
            param_hint="--at",
        )
    when = moment if isinstance(moment, dt.datetime) else dt.datetime.combine(moment, dt.time())
    if when.tzinfo is None:
        when = when.replace(tzinfo=policy.settings.timezone)  # the practice's local time
    return when


@main.command()
@CONFIG_OPTION
@AUTHORISATIONS_OPTION
@click.option("--user", help="Proxy sign-in name of the person asking.")
@click.option("--ip", default="127.0.0.1", show_default=True, help="Their device's address.")
@click.option(
    "--at",
    help="When: '24/11/2026 12:45' or 2026-11-24T12:45 (without an offset, the practice's "
    "local time).",
)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per target.")
@click.option(
    "--signup",
    metavar="URL",
    help="Ask the signup guard instead: would a form sent to URL be refused, and why?",
)
@click.option("--body", help="With --signup: the form or JSON sent, e.g. 'email=a%40nhs.net'.")
@click.option(
    "--request",
    "request_file",
    type=click.Path(path_type=Path, dir_okay=False, exists=True),
    help="With --signup: a saved HTTP request (request line, headers, blank line, body).",
)
@click.option("--content-type", help="With --body: its type (default: guessed from the body).")
@click.argument("targets", nargs=-1)
def check(
    config: Path | None,
    authorisations: Path | None,
    user: str | None,
    ip: str,
    at: str | None,
    as_json: bool,
    signup: str | None,
    body: str | None,
    request_file: Path | None,
    content_type: str | None,
    targets: tuple[str, ...],
) -> None:
    """Explain the decision for each TARGET (a URL or host; - reads them from standard input).

    With --signup URL, explain the signup guard's answer for a form sent there instead.
    """
    if signup is None:
        if body is not None or request_file is not None:
            raise click.UsageError("--body and --request go with --signup URL")
        if not targets:
            raise click.UsageError("name a TARGET (a URL or host), or - to read them from input")
    elif targets:
        raise click.UsageError("--signup explains one request: leave out the other targets")
    policy = load_or_exit(PolicyPaths(config, authorisations))
    when = parse_when(at, policy)
    who: Who = attribute(ip, user, policy.settings)
    if signup is not None:
        from socialguard.cli.signup import explain_signup  # noqa: PLC0415 - only when asked

        explain_signup(signup, body, request_file, content_type, who, when, policy, as_json)
        return
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
    return f"{decision.host}: {sentence(decision)}\n"


@main.command()
@CONFIG_OPTION
@AUTHORISATIONS_OPTION
def validate(config: Path | None, authorisations: Path | None) -> None:
    """Check the policy files; exit 0 when valid, 1 with every problem listed."""
    paths = PolicyPaths(config, authorisations)
    if paths.config_path() is None:
        raise Refusal(
            f"no policy file to check: none was found ({SEARCH_ORDER}) — name one with "
            "--config FILE, or run from the checkout that holds config/policy.yaml"
        )
    policy = load_or_exit(paths)
    for warning in policy.authorisations.warnings:
        click.echo(f"warning: {warning}", err=True)
    checked = paths.watched(policy.settings)
    if policy.settings.signup_endpoints is not None:
        checked.append(policy.settings.signup_endpoints)  # the practice's signup endpoints
    files = ", ".join(str(p) for p in checked)
    click.echo(
        f"valid: {files} — {len(policy.catalog.services)} services, "
        f"{len(policy.authorisations.exemptions)} exemptions, policy {policy.digest}"
    )
