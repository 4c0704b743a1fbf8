"""Output files are written new and renamed over the target: a planted link is never followed."""

from __future__ import annotations

from pathlib import Path

import pytest

from socialguard.files.output import OutputError, write_file


def test_a_link_planted_at_the_target_is_replaced_not_followed(tmp_path: Path) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n")
    target = tmp_path / "report.csv"
    target.symlink_to(victim)
    write_file(target, b"the report\n")
    assert victim.read_text() == "precious\n"
    assert not target.is_symlink()
    assert target.read_bytes() == b"the report\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.csv", "victim.txt"]


def test_a_dangling_link_creates_nothing_where_it_points(tmp_path: Path) -> None:
    target = tmp_path / "out.txt"
    target.symlink_to(tmp_path / "elsewhere.txt")
    write_file(target, b"x")
    assert not (tmp_path / "elsewhere.txt").exists()
    assert target.read_bytes() == b"x"


def test_an_existing_file_is_replaced_whole(tmp_path: Path) -> None:
    target = tmp_path / "out.txt"
    target.write_text("old and longer\n")
    write_file(target, b"new\n")
    assert target.read_bytes() == b"new\n"


def test_a_folder_or_a_missing_directory_is_a_message(tmp_path: Path) -> None:
    with pytest.raises(OutputError, match="is a folder"):
        write_file(tmp_path, b"x")
    with pytest.raises(OutputError, match="cannot create a file in"):
        write_file(tmp_path / "missing" / "out.txt", b"x")
