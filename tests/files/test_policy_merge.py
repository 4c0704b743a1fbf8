"""Reading a commit for the pull: plain files only, from the tar `git archive` writes."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest

from socialguard.core.problems import ConfigError
from socialguard.files.policy_merge import holds_list, stage, unpack


def _archive(*members: tuple[str, bytes | str | None]) -> bytes:
    """A tar with files (bytes), symbolic links (str: the target) and folders (None)."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        for name, content in members:
            info = tarfile.TarInfo(name)
            if content is None:
                info.type = tarfile.DIRTYPE
                tar.addfile(info)
            elif isinstance(content, str):
                info.type, info.linkname = tarfile.SYMTYPE, content
                tar.addfile(info)
            else:
                info.size = len(content)
                tar.addfile(info, io.BytesIO(content))
    return out.getvalue()


def test_plain_files_are_unpacked_and_nothing_outside(tmp_path: Path) -> None:
    """Files land under the folder; a name climbing out of it is skipped; a link in another
    practice's folder is no concern of this one."""
    archive = _archive(
        ("shared/", None),
        ("shared/policy.yaml", b"enforced_categories: [dating]\n"),
        ("sites/riverside/policy.yaml", b"site: riverside\n"),
        ("sites/riverside/authorisations.yaml", b"approvers: [pm]\n"),
        ("../escaped.yaml", b"x: 1\n"),
        ("sites/hillside/policy.yaml", "/etc/shadow"),
    )
    tree = tmp_path / "tree"
    unpack(archive, tree, "riverside")
    assert (tree / "shared/policy.yaml").read_bytes() == b"enforced_categories: [dating]\n"
    assert not (tmp_path / "escaped.yaml").exists()
    assert not (tree / "sites/hillside/policy.yaml").exists()
    assert holds_list(tree, "riverside")
    merged = stage(tree, "riverside", tmp_path / "merged")
    assert merged.authorisations is not None
    assert "dating" in merged.policy.read_text()


@pytest.mark.parametrize("name", ["shared/catalog-extra.yaml", "sites/riverside/policy.yaml"])
def test_a_link_where_the_pull_reads_is_refused(tmp_path: Path, name: str) -> None:
    """A symbolic link in shared/ or this practice's folder is named, never followed."""
    with pytest.raises(ConfigError) as refused:
        unpack(_archive((name, "/etc/socialguard/audit.key")), tmp_path / "tree", "riverside")
    (problem,) = refused.value.problems
    assert name in str(problem)
    assert "commit the file itself" in str(problem)


def test_a_site_without_its_own_list_keeps_the_gateways(tmp_path: Path) -> None:
    """No sites/NAME/authorisations.yaml: nothing staged for the list, and a shared list is
    reported as not applying."""
    tree = tmp_path / "tree"
    unpack(
        _archive(
            ("shared/authorisations.yaml", b"approvers: [pcn.it]\n"),
            ("sites/riverside/policy.yaml", b"site: riverside\n"),
        ),
        tree,
        "riverside",
    )
    merged = stage(tree, "riverside", tmp_path / "merged")
    assert merged.authorisations is None
    assert merged.shared_list_unused
    assert not holds_list(tree, "riverside")
