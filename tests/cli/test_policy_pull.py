"""`socialguard policy pull`: a practice's policy from a shared git repository, applied only
when the merged result passes validation; a bad commit leaves the last good policy in force and
is recorded, with why, in the pull log's own chain."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from click.testing import CliRunner

from socialguard.audit.files import log_segments
from socialguard.audit.verify import verify
from socialguard.cli import main

SHARED = """\
enforced_categories: [social-networking, multimedia-sharing]
practice: {contact: "the PCN's IT team"}
"""
SITE = """\
site: riverside
practice: {name: Riverside Surgery}
groups:
  reception: [a.brown]
"""
SITE_EXEMPTIONS = """\
approvers: [practice.manager]
exemptions:
  - id: EX-1
    who: {group: reception}
    services: [youtube]
    purpose: Play the practice's patient information videos
    approved_by: practice.manager
    approved_on: 2026-11-01
    expires: 2027-10-31
"""


def git(repo: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-c", "user.name=IT", "-c", "user.email=it@example.invalid", *args],
        cwd=repo, check=True, capture_output=True, timeout=30,
    )  # fmt: skip


def commit(repo: Path, files: dict[str, str], message: str) -> None:
    for name, text in files.items():
        (repo / name).parent.mkdir(parents=True, exist_ok=True)
        (repo / name).write_text(text)
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", message)


def pull(gateway: Path, repo: Path) -> tuple[int, str]:
    result = CliRunner().invoke(
        main,
        [
            "policy", "pull", "--repo", str(repo), "--site", "riverside",
            "--config", str(gateway / "config/policy.yaml"),
            "--authorisations", str(gateway / "allowlists/authorisations.yaml"),
            "--checkout", str(gateway / "var/policy-repo"),
            "--audit-log", str(gateway / "var/audit.jsonl"),
        ],
    )  # fmt: skip
    return result.exit_code, result.output


def test_good_commit_applied_bad_commit_refused_and_recorded(tmp_path: Path) -> None:
    repo, gateway = tmp_path / "policy-repo", tmp_path / "gateway"
    repo.mkdir()
    gateway.mkdir()
    git(repo, "init", "-q", "-b", "main")
    commit(
        repo,
        {
            "shared/policy.yaml": SHARED,
            "sites/riverside/policy.yaml": SITE,
            "sites/riverside/authorisations.yaml": SITE_EXEMPTIONS,
            "sites/hillside/policy.yaml": "site: hillside\n",
        },
        "riverside joins",
    )
    code, output = pull(gateway, repo)
    assert code == 0, output
    assert "applied" in output
    applied = (gateway / "config/policy.yaml").read_text()
    assert "riverside" in applied
    assert "the PCN's IT team" in applied
    assert "EX-1" in (gateway / "allowlists/authorisations.yaml").read_text()
    # Same commit again: nothing to do, nothing recorded.
    code, output = pull(gateway, repo)
    assert code == 0
    assert "unchanged" in output
    # A bad commit: an exemption naming a group the practice does not have.
    commit(
        repo,
        {"sites/riverside/authorisations.yaml": SITE_EXEMPTIONS.replace("reception", "recepton")},
        "typo",
    )
    code, output = pull(gateway, repo)
    assert code == 1
    assert "refused" in output
    assert "recepton" in output
    assert (gateway / "config/policy.yaml").read_text() == applied  # the last good stays
    assert "reception" in (gateway / "allowlists/authorisations.yaml").read_text()
    check = CliRunner().invoke(
        main,
        ["validate", "--config", str(gateway / "config/policy.yaml"),
         "--authorisations", str(gateway / "allowlists/authorisations.yaml")],
    )  # fmt: skip
    assert check.exit_code == 0, check.output
    pull_log = gateway / "var/policy-pull.jsonl"
    events = [json.loads(line) for line in pull_log.read_text().splitlines()]
    assert [e["event"] for e in events] == ["policy.pulled", "policy.pull_rejected"]
    assert any("recepton" in error for error in events[1]["errors"])
    assert events[1]["site"] == "riverside"  # the gateway's site, stamped by the writer
    assert verify(log_segments(pull_log)).ok
    # The fix is applied on the next pull.
    commit(repo, {"sites/riverside/authorisations.yaml": SITE_EXEMPTIONS}, "fix the typo")
    assert pull(gateway, repo)[0] == 0


def test_unknown_site_is_refused(tmp_path: Path) -> None:
    repo, gateway = tmp_path / "repo", tmp_path / "gw"
    repo.mkdir()
    gateway.mkdir()
    git(repo, "init", "-q", "-b", "main")
    commit(repo, {"sites/hillside/policy.yaml": "site: hillside\n"}, "one site")
    code, output = pull(gateway, repo)
    assert code == 1
    assert "riverside" in output
    assert "hillside" in output
    assert not (gateway / "config/policy.yaml").exists()
