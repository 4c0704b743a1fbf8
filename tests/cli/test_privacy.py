"""`socialguard privacy notice|record` and `audit export`, as a user runs them."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from socialguard.audit.files import log_segments
from socialguard.audit.log import AuditLog
from socialguard.audit.verify import verify
from socialguard.cli.app import main


def run(*args: str) -> Any:
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


@pytest.fixture
def policy(tmp_path: Path) -> Path:
    path = tmp_path / "policy.yaml"
    path.write_text("audit:\n  retention_days: 120\n", encoding="utf-8")
    return path


@pytest.fixture
def log(tmp_path: Path) -> Path:
    path = tmp_path / "var" / "audit.jsonl"
    path.parent.mkdir()
    writer = AuditLog(path, clock=lambda: dt.datetime(2026, 11, 24, 10, tzinfo=dt.UTC))
    for user, service in (("ann.lee", "tiktok"), ("bob.ray", "reddit"), ("ann.lee", "pinterest")):
        writer.record("access.blocked", {"user": user, "service": service, "client_ip": "10.0.0.7"})
    writer.close()
    return path


def test_notice_prints_the_retention_in_force(policy: Path) -> None:
    """`privacy notice --config` is written from that file: 120 days, not the default."""
    result = run("privacy", "notice", "--config", str(policy))
    assert result.exit_code == 0, result.output
    assert "120 days" in result.output
    assert "396" not in result.output


def test_record_prints_and_html_is_one_page(policy: Path) -> None:
    """The record of processing prints; --format html gives one page with no script."""
    result = run("privacy", "record", "--config", str(policy))
    assert result.exit_code == 0, result.output
    assert "Security measures" in result.output
    html = run("privacy", "notice", "--config", str(policy), "--format", "html").output
    assert html.startswith("<!DOCTYPE html>")
    assert "<script" not in html
    assert "120 days" in html


def test_a_missing_policy_file_is_refused(tmp_path: Path) -> None:
    """A --config that is not there is named, exit 1, no traceback."""
    result = run("privacy", "notice", "--config", str(tmp_path / "nope.yaml"))
    assert result.exit_code == 1
    assert "nope.yaml" in result.output


def test_export_writes_one_persons_events_and_records_itself(
    policy: Path, log: Path, tmp_path: Path
) -> None:
    """The export holds ann.lee's events only; audit.exported lands in its own verified chain."""
    out = tmp_path / "sar.json"
    result = run(
        "audit", "export", "--user", "ann.lee", "--config", str(policy),
        "--audit-log", str(log), "--out", str(out),
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    export = json.loads(out.read_text(encoding="utf-8"))
    assert export["count"] == 2
    assert {e["service"] for e in export["events"]} == {"tiktok", "pinterest"}
    assert "bob.ray" not in out.read_text(encoding="utf-8")
    exports = log.parent / "exports" / "exports.jsonl"
    [recorded] = [json.loads(x) for x in exports.read_text(encoding="utf-8").splitlines()]
    assert recorded["event"] == "audit.exported"
    assert (recorded["subject"], recorded["events"]) == ("user ann.lee", 2)
    assert recorded["by"]
    assert verify(log_segments(exports)).ok
    assert verify(log_segments(log)).ok  # the proxy's own log was not written to
    folder = run("audit", "verify", str(log.parent))  # one log a folder: the exports are apart
    assert folder.exit_code == 0, folder.output


def test_export_replaces_a_planted_link_instead_of_following_it(
    policy: Path, log: Path, tmp_path: Path
) -> None:
    """A symlink at --out is replaced by the export; what it pointed to is untouched."""
    target = tmp_path / "precious.txt"
    target.write_text("keep me", encoding="utf-8")
    out = tmp_path / "sar.json"
    out.symlink_to(target)
    result = run(
        "audit", "export", "--user", "ann.lee", "--config", str(policy),
        "--audit-log", str(log), "--out", str(out),
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert target.read_text(encoding="utf-8") == "keep me"
    assert not out.is_symlink()
    assert json.loads(out.read_text(encoding="utf-8"))["count"] == 2


def test_export_needs_to_know_whose_events(policy: Path, log: Path, tmp_path: Path) -> None:
    """Without --user, --device or --ip it is a usage error (exit 2)."""
    result = run("audit", "export", "--audit-log", str(log), "--out", str(tmp_path / "x.json"))
    assert result.exit_code == 2
    assert "--user, --device or --ip" in result.output


def test_notice_and_export_pages_pass_axe_in_chromium(
    policy: Path, log: Path, tmp_path: Path
) -> None:
    """The notice and the HTML export render in Chromium with no axe-core violation."""
    from tests.proxy.test_browser import CHROMIUM, WCAG_TAGS, axe_script, sync_api  # noqa: PLC0415

    if not CHROMIUM.exists():
        pytest.skip("Debian's chromium is not installed: run .ci/install-system-packages")
    notice = tmp_path / "notice.html"
    notice.write_text(
        run("privacy", "notice", "--config", str(policy), "--format", "html").output,
        encoding="utf-8",
    )
    export = tmp_path / "sar.html"
    result = run(
        "audit", "export", "--user", "ann.lee", "--config", str(policy),
        "--audit-log", str(log), "--format", "html", "--out", str(export),
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM),
            headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        try:
            page = browser.new_page()
            for path in (notice, export):
                page.goto(path.as_uri())
                page.screenshot(path=str(path.with_suffix(".png")), full_page=True)
                page.add_script_tag(path=str(axe_script()))
                found = page.evaluate(
                    "tags => axe.run(document, {runOnly: {type: 'tag', values: tags}})",
                    WCAG_TAGS,
                )
                assert [(v["id"], v["help"]) for v in found["violations"]] == []
                assert len(found["passes"]) > 5
        finally:
            browser.close()
