"""`socialguard catalog`: Look up, list, import and check the catalogue of services.

Reads the shipped catalogue plus the extra files policy.yaml lists under `catalogs:`. Only
`import` writes, and only the file it was asked to make. Bad input is a message naming the file
(and line) and the fix, exit 1; never a traceback.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import sys
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import click

from socialguard.cli.common import CommandGroup, Refusal, config_option
from socialguard.core.catalog import CATEGORIES, KIND_LABELS, Catalog, Explanation
from socialguard.core.catalog_coverage import as_dict, read_table, summary_lines
from socialguard.core.catalog_coverage import coverage as measure_coverage
from socialguard.core.catalog_import import (
    ImportResult,
    ListFormat,
    detect_format,
    import_list,
    import_v2fly,
    render_catalog,
    service_id_for,
)
from socialguard.core.hosts import HostError, HostKind, normalise_host
from socialguard.core.settings import DEFAULT_POLICY_PATH, Settings
from socialguard.files.catalog_file import embedded_catalog_path, load_catalog
from socialguard.files.policy_files import check_exists, load_settings

PROGRESS_THRESHOLD = 10_000
SHOWN = 20

CONFIG_OPTION = config_option(
    "IT's settings, for the extra catalogues and practice domains it lists "
    "(default: config/policy.yaml if present)."
)
JSON_OPTION = click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")


def _settings(config: Path | None) -> Settings:
    if config is not None:
        check_exists(config, "the policy file")
        return load_settings(config)[0]
    return load_settings(DEFAULT_POLICY_PATH if DEFAULT_POLICY_PATH.is_file() else None)[0]


def _catalog(config: Path | None, leave_out: Path | None = None) -> tuple[Catalog, Settings]:
    """The shipped catalogue, the extra files of policy.yaml (but `leave_out`) and never-block."""
    settings = _settings(config)
    paths = [
        p for p in settings.catalogs if leave_out is None or p.resolve() != leave_out.resolve()
    ]
    catalog, _ = load_catalog(paths, settings.practice.domains)
    return catalog, settings


@click.group(cls=CommandGroup, not_loaded="the catalogue was not loaded; fix these and try again:")
def catalog() -> None:
    """Look up, list, import and check the catalogue of services."""


def _describe(explanation: Explanation) -> dict[str, Any]:
    service = explanation.service
    return {
        "host": explanation.host,
        "service": service.id if service else None,
        "name": service.name if service else None,
        "category": service.category if service else None,
        "entry": explanation.entry,
        "kind": explanation.kind,
        "entry_file": explanation.entry_origin,
        "protected_by": explanation.protected_by,
        "protected_file": explanation.protected_origin,
        "left_out": explanation.left_out.domain if explanation.left_out else None,
        "left_out_why": explanation.left_out.why if explanation.left_out else None,
    }


def _sentence(explanation: Explanation) -> str:
    host = explanation.host
    service = explanation.service
    if explanation.protected_by is not None:
        where = f" ({explanation.protected_origin})" if explanation.protected_origin else ""
        return (
            f"{host}: never blocked — protected by the never-block entry "
            f"{explanation.protected_by}{where}"
        )
    if service is not None:
        kind = KIND_LABELS.get(explanation.kind or "domains", "domain")
        where = f" ({explanation.entry_origin})" if explanation.entry_origin else ""
        return (
            f"{host}: {service.id} ({service.name}), {service.category} — matched the "
            f"{kind} entry {explanation.entry}{where}"
        )
    if explanation.left_out is not None:
        return (
            f"{host}: not in the catalogue — {explanation.left_out.domain} is shared "
            f"infrastructure left out on purpose: {explanation.left_out.why}"
        )
    return f"{host}: not in the catalogue (not social media)"


@catalog.command()
@CONFIG_OPTION
@JSON_OPTION
@click.argument("hosts", nargs=-1, required=True)
def lookup(config: Path | None, as_json: bool, hosts: tuple[str, ...]) -> None:
    """Name the service, category and catalogue entry of each HOST (or what protects it)."""
    loaded, _ = _catalog(config)
    failed = False
    for raw in hosts:
        try:
            host = normalise_host(raw)
        except HostError as error:
            failed = True
            if as_json:
                click.echo(json.dumps({"host": raw, "error": error.reason}))
            else:
                click.echo(f"{raw}: not a host name — {error.reason}", err=True)
            continue
        if host.kind is HostKind.IP:
            if as_json:
                click.echo(json.dumps({"host": host.name, "ip": True}))
            else:
                click.echo(f"{host.name}: an IP address — no catalogue entry can name it")
            continue
        explanation = loaded.explain(host.name)
        click.echo(json.dumps(_describe(explanation)) if as_json else _sentence(explanation))
    if failed:
        sys.exit(1)


@catalog.command(name="list")
@CONFIG_OPTION
@JSON_OPTION
@click.option("--category", type=click.Choice(CATEGORIES), help="Only this category.")
@click.option(
    "--stale",
    type=click.IntRange(min=0),
    metavar="DAYS",
    help="Only services not reviewed for DAYS days (the policy is reviewed every year: 365).",
)
def list_services(
    config: Path | None, as_json: bool, category: str | None, stale: int | None
) -> None:
    """Print the services with their category and how many domains each has."""
    loaded, _ = _catalog(config)
    services = list(loaded.services.values())
    if stale is not None:
        keep = {s.id for s in loaded.stale(dt.datetime.now(dt.UTC).date(), stale)}
        services = [s for s in services if s.id in keep]
    if category is not None:
        services = [s for s in services if s.category == category]
    services.sort(key=lambda s: (CATEGORIES.index(s.category), s.id))
    if as_json:
        for s in services:
            reviewed = s.last_reviewed()
            click.echo(
                json.dumps(
                    {
                        "service": s.id,
                        "name": s.name,
                        "category": s.category,
                        "domains": len(s.domains),
                        "reviewed": reviewed.isoformat() if reviewed else None,
                    }
                )
            )
        return
    for s in services:
        reviewed = s.last_reviewed()
        when = reviewed.isoformat() if reviewed else "never reviewed"
        click.echo(f"{s.id:<22} {s.category:<20} {len(s.domains):>6} domains  {when:<14} {s.name}")
    click.echo(f"{len(services)} services")


def _some(items: list[str]) -> Iterable[str]:
    yield from items[:SHOWN]
    if len(items) > SHOWN:
        yield f"… and {len(items) - SHOWN} more"


@catalog.command()
@CONFIG_OPTION
@JSON_OPTION
def stats(config: Path | None, as_json: bool) -> None:
    """Report each file's size, and duplicates and overlaps between the files."""
    loaded, _ = _catalog(config)
    duplicates = [
        f"{d.domain}: {d.first_service} ({d.first_origin}) and again {d.service} ({d.origin})"
        for d in loaded.duplicates
    ]
    overlaps = [
        f"{o.domain} ({o.service}) is under {o.parent} ({o.parent_service}); the more "
        "specific entry wins"
        for o in loaded.overlaps()
    ]
    conflicts = [
        f"{entry} ({service}) against never-block {protected}: never-block wins"
        for entry, service, protected in loaded.never_block_conflicts()
    ]
    shared = [
        f"{entry} ({service}) blocks shared infrastructure {domain} whole"
        for entry, service, domain in loaded.left_out_conflicts()
    ]
    if as_json:
        click.echo(
            json.dumps(
                {
                    "files": {
                        f: {"services": c[0], "domains": c[1]} for f, c in loaded.files.items()
                    },
                    "services": len(loaded.services),
                    "never_block": len(loaded.never_block),
                    "duplicates": duplicates,
                    "overlaps": overlaps,
                    "never_block_conflicts": conflicts,
                    "shared_infrastructure_blocked": shared,
                },
                indent=2,
            )
        )
        return
    click.echo("files:")
    for name, (services, domains) in loaded.files.items():
        click.echo(f"  {name}: {services} services, {domains} domains")
    click.echo(
        f"{len(loaded.services)} services, {len(loaded.index) - len(loaded.never_block)} "
        f"domains in force, {len(loaded.never_block)} never-block domains"
    )
    for title, items in (
        ("duplicates (listed more than once)", duplicates),
        ("overlaps (one service's entry under another's)", overlaps),
        ("never-block conflicts", conflicts),
        ("shared infrastructure blocked whole", shared),
    ):
        click.echo(f"{title}: {len(items)}")
        for item in _some(items):
            click.echo(f"  {item}")


