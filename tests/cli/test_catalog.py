"""`socialguard catalog lookup|list|stats|import` through click's runner (no proxy)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from socialguard.cli.app import main
from socialguard.files.catalog_file import load_catalog

PRACTICE = "greenlane-surgery.co.uk"


@pytest.fixture
def policy(tmp_path: Path) -> Path:
    path = tmp_path / "policy.yaml"
    path.write_text(f"practice:\n  domains: [{PRACTICE}]\n", encoding="utf-8")
    return path


def run(*args: str, input_text: str | None = None) -> Result:
    return CliRunner().invoke(main, ["catalog", *args], input=input_text)


def with_extra(policy: Path, extra: Path) -> Path:
    policy.write_text(
        f"practice:\n  domains: [{PRACTICE}]\ncatalogs: [{extra}]\n", encoding="utf-8"
    )
    return policy


def test_lookup_names_service_category_and_entry(policy: Path) -> None:
    """lookup says which service, category, kind of entry and file matched."""
    result = run("lookup", "--config", str(policy), "scontent-lhr8-1.xx.fbcdn.net", "vm.tiktok.com")
    assert result.exit_code == 0, result.output
    first, second = result.stdout.splitlines()
    assert first.startswith("scontent-lhr8-1.xx.fbcdn.net: facebook (Facebook), social-networking")
    assert "CDN/media entry fbcdn.net" in first
    assert "catalog.yaml" in first
    assert "short link entry vm.tiktok.com" in second


def test_lookup_names_the_never_block_entry_that_protects(policy: Path) -> None:
    """A protected host names its never-block entry; practice domains come from policy.yaml."""
    result = run(
        "lookup", "--config", str(policy), "accounts.youtube.com", f"www.{PRACTICE}", "--json"
    )
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert rows[0]["protected_by"] == "accounts.youtube.com"
    assert rows[0]["service"] is None
    assert rows[1]["protected_by"] == PRACTICE
    assert rows[1]["protected_file"] == "policy.yaml practice.domains"


def test_lookup_explains_shared_infrastructure_and_unknown_hosts(policy: Path) -> None:
    """Left-out shared hosts say why; unknown and IP hosts say they are not catalogued."""
    result = run(
        "lookup", "--config", str(policy), "lh3.googleusercontent.com", "notfacebook.com",
        "192.0.2.1",
    )  # fmt: skip
    assert result.exit_code == 0
    shared, unknown, address = result.stdout.splitlines()
    assert "googleusercontent.com is shared infrastructure left out on purpose" in shared
    assert unknown == "notfacebook.com: not in the catalogue (not social media)"
    assert address.startswith("192.0.2.1: an IP address")


def test_lookup_bad_host_exits_1_without_traceback(policy: Path) -> None:
    """A host that is not a host name is reported and the command exits 1."""
    result = run("lookup", "--config", str(policy), "www.reddit.com", "bad host!")
    assert result.exit_code == 1
    assert "www.reddit.com: reddit" in result.stdout
    assert "bad host!: not a host name" in result.stderr
    assert "Traceback" not in result.output


def test_list_prints_services_and_domain_counts(policy: Path) -> None:
    """list shows each service with its category and number of domains."""
    result = run("list", "--config", str(policy))
    assert result.exit_code == 0
    facebook = next(line for line in result.stdout.splitlines() if line.startswith("facebook "))
    catalog, _ = load_catalog()
    assert f"{len(catalog.services['facebook'].domains)} domains" in facebook
    assert "social-networking" in facebook
    assert result.stdout.splitlines()[-1] == f"{len(catalog.services)} services"


def test_list_filters_by_category(policy: Path) -> None:
    """--category keeps only that category's services."""
    result = run("list", "--config", str(policy), "--category", "dating", "--json")
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert {r["category"] for r in rows} == {"dating"}
    assert "tinder" in {r["service"] for r in rows}


def test_list_stale_shows_entries_not_reviewed_for_a_year(policy: Path, tmp_path: Path) -> None:
    """--stale 365 lists services whose review is older than a year, or never dated."""
    extra = tmp_path / "old.yaml"
    extra.write_text(
        "services:\n"
        "  old-forum:\n    category: forums\n    domains: [old-forum.example]\n"
        "    reviewed: 2020-01-01\n"
        "  undated-forum:\n    category: forums\n    domains: [undated.example]\n",
        encoding="utf-8",
    )
    result = run("list", "--config", str(with_extra(policy, extra)), "--stale", "365", "--json")
    assert result.exit_code == 0, result.output
    assert [json.loads(line)["service"] for line in result.stdout.splitlines()] == [
        "old-forum",
        "undated-forum",
    ]


def test_bad_category_is_a_usage_error(policy: Path) -> None:
    """An unknown category exits 2 naming the choices."""
    result = run("list", "--config", str(policy), "--category", "gossip")
    assert result.exit_code == 2
    assert "social-networking" in result.output


