"""`socialguard audit`: Verify, search and report on the audit log.

Reads only: these commands never change the log. A damaged file, a missing key or a bad month
is a message naming the file (and line) and the fix, exit 1; never a traceback.
"""

from __future__ import annotations

import datetime as dt
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from socialguard.audit.files import AuditError, Segment, chains_for, chains_of
from socialguard.audit.printable import printable
from socialguard.cli.common import CommandGroup, Refusal, config_option
from socialguard.core.problems import ConfigError
from socialguard.core.settings import Settings
from socialguard.files.output import OutputError, write_file
from socialguard.files.policy_files import check_exists, load_settings

CONFIG_OPTION = config_option(
    "IT's settings, for the log's path, key and time zone (default: config/policy.yaml)."
)
AUDIT_LOG_OPTION = click.option(
    "--audit-log",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="The active audit log file (default from policy.yaml: var/audit.jsonl); its rotated "
    "files beside it are read too.",
)


def _settings(config: Path | None) -> Settings:
    from socialguard.files.policy_files import PolicyPaths  # noqa: PLC0415 - keeps import light

    if config is not None:
        check_exists(config, "the policy file")
    settings, _raw = load_settings(PolicyPaths(config).config_path())
    return settings


def _segments(audit_log: Path | None, settings: Settings) -> list[Segment]:
    """Every file of the log, chain after chain (for readers that need no time order)."""
    return [segment for chain in _chains(audit_log, settings) for segment in chain]


def _chains(audit_log: Path | None, settings: Settings) -> list[list[Segment]]:
    """The log's chains: its own and, after `run --workers N`, each worker's beside it."""
    active = audit_log or settings.audit_path
    chains = chains_of(active)
    if not chains:
        raise AuditError(
            f"{active}: no audit log here — check audit.path in policy.yaml or give --audit-log"
        )
    return chains


@click.group(cls=CommandGroup, not_loaded="the settings were not loaded; fix these and try again:")
def audit() -> None:
    """Verify, search and report on the audit log."""


# For a reader: a new key would make every line signed with the original look forged.
VERIFY_KEY_FIX = (
    "get the original key (the one the log was written with; never make a new one to "
    "verify), or run without --key-file / with --no-key to check the chain only"
)


@audit.command()
@CONFIG_OPTION
@click.option(
    "--key-file",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="The HMAC key (default: audit.hmac_key_file from policy.yaml, if set).",
)
@click.option(
    "--no-key",
    is_flag=True,
    help="Check the hash chain only, without the HMAC key (even if policy.yaml names one).",
)
@click.option(
    "--expect-head",
    "expect_heads",
    metavar="HASH",
    multiple=True,
    help="A head printed by an earlier verify: the log must still hold that line, so lines "
    "removed from its end since then are caught. With several chains (run --workers), give "
    "each chain's head, once per chain: each must be in a chain of its own.",
)
@click.option("--json", "as_json", is_flag=True, help="The verdict as one JSON object.")
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
def verify(
    config: Path | None,
    key_file: Path | None,
    no_key: bool,
    expect_heads: tuple[str, ...],
    as_json: bool,
    paths: tuple[Path, ...],
) -> None:
    """Check that nothing in the log was edited, removed or reordered.

    PATHS are log files or folders (default: the log in policy.yaml). The active file brings
    its rotated (and gzipped) files with it, and the workers' chains beside it (run --workers:
    audit.w1.jsonl, …); a folder brings every chain in it. Exit 0 when every chain holds, 1 at
    the first break.
    """
    from socialguard.audit.log import load_hmac_key  # noqa: PLC0415
    from socialguard.audit.verify import HEAD_PATTERN, verify_chains  # noqa: PLC0415

    if no_key and key_file is not None:
        raise Refusal("--key-file and --no-key: give one or the other, not both")
    heads = [head.strip().lower() for head in expect_heads]
    for head in heads:
        if not HEAD_PATTERN.fullmatch(head):
            raise Refusal(
                f"--expect-head {head!r}: give the 64 hex digits printed after 'Head' by an "
                "earlier verify (with several chains, after each chain's 'head')"
            )
    settings = _settings(config)
    key_path = None if no_key else key_file or settings.audit_hmac_key_file
    key = load_hmac_key(key_path, fix=VERIFY_KEY_FIX) if key_path is not None else None
    verdict = verify_chains(lambda: chains_for(list(paths), settings.audit_path), key, heads)
    if as_json:
        click.echo(json.dumps(verdict.as_dict()))
    else:
        for note in verdict.notes:
            click.echo(printable(f"note: {note}"))
        if verdict.problem is None:
            keyed = " (HMAC checked)" if key is not None else ""
            several = len(verdict.heads) > 1
            if several and heads:
                given = len(heads)
                head = (
                    f", and each of the {given} heads given is in a chain of its own"
                    if given > 1
                    else f", and one of them holds the head given ({heads[0][:12]}…)"
                )
            else:
                head = f", and it still holds the head given ({heads[0][:12]}…)" if heads else ""
            if several:
                click.echo(f"{len(verdict.heads)} chains (one per worker), read as one record:")
                for name, chain_head in verdict.heads.items():
                    click.echo(f"  {name}: head {chain_head}")
            click.echo(
                f"OK: {verdict.events} events in {verdict.files} file"
                f"{'s' if verdict.files != 1 else ''}, {verdict.first_ts or '-'} to "
                f"{verdict.last_ts or '-'}; "
                + (
                    f"every chain holds{keyed}{head}."
                    if several
                    else f"the chain holds{keyed}{head}. Head {verdict.head}"
                )
            )
        else:
            click.echo(printable(f"BROKEN after {verdict.events} good events: {verdict.problem}"))
    if verdict.problem is not None:
        sys.exit(1)


