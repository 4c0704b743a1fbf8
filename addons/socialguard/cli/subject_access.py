"""`socialguard audit export`: a member of staff's subject access request, answered from the log.

The export is itself recorded (`audit.exported`: who ran it, for whom, how many events) in the
exports log, in a folder of its own beside the proxy's audit log (`exports/exports.jsonl`: its
own hash chain, since the proxy's log keeps a single writer and a folder holds one log).
"""

from __future__ import annotations

import contextlib
import fcntl
import getpass
import json
import os
from collections.abc import Iterator
from pathlib import Path

import click

from socialguard.audit.export import Export, Subject, export_events
from socialguard.audit.log import AuditLog, audit_options
from socialguard.audit.search import parse_bound
from socialguard.cli.audit import AUDIT_LOG_OPTION, CONFIG_OPTION, _segments, _settings, audit
from socialguard.cli.common import Refusal
from socialguard.core.events import Event
from socialguard.files.output import OutputError, write_file
from socialguard.templates import environment

EXPORTS_LOG = Path("exports") / "exports.jsonl"


def operator() -> str:
    """Who ran the command: the system account, and the account behind sudo where there is one."""
    user = getpass.getuser()
    sudo = os.environ.get("SUDO_USER")
    return f"{user} (via sudo from {sudo})" if sudo and sudo != user else user


@contextlib.contextmanager
def _exports_log(path: Path, options: object) -> Iterator[AuditLog]:
    """The exports log, one writer at a time (an exclusive lock beside it)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(path.name + ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        log = AuditLog(path, options=options)  # type: ignore[arg-type]
        try:
            yield log
        finally:
            log.close()


def render_html(export: Export, practice: str) -> str:
    return (
        environment().get_template("export.html").render(export=export.as_json(), practice=practice)
    )


@audit.command("export")
@CONFIG_OPTION
@AUDIT_LOG_OPTION
@click.option("--user", help="The person's proxy sign-in name.")
@click.option("--device", help="A named device (policy.yaml devices:), for a person known by it.")
@click.option("--ip", help="A device's address, for a person known by it.")
@click.option("--from", "since", help="From this day (2026-11-01), the practice's time.")
@click.option("--to", "until", help="To the end of this day (2026-11-30).")
@click.option(
    "--format", "fmt", type=click.Choice(["json", "html"]), default="json", show_default=True
)
@click.option(
    "--out",
    required=True,
    type=click.Path(path_type=Path, dir_okay=False),
    help="The file to write the export to (written new, then renamed into place).",
)
def export(
    config: Path | None,
    audit_log: Path | None,
    user: str | None,
    device: str | None,
    ip: str | None,
    since: str | None,
    until: str | None,
    fmt: str,
    out: Path,
) -> None:
    """Every event about one person, for a subject access request (UK GDPR Art. 15).

    Reads the active and rotated (gzipped) files; other people named in an event are shown by
    role. The export is recorded as audit.exported in exports/exports.jsonl beside the log.
    """
    if not (user or device or ip):
        raise click.UsageError("say whose events to export: --user, --device or --ip")
    settings = _settings(config)
    tz = settings.timezone
    subject = Subject(user=user, device=device, ip=ip)
    found = export_events(
        _segments(audit_log, settings),
        subject,
        since=parse_bound(since, tz, end=False, option="--from") if since else None,
        until=parse_bound(until, tz, end=True, option="--to") if until else None,
    )
    text = (
        render_html(found, settings.practice.name)
        if fmt == "html"
        else json.dumps(found.as_json(), indent=2, ensure_ascii=False) + "\n"
    )
    try:
        # Personal data: readable by the account that made it (and its group) only.
        write_file(out, text.encode("utf-8"), mode=0o640)
    except OutputError as error:
        raise Refusal(str(error)) from None
    active = audit_log or settings.audit_path
    exports = active.parent / EXPORTS_LOG
    try:
        with _exports_log(exports, audit_options(settings)) as log:
            log.record(
                Event.AUDIT_EXPORTED,
                {
                    "by": operator(),
                    "subject": subject.describe(),
                    "events": len(found.events),
                    "from": since,
                    "to": until,
                    "first_seq": found.first_seq,
                    "last_seq": found.last_seq,
                    "head": found.head,
                },
            )
    except OSError as error:
        raise Refusal(
            f"the export was written to {out}, but recording it in {exports} failed: "
            f"{error.strerror or error} — check that folder's permissions"
        ) from None
    click.echo(
        f"{len(found.events)} events about {subject.describe()} written to {out}; "
        f"recorded in {exports}",
        err=True,
    )
