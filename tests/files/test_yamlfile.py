"""Tests for socialguard.files.yamlfile: YAML that remembers lines, and problems that name them."""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path

import pytest

from socialguard.core.problems import ConfigError, LocatedDict, LocatedList, Problem, Problems
from socialguard.files import catalog_file
from socialguard.files.catalog_file import load_catalog
from socialguard.files.yamlfile import SETTINGS_MAX_BYTES, parse_yaml, read_yaml

TEXT = """\
# a comment
top:
  a: 1

  b:
    - x
    - y: 2
      z: 3
date: 2026-11-01
"""


def test_mappings_remember_their_lines() -> None:
    """Each mapping knows its own line and the line of each key (1-based)."""
    data = parse_yaml(TEXT, "f.yaml")
    assert isinstance(data, LocatedDict)
    assert data.line == 2
    assert data.line_of("top") == 2
    assert data.line_of("date") == 9
    assert data["top"].line_of("a") == 3
    assert data["top"].line_of("b") == 5
    assert data.line_of("absent") == data.line


def test_sequences_remember_item_lines() -> None:
    """Each list knows the line of each item; an index past the end falls back to the list."""
    items = parse_yaml(TEXT, "f.yaml")["top"]["b"]
    assert isinstance(items, LocatedList)
    assert items.line_of(0) == 6
    assert items.line_of(1) == 7
    assert items[1].line_of("z") == 8
    assert items.line_of(99) == items.line


def test_safe_types_are_constructed() -> None:
    """Dates come back as dates and plain scalars as Python values."""
    data = parse_yaml(TEXT, "f.yaml")
    assert data["date"] == dt.date(2026, 11, 1)
    assert data["top"]["a"] == 1


def test_scalar_keys_keep_their_text() -> None:
    """A scalar key is stored as written, so `on:` is the key "on", not a boolean."""
    data = parse_yaml("1: one\ntrue: yes\non: 2026-11-24\n", "f.yaml")
    assert set(data) == {"1", "true", "on"}


def test_duplicate_key_is_a_problem_at_its_line() -> None:
    """A key that appears twice in one mapping is reported at the second occurrence."""
    with pytest.raises(ConfigError) as caught:
        parse_yaml("a: 1\nb: 2\na: 3\n", "dup.yaml")
    [problem] = caught.value.problems
    assert (problem.source, problem.line) == ("dup.yaml", 3)
    assert "'a' appears twice" in problem.message


@pytest.mark.parametrize(
    ("text", "line"),
    [
        ("a: 1\nb: [1, 2\nc: 3\n", 3),
        ("a:\n  - x\n - y\n", 3),
        ("a: 'unterminated\n", 2),
        ("a: b: c\n", 1),
    ],
)
def test_syntax_error_names_line(text: str, line: int) -> None:
    """Bad YAML is one problem that names its line and hints at indentation and quoting."""
    with pytest.raises(ConfigError) as caught:
        parse_yaml(text, "bad.yaml")
    [problem] = caught.value.problems
    assert problem.source == "bad.yaml"
    assert problem.line == line
    assert problem.message.startswith("not valid YAML")


def test_unsafe_tags_are_refused() -> None:
    """Python object tags are not constructed (safe loading only)."""
    with pytest.raises(ConfigError):
        parse_yaml("x: !!python/object/apply:os.system ['true']\n", "evil.yaml")


def test_problem_and_config_error_format() -> None:
    """A problem reads file:line: message, and a ConfigError joins them one per line."""
    problems = Problems("p.yaml")
    problems.raise_if_any()
    problems.add(3, "first")
    problems.add(9, "second")
    with pytest.raises(ConfigError) as caught:
        problems.raise_if_any()
    assert caught.value.problems == [Problem("p.yaml", 3, "first"), Problem("p.yaml", 9, "second")]
    assert str(caught.value) == "p.yaml:3: first\np.yaml:9: second"


def test_read_yaml_returns_data_and_raw_bytes(tmp_path: Path) -> None:
    """read_yaml gives the parsed data and the exact bytes read (for digests)."""
    path = tmp_path / "x.yaml"
    raw = "name: Ärztehaus\n".encode()
    path.write_bytes(raw)
    data, got = read_yaml(path)
    assert data == {"name": "Ärztehaus"}
    assert got == raw


