"""`socialguard ca export --out` writes new files: a link planted at a name is not followed."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from socialguard.cli.app import main


def test_ca_export_replaces_planted_links_instead_of_following_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "export"
    out.mkdir()
    victim = tmp_path / "victim"
    victim.write_text("precious\n")
    for name in ("socialguard-ca.pem", "INSTALL.txt"):
        (out / name).symlink_to(victim)
    result = CliRunner().invoke(main, ["ca", "export", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert victim.read_text() == "precious\n"
    pem = out / "socialguard-ca.pem"
    assert not pem.is_symlink()
    assert pem.read_text().startswith("-----BEGIN CERTIFICATE-----")
    assert not (out / "INSTALL.txt").is_symlink()
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no temporary left


def test_ca_export_into_a_file_is_a_message(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "export").write_text("not a folder\n")
    result = CliRunner().invoke(main, ["ca", "export", "--out", "export"])
    assert result.exit_code != 0
    assert "Traceback" not in result.output