@audit.command()
@CONFIG_OPTION
@AUDIT_LOG_OPTION
@click.option("--id", "reference", help="A block's reference, as its page shows it: SG-….")
@click.option("--user", help="Proxy sign-in name (exact).")
@click.option("--service", help="A service by name or id, e.g. Instagram (any case).")
@click.option("--host", help="A host, e.g. facebook.com (names under it too).")
@click.option("--address", help="The client's IP address, e.g. 10.20.0.14.")
@click.option("--device", help="A device named under devices: in policy.yaml.")
@click.option("--event", help="Event name, e.g. access.exception; access.* for all access events.")
@click.option(
    "--from", "since", help="From this day (01/11/2026, 2026-11-01) or time, the practice's time."
)
@click.option("--to", "until", help="To the end of this day (30/11/2026), or this time.")
@click.option("--json", "as_json", is_flag=True, help="One JSON event per line, as stored.")
def search(
    config: Path | None,
    audit_log: Path | None,
    reference: str | None,
    user: str | None,
    service: str | None,
    host: str | None,
    address: str | None,
    device: str | None,
    event: str | None,
    since: str | None,
    until: str | None,
    as_json: bool,
) -> None:
    """Print the events that match every filter given, oldest first."""
    from socialguard.audit.log import human_line  # noqa: PLC0415
    from socialguard.audit.search import Query, parse_bound, search_chains  # noqa: PLC0415

    settings = _settings(config)
    tz = settings.timezone
    query = Query(
        id=_reference(reference) if reference else None,
        user=user,
        service=_service_id(service, settings) if service else None,
        host=_host(host) if host else None,
        client_ip=_address(address) if address else None,
        device=device,
        event=event,
        since=parse_bound(since, tz, end=False, option="--from") if since else None,
        until=parse_bound(until, tz, end=True, option="--to") if until else None,
    )
    out = sys.stdout.buffer
    count = 0
    for raw, found in search_chains(_chains(audit_log, settings), query):
        out.write(raw + b"\n" if as_json else (human_line(found) + "\n").encode("utf-8"))
        count += 1
    out.flush()
    if not as_json:
        click.echo(f"{count} event{'s' if count != 1 else ''}", err=True)


def _reference(text: str) -> str:
    """`sg-0a1b…`, `0A1B…` or `SG-0A1B…` → the reference as the log writes it."""
    ref = text.strip().upper()
    return ref if ref.startswith("SG-") else f"SG-{ref}"


def _service_id(text: str, settings: Settings) -> str:
    """A service by its name or id in any case; one the catalogue no longer has (an old log)
    is searched as typed, with the near misses named."""
    from socialguard.core.names import UnknownNameError, resolve_service  # noqa: PLC0415
    from socialguard.files.catalog_file import load_catalog  # noqa: PLC0415

    try:
        catalog, _ = load_catalog(settings.catalogs, settings.practice.domains)
        return resolve_service(text, catalog)
    except ConfigError:
        return text.strip().lower()
    except UnknownNameError as error:
        click.echo(f"note: --service: {error}; searching for {text.strip().lower()!r}", err=True)
        return text.strip().lower()


def _host(text: str) -> str:
    from socialguard.core.hosts import HostError, normalise_host  # noqa: PLC0415

    try:
        return normalise_host(text.strip()).name
    except HostError as error:
        raise click.BadParameter(f"{text!r}: {error.reason}", param_hint="--host") from None


def _address(text: str) -> str:
    import ipaddress  # noqa: PLC0415

    from socialguard.core.policy import normalise_ip  # noqa: PLC0415

    try:
        ipaddress.ip_address(text.strip())
    except ValueError:
        raise click.BadParameter(
            f"{text!r} is not an IP address (e.g. 10.20.0.14)", param_hint="--address"
        ) from None
    return normalise_ip(text.strip())