def test_read_yaml_missing_file(tmp_path: Path) -> None:
    """A missing file is a problem naming the path, not a traceback."""
    path = tmp_path / "nope.yaml"
    with pytest.raises(ConfigError) as caught:
        read_yaml(path)
    [problem] = caught.value.problems
    assert problem.source == str(path)
    assert "cannot read the file" in problem.message


def test_read_yaml_not_utf8(tmp_path: Path) -> None:
    """A file that is not UTF-8 is a problem asking for UTF-8."""
    path = tmp_path / "latin1.yaml"
    path.write_bytes("name: caf\xe9\n".encode("latin-1"))
    with pytest.raises(ConfigError) as caught:
        read_yaml(path)
    assert "UTF-8" in caught.value.problems[0].message


def test_read_yaml_syntax_error_names_path(tmp_path: Path) -> None:
    """A syntax error in a file names that file's path."""
    path = tmp_path / "bad.yaml"
    path.write_text("a: [\n", encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        read_yaml(path)
    assert caught.value.problems[0].source == str(path)


BOMB = """\
approvers: [practice.manager]
a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]
b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]
c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]
d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]
e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d]
f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e]
g: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f]
h: &h [*g, *g, *g, *g, *g, *g, *g, *g, *g]
exemptions: [*h, *h, *h, *h, *h, *h, *h, *h, *h]
"""


def test_an_alias_bomb_is_refused_at_once_with_its_line(tmp_path: Path) -> None:
    """A few hundred bytes of nested aliases would expand to gigabytes while validating."""
    path = tmp_path / "authorisations.yaml"
    path.write_text(BOMB)
    start = time.monotonic()
    with pytest.raises(ConfigError) as caught:
        read_yaml(path)
    assert time.monotonic() - start < 1.0
    [problem] = caught.value.problems
    assert problem.line == 2
    assert "anchors and aliases" in problem.message


@pytest.mark.parametrize(
    "text",
    ["a: &x 1\n", "a: 1\nb: *x\n", "base: &base {x: 1}\nother:\n  <<: *base\n"],
)
def test_any_anchor_or_alias_is_refused(text: str) -> None:
    with pytest.raises(ConfigError, match="anchors and aliases"):
        parse_yaml(text, "f.yaml")


def test_an_ampersand_or_star_in_a_value_is_still_text() -> None:
    assert parse_yaml("purpose: 'Posts & replies *daily*'\n", "f.yaml") == {
        "purpose": "Posts & replies *daily*"
    }


def test_the_fast_catalogue_reader_refuses_aliases_too(tmp_path: Path) -> None:
    path = tmp_path / "extra.yaml"
    path.write_text(BOMB.replace("approvers", "version"))
    start = time.monotonic()
    with pytest.raises(ConfigError, match="anchors and aliases"):
        load_catalog([path])
    assert time.monotonic() - start < 2.0  # the shipped catalogue is read too


def test_a_file_over_its_bound_is_refused_before_it_is_parsed(tmp_path: Path) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text("# padding\n" * (SETTINGS_MAX_BYTES // 10 + 1))
    with pytest.raises(ConfigError) as caught:
        read_yaml(path, SETTINGS_MAX_BYTES)
    [problem] = caught.value.problems
    assert problem.source == str(path)
    assert "larger than 1 MiB" in problem.message
    path.write_text("# padding\n" * 1000)
    assert read_yaml(path, SETTINGS_MAX_BYTES)[0] is None


def test_a_star_or_ampersand_in_a_quoted_value_keeps_the_fast_reader(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """'*.skype.com' in a reason is text, not an alias: the shipped catalogue has such lines,
    and the careful reader takes seconds of every start where libyaml takes a fraction."""

    def careful(*_args: object) -> None:
        raise AssertionError("the careful reader was used")

    monkeypatch.setattr(catalog_file, "read_yaml", careful)
    assert b"*.skype.com" in catalog_file.embedded_catalog_path().read_bytes()
    catalog, _raws = load_catalog()
    assert "skype" in catalog.services
