"""`socialguard audit verify|search|report` through click's runner: output, exit codes, and
bad input as a message (file, fix) with exit 1, never a traceback."""

from __future__ import annotations

import csv
import datetime as dt
import gzip
import io
import itertools
import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from socialguard.audit.log import AuditLog, AuditOptions, load_hmac_key
from socialguard.cli import audit as cli_audit
from socialguard.cli.app import main

T0 = dt.datetime(2026, 11, 24, 9, 0, tzinfo=dt.UTC)


def write(path: Path, count: int, key: bytes | None = None) -> None:
    now = [T0]
    numbers = itertools.count(1)
    log = AuditLog(
        path,
        clock=lambda: now[0],
        new_id=lambda: f"SG-C{next(numbers):07d}",
        options=AuditOptions(hmac_key=key),
    )
    for n in range(count):
        now[0] = T0 + dt.timedelta(hours=n)
        user = "j.smith" if n % 2 else "k.jones"
        log.record("access.blocked", {"user": user, "service": "facebook", "host": "fb.com"})
    log.close()


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A practice folder with var/audit.jsonl, so the defaults find the log."""
    monkeypatch.chdir(tmp_path)
    write(tmp_path / "var" / "audit.jsonl", 6)
    return tmp_path


def run(*args: str) -> Result:
    return CliRunner().invoke(main, ["audit", *args], catch_exceptions=False)


def test_verify_default_log_ok(home: Path) -> None:
    """With no path, verify reads the log policy.yaml names and says OK with count and span."""
    result = run("verify")
    assert result.exit_code == 0, result.output
    assert result.output.startswith("OK: 6 events in 1 file, 2026-11-24T09:00:00.000Z to ")
    assert "the chain holds" in result.output


def test_verify_broken_log_exits_1_naming_the_line(home: Path) -> None:
    """A deleted line: exit 1, the file and line, and the kind of break."""
    path = home / "var" / "audit.jsonl"
    lines = path.read_bytes().split(b"\n")
    del lines[2]
    path.write_bytes(b"\n".join(lines))
    result = run("verify", str(path))
    assert result.exit_code == 1
    assert "audit.jsonl:3: removed: 1 line (seq 3) removed" in result.output


def test_verify_json(home: Path) -> None:
    """--json gives one object a script can read."""
    result = run("verify", "--json")
    verdict = json.loads(result.output)
    assert verdict["ok"] is True
    assert verdict["events"] == 6
    assert verdict["problem"] is None


def test_verify_uses_the_key_from_policy_yaml(home: Path) -> None:
    """audit.hmac_key_file in policy.yaml is used; a forged HMAC then fails."""
    key_file = home / "audit.key"
    key_file.write_text("a-key-of-sufficient-length-0123456789\n")
    (home / "config").mkdir()
    (home / "config" / "policy.yaml").write_text(f"audit:\n  hmac_key_file: {key_file}\n")
    keyed = home / "keyed.jsonl"
    write(keyed, 3, key=load_hmac_key(key_file))
    assert run("verify", str(keyed)).exit_code == 0
    assert "HMAC checked" in run("verify", str(keyed)).output
    data = keyed.read_bytes().replace(b"k.jones", b"k.jonas", 1)
    keyed.write_bytes(data)
    result = run("verify", str(keyed))
    assert result.exit_code == 1
    assert "keyed.jsonl:1: forged" in result.output


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["verify", "nope.jsonl"], "nope.jsonl: no such file"),
        (["verify", "--key-file", "missing.key"], "missing.key: the audit HMAC key file does not"),
        (["report", "--month", "November"], "--month 'November': write the month as YYYY-MM"),
        (["search", "--from", "last week"], "--from 'last week': write a date like 24/11/2026"),
        (["search", "--audit-log", "elsewhere/a.jsonl"], "elsewhere/a.jsonl: no audit log here"),
    ],
)
def test_bad_input_is_a_message_and_exit_1(home: Path, args: list[str], words: str) -> None:
    """Bad paths, keys, months and dates: one message with the fix, exit 1, no traceback."""
    result = CliRunner().invoke(main, ["audit", *args])
    assert result.exit_code == 1, result.output
    assert words in result.output
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_corrupt_gzip_is_a_message(home: Path) -> None:
    """A damaged rotated file is named, with what to do."""
    (home / "var" / "audit.2026-11-23.jsonl.gz").write_bytes(gzip.compress(b"x\n")[:-6])
    result = CliRunner().invoke(main, ["audit", "verify"])
    assert result.exit_code == 1
    assert "audit.2026-11-23.jsonl.gz: the compressed file is damaged" in result.output
    assert "restore it from backup" in result.output


def test_bad_policy_yaml_is_a_message(home: Path) -> None:
    """An invalid audit section stops the command with the file, line and fix."""
    (home / "bad.yaml").write_text("audit:\n  rotate: weekly\n")
    result = CliRunner().invoke(main, ["audit", "verify", "--config", "bad.yaml"])
    assert result.exit_code == 1
    assert "bad.yaml:2: audit.rotate: must be 'daily'" in result.output


def test_search_text_and_json(home: Path) -> None:
    """search prints matching events oldest first; --json prints the stored lines."""
    result = run("search", "--user", "j.smith")
    assert result.exit_code == 0
    lines = [ln for ln in result.output.splitlines() if "access.blocked" in ln]
    assert len(lines) == 3
    assert all("user=j.smith" in ln for ln in lines)
    stored = (home / "var" / "audit.jsonl").read_text().splitlines()
    as_json = run("search", "--user", "j.smith", "--json").output.splitlines()
    assert as_json == [ln for ln in stored if '"user":"j.smith"' in ln]


def test_search_by_time(home: Path) -> None:
    """--from and --to select by time, in the practice's time zone."""
    result = run("search", "--from", "2026-11-24T10:00", "--to", "2026-11-24T11:30", "--json")
    hours = [json.loads(ln)["ts"][11:13] for ln in result.output.splitlines()]
    assert hours == ["10", "11"]