@audit.command()
@CONFIG_OPTION
@AUDIT_LOG_OPTION
@click.option(
    "--authorisations",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="The exemptions list, for those expiring (default: allowlists/authorisations.yaml).",
)
@click.option("--month", help="The month, YYYY-MM (e.g. 2026-11).")
@click.option(
    "--from", "since", help="Or any period: its first day (03/11/2026, 2026-11-03, '3 Nov 2026')."
)
@click.option("--to", "until", help="With --from: the period's last day (included).")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "csv", "html"]),
    default="text",
    show_default=True,
)
@click.option(
    "--out",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Write to this file instead of standard output.",
)
def report(
    config: Path | None,
    audit_log: Path | None,
    authorisations: Path | None,
    month: str | None,
    since: str | None,
    until: str | None,
    fmt: str,
    out: Path | None,
) -> None:
    """The Practice Manager's summary of a month (--month) or of any period (--from, --to, for
    the review after an incident): exemption use, blocks, exemption changes."""
    from socialguard.audit import report as audit_report  # noqa: PLC0415
    from socialguard.audit.search import (  # noqa: PLC0415
        Query,
        first_ts,
        month_bounds,
        period_bounds,
        search_chains,
    )

    if (month is None) == (since is None and until is None):
        raise click.UsageError("give --month YYYY-MM, or a period with --from DATE --to DATE")
    if month is None and (since is None or until is None):
        raise click.UsageError("a period needs both --from DATE and --to DATE")
    settings = _settings(config)
    tz = settings.timezone
    chains = _chains(audit_log, settings)
    firsts = [ts for chain in chains if (ts := first_ts(chain)) is not None]
    first = min(firsts) if firsts else None
    today = local_today(tz)
    context: dict[str, Any] = {
        "names": _service_names(settings),
        "log_start": _local_day(first, tz) if first else today,
        "today": today,
    }
    exemptions = _exemptions(config, authorisations)
    if month is not None:
        bounds = month_bounds(month, tz)[:2]
        query = Query(since=bounds[0], until=bounds[1])
        events = (e for _raw, e in search_chains(chains, query))
        built = audit_report.build_report(events, month, tz, exemptions, **context)
    else:
        first_day = _day(str(since), "--from")
        last_day = _day(str(until), "--to")
        bounds = period_bounds(first_day, last_day, tz)
        query = Query(since=bounds[0], until=bounds[1])
        events = (e for _raw, e in search_chains(chains, query))
        built = audit_report.build_period_report(
            events, first_day, last_day, tz, exemptions, **context
        )
    renderers: dict[str, Callable[[Any], str]] = {
        "text": audit_report.render_text,
        "csv": audit_report.render_csv,
        "html": lambda r: audit_report.render_html(r, settings.practice.name),
    }
    text = renderers[fmt](built)
    if out is None:
        click.echo(text, nl=False)
        return
    try:
        write_file(out, text.encode("utf-8"))
    except OutputError as error:
        raise Refusal(str(error)) from None
    click.echo(f"report for {built.month} written to {out}", err=True)


def local_today(tz: Any) -> dt.date:
    """Today in the practice's time zone; tests replace it to stand on a chosen day."""
    return dt.datetime.now(tz).date()


def _day(text: str, option: str) -> dt.date:
    from socialguard.core.dates import EXAMPLES, parse_day  # noqa: PLC0415

    day = parse_day(text)
    if day is None:
        raise click.BadParameter(f"{text!r} is not a date like {EXAMPLES}", param_hint=option)
    return day


def _local_day(ts: str, tz: Any) -> dt.date | None:
    try:
        return dt.datetime.fromisoformat(ts).astimezone(tz).date()
    except ValueError:
        return None


def _service_names(settings: Settings) -> dict[str, str]:
    """Service id → the name people know ("instagram" → "Instagram"); none if the catalogue
    does not load (the ids are then shown)."""
    from socialguard.files.catalog_file import load_catalog  # noqa: PLC0415

    try:
        catalog, _ = load_catalog(settings.catalogs, settings.practice.domains)
    except ConfigError:
        return {}
    return {service.id: service.name for service in catalog.services.values()}


def _exemptions(config: Path | None, authorisations: Path | None) -> tuple[Any, ...]:
    """The current list's exemptions, or none (with a warning) if it does not load."""
    from socialguard.files.policy_files import PolicyPaths, load_policy  # noqa: PLC0415

    try:
        return load_policy(PolicyPaths(config, authorisations)).authorisations.exemptions
    except ConfigError as error:
        click.echo(
            "warning: the exemptions list did not load, so exemptions expiring are not listed:",
            err=True,
        )
        for problem in error.problems:
            click.echo(f"  {problem}", err=True)
        return ()