def _write_atomically(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(text)
        Path(temporary).replace(path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def _report(result: ImportResult) -> None:
    if not result.skipped:
        click.echo("skipped: nothing")
        return
    click.echo("skipped:")
    for reason, count in sorted(result.skipped.items(), key=lambda item: -item[1]):
        examples = result.examples.get(reason, [])
        shown = "; ".join((f"line {line}: {text}" if line else text) for line, text in examples[:3])
        click.echo(f"  {count:>9,}  {reason}" + (f"  (e.g. {shown})" if shown else ""))


def _sibling(file: Path, name: str) -> str | None:
    """The list a v2fly `include:` names: the file of that name beside FILE, or None."""
    other = file.parent / name
    if "/" in name or name.startswith(".") or not other.is_file():
        return None
    try:
        return other.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None


@catalog.command()
@CONFIG_OPTION
@JSON_OPTION
@click.argument("file", type=click.Path(path_type=Path, dir_okay=False))
def coverage(config: Path | None, as_json: bool, file: Path) -> None:
    """Measure the catalogue against FILE (host, tab, block or allow; one a line): recall and
    false positives."""
    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise Refusal(f"cannot read {file}: {error} — check the path") from None
    rows, problems = read_table(text)
    if problems:
        raise Refusal(
            f"{file} is not a coverage table; fix these and try again:",
            [f"{file}:{number}: {problem}" for number, problem in problems],
        )
    loaded, settings = _catalog(config)
    result = measure_coverage(loaded, rows, settings.enforced_categories)
    if as_json:
        click.echo(json.dumps(as_dict(result), indent=2))
        return
    click.echo("\n".join(summary_lines(result)))


@catalog.command(name="import")
@CONFIG_OPTION
@click.argument("file", type=click.Path(path_type=Path, dir_okay=False))
@click.option(
    "--category", required=True, type=click.Choice(CATEGORIES), help="The list's category."
)
@click.option(
    "--service",
    "service_id",
    help="Service id for the list (default: imported-<file name>); an existing id adds to it.",
)
@click.option("--name", help="The service's display name (default: the id).")
@click.option(
    "--format",
    "list_format",
    type=click.Choice([f.value for f in ListFormat]),
    help="hosts, domains, adblock or v2fly (default: guessed from the first lines).",
)
@click.option(
    "--out",
    type=click.Path(path_type=Path, dir_okay=False),
    help="The catalogue file to write (default: config/catalog-<service>.yaml).",
)
def import_(
    config: Path | None,
    file: Path,
    category: str,
    service_id: str | None,
    name: str | None,
    list_format: str | None,
    out: Path | None,
) -> None:
    """Turn a hosts file, domain list or ||domain^ rules into an extra catalogue file."""
    sid = service_id or service_id_for(file.stem)
    if not sid.replace("-", "").isalnum() or not sid.islower() or sid.startswith("-"):
        raise click.BadParameter(
            f"{sid!r}: ids are lower case letters, digits and hyphens", param_hint="--service"
        )
    target = out or Path("config") / f"catalog-{sid}.yaml"
    if target.resolve() == embedded_catalog_path().resolve():
        raise Refusal(f"{target} is the shipped catalogue; write imports to their own file (--out)")
    try:
        text = file.read_bytes().decode("utf-8", errors="replace")
    except OSError as error:
        raise Refusal(f"cannot read {file}: {error.strerror or error} — check the path") from None
    loaded, settings = _catalog(config, leave_out=target)
    existing = loaded.services.get(sid)
    if existing is not None and existing.category != category:
        raise Refusal(
            f"service {sid!r} is already in category {existing.category!r}; import with "
            f"--category {existing.category} or choose another --service"
        )
    lines = text.splitlines()
    chosen = ListFormat(list_format) if list_format else detect_format(lines[:200])
    if chosen is ListFormat.V2FLY:
        result = import_v2fly(
            text, name=file.name, include=lambda name: _sibling(file, name), catalog=loaded
        )
    elif len(lines) > PROGRESS_THRESHOLD:
        with click.progressbar(
            lines, label=f"Reading {file.name}", file=sys.stderr, show_pos=True
        ) as bar:
            result = import_list(bar, chosen, loaded)
    else:
        result = import_list(lines, chosen, loaded)
    if not result.domains:
        click.echo(f"nothing to import from {file}: every line was skipped", err=True)
        _report(result)
        sys.exit(1)
    _write_atomically(
        target,
        render_catalog(
            result,
            service_id=sid,
            name=name or (existing.name if existing else sid),
            category=category,
            source=file.name,
            today=dt.datetime.now(dt.UTC).date(),
        ),
    )
    click.echo(
        f"imported {len(result.domains):,} domains and {len(result.exact):,} exact hosts from "
        f"{file} ({chosen} format, "
        f"{result.lines:,} lines) as service {sid} ({category}) into {target}"
    )
    _report(result)
    if any(p.resolve() == target.resolve() for p in settings.catalogs):
        click.echo("policy.yaml already lists it under catalogs:; reload or restart to apply")
    else:
        click.echo(f"to use it, add it to config/policy.yaml:  catalogs: [{target}]")