@pytest.mark.parametrize("fmt", ["text", "csv", "html"])
def test_report_formats_to_a_file(home: Path, fmt: str) -> None:
    """report --format F --out FILE writes the month's summary there."""
    out = home / f"november.{fmt}"
    result = run("report", "--month", "2026-11", "--format", fmt, "--out", str(out))
    assert result.exit_code == 0, result.output
    text = out.read_text()
    if fmt == "csv":
        rows = list(csv.DictReader(io.StringIO(text)))
        assert {r["service"]: r["count"] for r in rows if r["section"] == "total"}["blocks"] == "6"
    elif fmt == "html":
        assert "<svg" in text
        assert "November 2026" in text
    else:
        assert "Blocked attempts:            6" in text


def test_a_month_the_log_does_not_cover_says_so_instead_of_zeros(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Before the log's first event, or days still to come, are "not covered", never 0; a
    covered month with no events is a true zero."""
    monkeypatch.setattr(cli_audit, "local_today", lambda _tz: dt.date(2026, 12, 10))
    before = run("report", "--month", "2026-01")
    assert before.exit_code == 0
    assert (
        "The audit log does not cover this period: its first event is on 24 November 2026"
        in before.output
    )
    assert "Blocked attempts" not in before.output
    future = run("report", "--month", "2027-03").output
    assert "This period has not begun: today is 10 December 2026." in future
    assert "Blocked attempts" not in future
    december = run("report", "--month", "2026-12").output
    assert "Blocked attempts:            0" in december
    assert "Not covered: the days after 10 December 2026, which are still to come." in december
    november = run("report", "--month", "2026-11").output
    assert "Not covered: the days before 24 November 2026" in november
    rows = list(csv.DictReader(io.StringIO(run("report", "--month", "2026-01", "--format",
                                               "csv").output)))  # fmt: skip
    assert {r["count"] for r in rows if r["section"] == "total"} == {""}
    html = run("report", "--month", "2026-11", "--format", "html").output
    assert "not covered by the log" in html


def test_a_report_for_any_period_names_services_as_people_know_them(home: Path) -> None:
    """--from/--to for the review after an incident; "Facebook", not facebook."""
    result = run("report", "--from", "24/11/2026", "--to", "24 November 2026")
    assert result.exit_code == 0, result.output
    assert result.output.startswith("Social media on the practice network: 2026-11-24 to "
                                    "2026-11-24")  # fmt: skip
    assert "Blocked attempts:            6" in result.output
    assert "  Facebook  6" in result.output
    html = run("report", "--from", "2026-11-24", "--to", "2026-11-25", "--format", "html").output
    assert "24 November 2026 to 25 November 2026" in html
    for args, message in (
        (["--from", "2026-11-24"], "needs both --from DATE and --to DATE"),
        (["--month", "2026-11", "--from", "2026-11-24", "--to", "2026-11-25"], "give --month"),
        (["--from", "24/11/2026", "--to", "tomorrow"], "'tomorrow' is not a date"),
    ):
        bad = CliRunner().invoke(main, ["audit", "report", *args])
        assert bad.exit_code == 2, bad.output
        assert message in bad.output
    backwards = CliRunner().invoke(main, ["audit", "report", "--from", "25/11/2026", "--to",
                                          "24/11/2026"])  # fmt: skip
    assert backwards.exit_code == 1
    assert "is before --from" in backwards.output


def test_verify_expect_head(home: Path) -> None:
    """The head verify prints is what --expect-head takes; once the last lines are removed
    the log still chains, but that head is missing: exit 1, kind head_missing."""
    path = home / "var" / "audit.jsonl"
    head = run("verify").output.rsplit("Head ", 1)[1].strip()
    result = run("verify", "--expect-head", head.upper())
    assert result.exit_code == 0, result.output
    assert "still holds the head given" in result.output
    path.write_bytes(b"".join(path.read_bytes().splitlines(keepends=True)[:-2]))
    assert run("verify").exit_code == 0
    result = run("verify", "--expect-head", head)
    assert result.exit_code == 1
    assert "audit.jsonl:4: head_missing:" in result.output
    bad = CliRunner().invoke(main, ["audit", "verify", "--expect-head", "abc"])
    assert bad.exit_code == 1
    assert "--expect-head 'abc': give the 64 hex digits" in bad.output


def test_verify_expect_head_once_per_chain(home: Path) -> None:
    """After `run --workers 2`, verify prints each chain's head; --expect-head takes one per
    chain, so lines removed from the end of worker 2's chain are caught even when worker 1's
    head comes first, and a chain given no head is named in a note."""
    (home / "var" / "audit.jsonl").unlink()
    workers = [Path("var/audit.w1.jsonl"), Path("var/audit.w2.jsonl")]  # as the default names
    for worker in workers:
        write(worker, 4)
    listed = run("verify").output.splitlines()
    assert listed[0] == "2 chains (one per worker), read as one record:"
    heads = [line.rsplit(" head ", 1)[1] for line in listed[1:3]]
    assert [line.split(": head ")[0].strip() for line in listed[1:3]] == [str(w) for w in workers]
    both = ["--expect-head", heads[0], "--expect-head", heads[1].upper()]
    result = run("verify", *both)
    assert result.exit_code == 0, result.output
    assert "every chain holds, and each of the 2 heads given is in a chain of its own." in (
        result.output
    )
    assert "note:" not in result.output
    workers[1].write_bytes(b"".join(workers[1].read_bytes().splitlines(keepends=True)[:-1]))
    one = run("verify", "--expect-head", heads[0])
    assert one.exit_code == 0, one.output
    assert f"note: {workers[1]}: no --expect-head was given for this chain, so lines removed " in (
        one.output
    )
    caught = run("verify", *both)
    assert caught.exit_code == 1
    assert f"{workers[1]}:3: head_missing: the line whose hash is {heads[1]} (head 2 of 2" in (
        caught.output
    )
    verdict = json.loads(run("verify", "--json", *both).output)
    assert verdict["ok"] is False
    assert verdict["expected_heads"] == heads
    assert verdict["problem"]["kind"] == "head_missing"
    bad = CliRunner().invoke(main, ["audit", "verify", "--expect-head", heads[0],
                                    "--expect-head", "xyz"])  # fmt: skip
    assert bad.exit_code == 1
    assert "--expect-head 'xyz': give the 64 hex digits" in bad.output


def test_verify_without_the_key_file_says_get_the_original(home: Path) -> None:
    """A missing key file when verifying: never advise making a new key (every signed line
    would then look forged); say get the original, or check the chain only with --no-key."""
    (home / "config").mkdir()
    (home / "config" / "policy.yaml").write_text(f"audit:\n  hmac_key_file: {home}/gone.key\n")
    result = CliRunner().invoke(main, ["audit", "verify"])
    assert result.exit_code == 1
    assert "gone.key: the audit HMAC key file does not exist" in result.output
    assert "get the original key" in result.output
    assert "--no-key" in result.output
    assert "head -c 32" not in result.output
    result = run("verify", "--no-key")
    assert result.exit_code == 0, result.output
    assert "HMAC checked" not in result.output
    both = CliRunner().invoke(main, ["audit", "verify", "--no-key", "--key-file", "k"])
    assert both.exit_code == 1
    assert "give one or the other" in both.output


def test_verify_a_folder_of_only_gzipped_files(home: Path) -> None:
    """An archive folder holding only rotated, gzipped files verifies."""
    archive = home / "archive"
    archive.mkdir()
    log = home / "var" / "audit.jsonl"
    (archive / "audit.2026-11-24.jsonl.gz").write_bytes(gzip.compress(log.read_bytes()))
    result = run("verify", str(archive))
    assert result.exit_code == 0, result.output
    assert result.output.startswith("OK: 6 events in 1 file")


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["report", "--month", "9999-12"], "--month '9999-12': out of range"),
        (["search", "--to", "9999-12-31"], "--to '9999-12-31': out of range"),
    ],
)
def test_dates_past_the_calendar_exit_1_without_a_traceback(
    home: Path, args: list[str], words: str
) -> None:
    """The end of year 9999 is past Python's calendar: a message and exit 1."""
    result = CliRunner().invoke(main, ["audit", *args])
    assert result.exit_code == 1, result.output
    assert words in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_search_by_reference_host_address_device_and_service_name(tmp_path: Path) -> None:
    """An auditor finds a block by the reference on its page, and by host (and the names under
    it), address, device and the service as people name it."""
    path = tmp_path / "audit.jsonl"
    numbers = itertools.count(1)
    log = AuditLog(path, clock=lambda: T0, new_id=lambda: f"SG-D{next(numbers):07d}")
    log.record("access.blocked", {"user": "anonymous", "client_ip": "10.20.0.14",
                                  "device": "reception-pc-1", "service": "instagram",
                                  "host": "www.instagram.com"})  # fmt: skip
    log.record("access.blocked", {"user": "k.jones", "client_ip": "10.20.0.15", "device": None,
                                  "service": "facebook", "host": "facebook.com"})  # fmt: skip
    log.close()

    def ids(*args: str) -> list[str]:
        result = run("search", "--audit-log", str(path), "--json", *args)
        assert result.exit_code == 0, result.output
        return [json.loads(line)["id"] for line in result.output.splitlines()]

    assert ids("--id", "SG-D0000002") == ["SG-D0000002"]
    assert ids("--id", "sg-d0000001") == ["SG-D0000001"]
    assert ids("--host", "instagram.com") == ["SG-D0000001"]
    assert ids("--host", "FACEBOOK.COM") == ["SG-D0000002"]
    assert ids("--host", "book.com") == []  # a suffix of the name, not a name under it
    assert ids("--address", "10.20.0.15") == ["SG-D0000002"]
    assert ids("--address", "::ffff:10.20.0.14") == ["SG-D0000001"]
    assert ids("--device", "reception-pc-1") == ["SG-D0000001"]
    assert ids("--service", "Instagram") == ["SG-D0000001"]
    bad = CliRunner().invoke(main, ["audit", "search", "--audit-log", str(path), "--address", "x"])
    assert bad.exit_code == 2
    assert "'x' is not an IP address" in bad.output


def test_report_out_replaces_a_planted_link_instead_of_following_it(home: Path) -> None:
    """`--out` at a symlink (say, planted in a shared folder) never writes where it points."""
    victim = home / "victim.txt"
    victim.write_text("precious\n")
    out = home / "report.csv"
    out.symlink_to(victim)
    result = run("report", "--month", "2026-11", "--format", "csv", "--out", str(out))
    assert result.exit_code == 0, result.output
    assert victim.read_text() == "precious\n"
    assert not out.is_symlink()
    assert out.read_text().startswith("section,")


def test_report_out_into_a_missing_folder_is_a_message(home: Path) -> None:
    result = CliRunner().invoke(
        main, ["audit", "report", "--month", "2026-11", "--out", "nowhere/r.txt"]
    )
    assert result.exit_code == 1
    assert "nowhere" in result.output
    assert "Traceback" not in result.output


def test_csv_report_cells_never_start_a_formula(home: Path) -> None:
    """Hosts, services and purposes written by clients come back as text, cell by cell."""
    log = AuditLog(home / "var" / "audit.jsonl", clock=lambda: T0 + dt.timedelta(days=1))
    for hostile in ('=HYPERLINK("http://x","y")', "+1+1", "-2+3", "@SUM(1+1)*cmd", "\tx", "\rx"):
        log.record("access.blocked", {"user": "k.jones", "service": hostile, "host": hostile})
    log.record(
        "access.exception",
        {"user": "=cmd|' /C calc'!A0", "service": "facebook", "exemption_id": "EX-1",
         "purpose": "-line one\nline two"},
    )  # fmt: skip
    log.close()
    out = home / "r.csv"
    result = run("report", "--month", "2026-11", "--format", "csv", "--out", str(out))
    assert result.exit_code == 0, result.output
    with out.open(newline="") as stream:
        rows = list(csv.reader(stream))
    assert rows[0][0] == "section"
    cells = [cell for row in rows for cell in row]
    for cell in cells:
        assert not cell.startswith(("=", "+", "-", "@", "\t", "\r")), cell
        assert "\n" not in cell, cell
    assert '\'=HYPERLINK("http://x","y")' in cells
    assert "'@SUM(1+1)*cmd" in cells
    assert "'-line one\\x0aline two" in cells
