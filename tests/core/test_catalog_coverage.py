"""Tests for socialguard.catalog_coverage: reading a table of hosts and measuring the catalogue."""

from __future__ import annotations

import json

from socialguard.core.catalog import Catalog, parse_catalog
from socialguard.core.catalog_coverage import (
    NEVER_BLOCK,
    CoverageRow,
    as_dict,
    coverage,
    read_table,
    summary_lines,
)
from socialguard.files.yamlfile import parse_yaml

CATALOG = """\
services:
  example-social:
    name: Example Social
    category: social-networking
    domains: [example-social.example, exsoc-cdn.example]
  example-wiki:
    name: Example Wiki
    category: information-sharing
    domains: [example-wiki.example]
never_block: [nhs.uk]
"""
ENFORCED = ("social-networking",)


def catalog() -> Catalog:
    return parse_catalog(parse_yaml(CATALOG, "c.yaml"), "c.yaml")


def test_read_table_takes_tabs_or_spaces_comments_and_normalises_hosts() -> None:
    """Comments and blank lines are skipped; hosts are normalised; the answer is any case."""
    rows, problems = read_table(
        "# a comment\n"
        "\n"
        "www.example-social.example\tblock\n"
        "WWW.NHS.UK.   ALLOW   never-block  # protected\n"
        "img.exsoc-cdn.example\tblock\texample-social\n"
    )
    assert problems == []
    assert rows == [
        CoverageRow(host="www.example-social.example", block=True, line=3),
        CoverageRow(host="www.nhs.uk", block=False, line=4, service=NEVER_BLOCK),
        CoverageRow(host="img.exsoc-cdn.example", block=True, line=5, service="example-social"),
    ]


def test_read_table_names_the_line_and_the_fix_of_every_problem() -> None:
    """Each unreadable line is reported with its number; the rest are still read."""
    rows, problems = read_table(
        "a.example\tblok\n"
        "https://b.example/path\tblock\n"
        "c..example\tallow\n"
        "d.example\n"
        "e.example\tblock\n"
        "e.example\tallow\n"
        "e.example\tblock\n"
        "10.0.0.1\tblock\n"
        "10.0.0.2\tallow\n"
        "www.nhs.uk\tblock\tnever-block\n"
    )
    assert [row.host for row in rows] == ["e.example", "10.0.0.2"]
    lines = [line for line, _ in problems]
    assert lines == [1, 2, 3, 4, 6, 8, 10]
    messages = dict(problems)
    assert "'blok' is not block or allow" in messages[1]
    assert "without scheme or path" in messages[2]
    assert "is not a host name" in messages[3]
    assert "www.facebook.com<TAB>block" in messages[4]
    assert "listed on line 5 with the other answer" in messages[6]
    assert "IP address" in messages[8]
    assert "a never-block host cannot be blocked" in messages[10]


def test_coverage_counts_recall_false_positives_and_misnamed_hosts() -> None:
    """Answers follow the proxy: enforced categories block, others and never-block pass."""
    rows, _ = read_table(
        "www.example-social.example\tblock\texample-social\n"
        "img.exsoc-cdn.example\tblock\n"
        "unknown-social.example\tblock\n"
        "en.example-wiki.example\tallow\texample-wiki\n"
        "www.nhs.uk\tallow\tnever-block\n"
        "example-social.example\tallow\n"
        "other.example\tallow\tnever-block\n"
        "exsoc-cdn.example\tblock\texample-wiki\n"
    )
    result = coverage(catalog(), rows, ENFORCED)
    assert (result.should_block, result.blocked, result.should_allow) == (4, 3, 4)
    assert result.recall == 0.75
    assert [row.host for row in result.missed] == ["unknown-social.example"]
    assert [(row.host, s.id) for row, s in result.wrongly_blocked] == [
        ("example-social.example", "example-social")
    ]
    assert result.false_positives == 1
    assert result.false_positive_rate == 0.25
    assert [(row.host, named) for row, named in result.misnamed] == [
        ("other.example", None),
        ("exsoc-cdn.example", "example-social"),
    ]


def test_information_sharing_is_allowed_unless_enforced() -> None:
    """The practice's enforced categories decide, as they do in the proxy."""
    rows, _ = read_table("en.example-wiki.example\tblock\n")
    assert coverage(catalog(), rows, ENFORCED).recall == 0.0
    everything = (*ENFORCED, "information-sharing")
    assert coverage(catalog(), rows, everything).recall == 1.0


def test_summary_says_recall_and_false_positives_in_sentences() -> None:
    """The report leads with the two figures, then lists the hosts behind them, bounded."""
    text = "".join(f"missing-{i}.example\tblock\n" for i in range(25))
    text += "www.example-social.example\tblock\nexample-social.example\tallow\n"
    rows, _ = read_table(text)
    lines = summary_lines(coverage(catalog(), rows, ENFORCED), shown=3)
    assert lines[0] == "recall: 3.8% — 1 of the 26 hosts that should be blocked are blocked"
    assert lines[1] == "false positives: 1 of the 1 hosts that should pass are blocked (100.0%)"
    assert "missed (should be blocked, but pass): 25" in lines
    assert "  missing-0.example (line 1)" in lines
    assert "  … and 22 more (--json lists them all)" in lines
    assert (
        "  example-social.example (line 27): blocked as Example Social, social-networking"
    ) in lines


def test_summary_of_a_table_with_nothing_to_block() -> None:
    """Recall is not invented for a table that lists no host to block."""
    rows, _ = read_table("www.nhs.uk\tallow\n")
    lines = summary_lines(coverage(catalog(), rows, ENFORCED))
    assert lines == [
        "recall: not measured — the table lists no host that should be blocked",
        "false positives: 0 of the 1 hosts that should pass are blocked (0.0%)",
    ]


def test_as_dict_lists_every_host_for_json() -> None:
    """--json output has the figures and every missed, wrongly blocked and misnamed host."""
    rows, _ = read_table(
        "a.example\tblock\nexample-social.example\tallow\nwww.nhs.uk\tallow\texample-social\n"
    )
    data = json.loads(json.dumps(as_dict(coverage(catalog(), rows, ENFORCED))))
    assert data == {
        "rows": 3,
        "should_block": 1,
        "should_allow": 2,
        "blocked": 0,
        "recall": 0.0,
        "false_positives": 1,
        "missed": [{"host": "a.example", "line": 1}],
        "wrongly_blocked": [
            {"host": "example-social.example", "line": 2, "service": "example-social"}
        ],
        "misnamed": [
            {"host": "www.nhs.uk", "line": 3, "expected": "example-social", "named": NEVER_BLOCK}
        ],
    }
