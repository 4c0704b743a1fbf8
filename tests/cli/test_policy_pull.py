"""`socialguard policy pull`: a practice's policy from a shared git repository, applied only
when the merged result passes validation; a bad commit leaves the last good policy in force and
is recorded, with why, in the pull log's own chain."""

from __future__ import annotations

import json
import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
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


def _has_user(name: str) -> bool:
    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True


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


LOCAL_LIST = """\
# Kept by the Practice Manager on the page: the pull must leave every byte of it.
approvers: [practice.manager]
exemptions:
  - id: EX-2026-007
    who: {group: reception}
    services: [facebook]
    purpose: Answer patients' messages on the practice page
    approved_by: practice.manager
    approved_on: 2026-11-02
    expires: 2027-11-01
"""

SIGNUP = """\
signup_guard:
  hosts: [riversidesupplies.co.uk]
  endpoints: signup-endpoints.yaml
"""
ENDPOINTS = """\
sites:
  riverside-supplies:
    name: Riverside Medical Supplies
    hosts: [riversidesupplies.co.uk]
    checked: 2026-11-20
    how: the trade account form, seen by the practice manager
    registration: [/trade/apply]
"""


def installed_gateway(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An installed layout under a root of its own (never the real /etc), found the way the
    proxy finds it: no --config, no $SOCIALGUARD_CONFIG, no config/ in the current directory."""
    root = tmp_path / "root"
    etc = root / "etc/socialguard"
    (etc / "allowlists").mkdir(parents=True)
    (etc / "policy.yaml").write_text("# as install.sh left it\nsite: riverside\n")
    (etc / "allowlists/authorisations.yaml").write_text(LOCAL_LIST)
    monkeypatch.setenv("SOCIALGUARD_ROOT", str(root))
    monkeypatch.delenv("SOCIALGUARD_CONFIG", raising=False)
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    return root


def installed_pull(repo: Path) -> tuple[int, str]:
    """`policy pull` as the unit runs it: the repository and the site, nothing else."""
    result = CliRunner().invoke(
        main, ["policy", "pull", "--repo", str(repo), "--site", "riverside"]
    )
    return result.exit_code, result.output


def test_an_installed_gateway_pulls_into_etc_and_keeps_its_own_list(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Installed, the pull finds /etc/socialguard by itself and replaces policy.yaml there; a
    repository without sites/riverside/authorisations.yaml leaves the practice's list byte for
    byte (shared approvers do not apply to it), and the merged policy is checked with it."""
    root = installed_gateway(tmp_path, monkeypatch)
    etc = root / "etc/socialguard"
    local = (etc / "allowlists/authorisations.yaml").read_bytes()
    repo = tmp_path / "policy-repo"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    commit(
        repo,
        {
            # A catalogue and an endpoints file the pull brings, named as the installed policy
            # reads them (beside it): checked from the commit, the gateway has no copy yet.
            "shared/policy.yaml": SHARED + "catalogs: [catalog-extra.yaml]\n" + SIGNUP,
            "shared/catalog-extra.yaml": "services: {}\n",
            "shared/signup-endpoints.yaml": ENDPOINTS,
            "shared/authorisations.yaml": "approvers: [pcn.it]\n",
            "sites/riverside/policy.yaml": SITE,
        },
        "riverside joins; its list stays on the gateway",
    )
    code, output = installed_pull(repo)
    assert code == 0, output
    assert "the PCN's IT team" in (etc / "policy.yaml").read_text()
    assert (etc / "catalog-extra.yaml").read_text() == "services: {}\n"
    assert (etc / "signup-endpoints.yaml").read_text() == ENDPOINTS
    assert (etc / "allowlists/authorisations.yaml").read_bytes() == local
    assert not (etc / "allowlists/authorisations.yaml.kept-in-git").exists()
    assert "is kept as it is" in output
    assert "shared/authorisations.yaml does not apply to site riverside" in output
    assert (root / "var/lib/socialguard-pull/policy-repo/.git").is_dir()
    pull_log = root / "var/log/socialguard/pull/policy-pull.jsonl"
    (event,) = [json.loads(line) for line in pull_log.read_text().splitlines()]
    assert event["event"] == "policy.pulled"
    assert event["authorisations"] == "local"
    assert event["authorisations_path"] == str(etc / "allowlists/authorisations.yaml")
    # The local list is checked with the merged policy: a group it names may not vanish.
    applied = (etc / "policy.yaml").read_bytes()
    commit(repo, {"sites/riverside/policy.yaml": SITE.replace("reception", "front-desk")}, "rename")
    code, output = installed_pull(repo)
    assert code == 1
    assert f"{etc}/allowlists/authorisations.yaml:" in output
    assert "reception" in output
    assert (etc / "policy.yaml").read_bytes() == applied
    assert (etc / "allowlists/authorisations.yaml").read_bytes() == local


def test_a_list_kept_in_git_is_not_edited_on_the_gateway(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With sites/riverside/authorisations.yaml the list comes from git, marked so; `exemptions
    grant` refuses with a plain message, a hand edit is undone at the next pull, and once the
    repository drops the file the list (as last pulled) is the practice's to edit again."""
    root = installed_gateway(tmp_path, monkeypatch)
    listed = root / "etc/socialguard/allowlists/authorisations.yaml"
    repo = tmp_path / "policy-repo"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    files = {"shared/policy.yaml": SHARED, "sites/riverside/policy.yaml": SITE,
             "sites/riverside/authorisations.yaml": SITE_EXEMPTIONS}  # fmt: skip
    commit(repo, files, "riverside's list is kept here")
    code, output = installed_pull(repo)
    assert code == 0, output
    pulled = listed.read_bytes()
    assert b"EX-1" in pulled
    assert b"EX-2026-007" not in pulled
    marker = listed.with_name("authorisations.yaml.kept-in-git")
    assert f"repository: {repo}" in marker.read_text()
    grant = ["exemptions", "grant", "--user", "a.brown", "--service", "facebook",
             "--purpose", "Post the opening hours", "--approved-by", "practice.manager",
             "--for", "2w"]  # fmt: skip
    refused = CliRunner().invoke(main, grant)
    assert refused.exit_code == 1
    assert "exemptions are kept in the shared policy repository" in refused.output
    assert f"{repo} (sites/riverside/authorisations.yaml)" in refused.output
    assert "ask IT to make the change in the repository" in refused.output
    assert listed.read_bytes() == pulled
    # A hand edit of a list git keeps is undone by the next pull, even of the same commit.
    listed.write_bytes(pulled + b"# edited by hand\n")
    code, output = installed_pull(repo)
    assert code == 0, output
    assert listed.read_bytes() == pulled
    # The repository stops keeping the list: the marker goes, the list stays and is editable.
    git(repo, "rm", "-q", "sites/riverside/authorisations.yaml")
    git(repo, "commit", "-q", "-m", "riverside keeps its own list from now on")
    code, output = installed_pull(repo)
    assert code == 0, output
    assert not marker.exists()
    assert listed.read_bytes() == pulled
    granted = CliRunner().invoke(main, grant)
    assert granted.exit_code == 0, granted.output
    pull_log = root / "var/log/socialguard/pull/policy-pull.jsonl"
    events = [json.loads(line) for line in pull_log.read_text().splitlines()]
    assert [(e["authorisations"], e["changed"]) for e in events] == [
        ("repository", True), ("repository", True), ("local", True)
    ]  # fmt: skip
    assert verify(log_segments(pull_log)).ok


@pytest.mark.skipif(
    os.geteuid() != 0 or not _has_user("nobody"),
    reason="running git as another user needs root and a 'nobody' account",
)
def test_git_runs_as_the_git_user_and_the_pull_as_root(tmp_path: Path) -> None:
    """--git-user: git fetches as that user (its copy of the repository is its own), while the
    pull, as root, writes the policy files, which it reads from the commit, not from that copy."""
    nobody = pwd.getpwnam("nobody")
    shared = Path(tempfile.mkdtemp(prefix="socialguard-git-user-"))  # outside root's 0700 tmp
    try:
        shared.chmod(0o755)
        work = tmp_path / "work"
        work.mkdir()
        git(work, "init", "-q", "-b", "main")
        commit(work, {"shared/policy.yaml": SHARED, "sites/riverside/policy.yaml": SITE}, "one")
        repo = shared / "policy.git"
        git(tmp_path, "clone", "-q", "--bare", str(work), str(repo))
        home = shared / "pull"
        home.mkdir()
        for path in (home, repo, *repo.rglob("*")):
            os.chown(path, nobody.pw_uid, nobody.pw_gid)
        gateway = tmp_path / "gateway"
        result = CliRunner().invoke(
            main,
            ["policy", "pull", "--repo", str(repo), "--site", "riverside", "--git-user", "nobody",
             "--config", str(gateway / "config/policy.yaml"),
             "--checkout", str(home / "policy-repo")],
        )  # fmt: skip
        assert result.exit_code == 0, result.output
        copy = home / "policy-repo"
        assert {p.stat().st_uid for p in (copy, *copy.rglob("*"))} == {nobody.pw_uid}
        assert (gateway / "config/policy.yaml").stat().st_uid == os.geteuid()
        assert "riverside" in (gateway / "config/policy.yaml").read_text()
    finally:
        shutil.rmtree(shared)


def test_git_user_must_exist(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        main,
        ["policy", "pull", "--repo", str(tmp_path), "--site", "riverside",
         "--config", str(tmp_path / "policy.yaml"), "--git-user", "no-such-user-here"],
    )  # fmt: skip
    assert result.exit_code == 1
    assert "--git-user no-such-user-here: there is no such user" in result.output
