"""The `socialguard` command line. Bad input is a message naming file, line and fix, exit 1;
wrong usage exits 2 (click's own convention); nothing prints a traceback.

Only `run` (and `ca`) load mitmproxy, so `check` and `validate` start fast.
"""

from __future__ import annotations

import datetime as dt
import json
import sys
import urllib.parse
from collections.abc import Iterable, Iterator
from pathlib import Path

import click

from socialguard.cli.common import AUTHORISATIONS_OPTION, CONFIG_OPTION, CommandGroup, load_or_exit
from socialguard.core.policy import Decision, Policy, Who, attribute, decide
from socialguard.files.policy_files import PolicyPaths


@click.group(cls=CommandGroup, context_settings={"help_option_names": ["-h", "--help"]})
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


from socialguard.cli.audit import audit  # noqa: E402
from socialguard.cli.ca import ca  # noqa: E402
from socialguard.cli.catalog import catalog  # noqa: E402
from socialguard.cli.exemptions import exemptions  # noqa: E402
from socialguard.cli.policy_pull import policy  # noqa: E402
from socialguard.cli.privacy import privacy  # noqa: E402
from socialguard.cli.run import run  # noqa: E402
from socialguard.cli.subject_access import export as _export  # noqa: E402, F401 - adds `audit export`

for _group in (audit, ca, catalog, exemptions, policy, privacy, run):
    main.add_command(_group)