def test_stats_reports_duplicates_and_overlaps_between_files(policy: Path, tmp_path: Path) -> None:
    """stats counts each file and finds the same domain twice and entries under others'."""
    extra = tmp_path / "extra.yaml"
    extra.write_text(
        "services:\n"
        "  my-list:\n    category: forums\n"
        "    domains: [facebook.com, groups.reddit.com, brand-new.example]\n",
        encoding="utf-8",
    )
    result = run("stats", "--config", str(with_extra(policy, extra)), "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["files"][str(extra)] == {"services": 1, "domains": 3}
    assert len(report["duplicates"]) == 1
    assert report["duplicates"][0].startswith("facebook.com: facebook (")
    assert any(
        o.startswith("groups.reddit.com (my-list) is under reddit.com") for o in report["overlaps"]
    )
    assert report["never_block_conflicts"] == []


def test_stats_text_for_the_shipped_catalogue(policy: Path) -> None:
    """The shipped catalogue alone has no duplicates, overlaps or conflicts."""
    result = run("stats", "--config", str(policy))
    assert result.exit_code == 0
    for title in ("duplicates", "overlaps", "never-block conflicts"):
        assert any(
            line.startswith(title) and line.endswith(": 0") for line in result.stdout.splitlines()
        )


def test_import_writes_a_catalogue_the_policy_can_use(policy: Path, tmp_path: Path) -> None:
    """import writes an extra file; listed in policy.yaml, its domains are then blocked."""
    source = tmp_path / "Gossip Forums.txt"
    source.write_text(
        "# a list\n0.0.0.0 gossip-forum.example\n0.0.0.0 *.wild.example\n"
        "0.0.0.0 www.facebook.com\n0.0.0.0 nhs.uk\n0.0.0.0 1.2.3.4\n",
        encoding="utf-8",
    )
    out = tmp_path / "catalog-gossip.yaml"
    result = run(
        "import", str(source), "--category", "forums", "--out", str(out), "--config", str(policy)
    )
    assert result.exit_code == 0, result.output
    assert "imported 1 domains" in result.stdout
    assert "as service imported-gossip-forums (forums)" in result.stdout
    for reason in ("comment", "wildcard", "already in the catalogue", "never-block", "IP address"):
        assert reason in result.stdout
    assert f"catalogs: [{out}]" in result.stdout
    check = CliRunner().invoke(
        main,
        ["check", "--config", str(with_extra(policy, out)), "--json", "www.gossip-forum.example"],
    )
    row = json.loads(check.stdout)
    assert (row["service"], row["action"]) == ("imported-gossip-forums", "block")


def test_import_again_replaces_its_own_file(policy: Path, tmp_path: Path) -> None:
    """Re-importing into a file policy.yaml lists does not count its old entries as catalogued."""
    source = tmp_path / "list.txt"
    source.write_text("a-forum.example\n", encoding="utf-8")
    out = tmp_path / "catalog-list.yaml"
    args = [
        "import",
        str(source),
        "--category",
        "forums",
        "--service",
        "my-forums",
        "--out",
        str(out),
    ]
    assert run(*args, "--config", str(policy)).exit_code == 0
    again = run(*args, "--config", str(with_extra(policy, out)))
    assert again.exit_code == 0, again.output
    assert "imported 1 domains" in again.stdout
    assert "already lists it under catalogs" in again.stdout


def test_import_adblock_format_and_named_service(policy: Path, tmp_path: Path) -> None:
    """--format adblock reads ||domain^ rules; --service and --name set the entry."""
    source = tmp_path / "rules.txt"
    source.write_text("! rules\n||dating-one.example^\n@@||ok.example^\n", encoding="utf-8")
    out = tmp_path / "dating.yaml"
    result = run(
        "import", str(source), "--category", "dating", "--service", "local-dating",
        "--name", "Local dating sites", "--format", "adblock", "--out", str(out),
        "--config", str(policy),
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    catalog, _ = load_catalog([out])
    service = catalog.services["local-dating"]
    assert (service.name, service.domains) == ("Local dating sites", ("dating-one.example",))


def test_import_shows_progress_on_long_lists(policy: Path, tmp_path: Path) -> None:
    """Over 10,000 lines a progress bar is shown; the import still completes."""
    source = tmp_path / "long.txt"
    source.write_text(
        "".join(f"site{i}.long-list.example\n" for i in range(10_001)), encoding="utf-8"
    )
    out = tmp_path / "long.yaml"
    result = run(
        "import", str(source), "--category", "forums", "--out", str(out), "--config", str(policy)
    )
    assert result.exit_code == 0, result.output
    assert "Reading long.txt" in result.stderr
    assert "imported 10,001 domains" in result.stdout


def test_import_short_list_has_no_progress_bar(policy: Path, tmp_path: Path) -> None:
    """Short lists import without a progress bar."""
    source = tmp_path / "short.txt"
    source.write_text("short-list.example\n", encoding="utf-8")
    result = run(
        "import", str(source), "--category", "forums", "--out", str(tmp_path / "s.yaml"),
        "--config", str(policy),
    )  # fmt: skip
    assert result.exit_code == 0
    assert "Reading" not in result.stderr


def test_import_nothing_left_exits_1(policy: Path, tmp_path: Path) -> None:
    """A list whose every line is skipped writes nothing and exits 1 with the counts."""
    source = tmp_path / "empty.txt"
    source.write_text("# only\n0.0.0.0 localhost\n", encoding="utf-8")
    out = tmp_path / "none.yaml"
    result = run(
        "import", str(source), "--category", "forums", "--out", str(out), "--config", str(policy)
    )
    assert result.exit_code == 1
    assert "every line was skipped" in result.stderr
    assert not out.exists()


def test_import_missing_file_exits_1(policy: Path, tmp_path: Path) -> None:
    """A list that cannot be read is a message naming it, exit 1."""
    result = run(
        "import", str(tmp_path / "nope.txt"), "--category", "forums", "--config", str(policy)
    )
    assert result.exit_code == 1
    assert "cannot read" in result.stderr
    assert "nope.txt" in result.stderr


def test_import_cannot_move_a_service_to_another_category(policy: Path, tmp_path: Path) -> None:
    """Adding to an existing service in another category is refused with the fix."""
    source = tmp_path / "fb.txt"
    source.write_text("more-facebook.example\n", encoding="utf-8")
    result = run(
        "import", str(source), "--category", "dating", "--service", "facebook",
        "--out", str(tmp_path / "fb.yaml"), "--config", str(policy),
    )  # fmt: skip
    assert result.exit_code == 1
    assert "--category social-networking" in result.stderr


def test_import_refuses_to_overwrite_the_shipped_catalogue(policy: Path, tmp_path: Path) -> None:
    """The shipped catalogue is never the import's output."""
    source = tmp_path / "l.txt"
    source.write_text("x-forum.example\n", encoding="utf-8")
    shipped = Path(__file__).resolve().parents[2] / "config" / "catalog.yaml"
    result = run(
        "import",
        str(source),
        "--category",
        "forums",
        "--out",
        str(shipped),
        "--config",
        str(policy),
    )
    assert result.exit_code == 1
    assert "shipped catalogue" in result.stderr


def test_bad_service_id_is_a_usage_error(policy: Path, tmp_path: Path) -> None:
    """--service must be a catalogue id."""
    source = tmp_path / "l.txt"
    source.write_text("x-forum.example\n", encoding="utf-8")
    result = run(
        "import",
        str(source),
        "--category",
        "forums",
        "--service",
        "Bad Id",
        "--config",
        str(policy),
    )
    assert result.exit_code == 2
    assert "lower case" in result.output


def test_invalid_extra_catalogue_names_file_and_line(policy: Path, tmp_path: Path) -> None:
    """A broken extra file listed in policy.yaml is reported with its line, exit 1."""
    extra = tmp_path / "broken.yaml"
    extra.write_text(
        "services:\n  x:\n    category: forums\n    domains: ['*.bad']\n", encoding="utf-8"
    )
    result = run("list", "--config", str(with_extra(policy, extra)))
    assert result.exit_code == 1
    assert f"{extra}:4: services.x.domains[0]" in result.stderr
    assert "Traceback" not in result.output


def test_missing_config_is_an_error(tmp_path: Path) -> None:
    """A --config that does not exist is refused rather than silently ignored."""
    result = run("list", "--config", str(tmp_path / "missing.yaml"))
    assert result.exit_code == 1
    assert "not found" in result.stderr


def test_coverage_prints_recall_and_false_positives(policy: Path, tmp_path: Path) -> None:
    """A practice's own table of hosts: recall and false positives, exit 0."""
    table = tmp_path / "hosts.tsv"
    table.write_text("www.facebook.com\tblock\nwww.nhs.uk\tallow\n", encoding="utf-8")
    result = run("coverage", "--config", str(policy), str(table))
    assert result.exit_code == 0, result.output
    assert "recall: 100.0%" in result.stdout
    assert "false positives: 0 of the 1" in result.stdout
    as_json = json.loads(run("coverage", "--config", str(policy), "--json", str(table)).stdout)
    assert as_json


def test_coverage_names_a_bad_line(policy: Path, tmp_path: Path) -> None:
    """A line that is neither block nor allow is named with its file and line, exit 1."""
    table = tmp_path / "hosts.tsv"
    table.write_text("www.facebook.com\tblock\nwww.nhs.uk\tmaybe\n", encoding="utf-8")
    result = run("coverage", "--config", str(policy), str(table))
    assert result.exit_code == 1
    assert f"{table}:2:" in result.output
    assert "Traceback" not in result.output


def test_import_v2fly_follows_includes_and_keeps_full_hosts_exact(
    policy: Path, tmp_path: Path
) -> None:
    """A v2fly list: include: lines beside it are followed, full: hosts written as exact."""
    source = Path(__file__).resolve().parents[1] / "data" / "v2fly" / "example-social"
    out = tmp_path / "extra.yaml"
    result = run(
        "import", "--config", str(policy), str(source), "--format", "v2fly",
        "--category", "social-networking", "--out", str(out),
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    written = out.read_text(encoding="utf-8")
    assert "only-this-host.example" in written.split("exact:", 1)[1]
    assert "example-social-cdn.example" in written  # a name from the included list
    assert "exact hosts from" in result.output
