"""requirements.lock pins the runtime dependencies, with hashes, and nothing of the test tools;
`make run` installs socialguard without the test tools, `make test` with them."""

from __future__ import annotations

import re
import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
LOCK = (REPO / "requirements.lock").read_text()
PROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]


def _name(requirement: str) -> str:
    """The normalised distribution name of a requirement such as `ruamel.yaml>=0.18`."""
    match = re.match(r"[A-Za-z0-9][A-Za-z0-9._-]*", requirement)
    assert match, requirement
    return re.sub(r"[-_.]+", "-", match.group(0)).lower()


def _entries() -> dict[str, str]:
    """Each locked requirement's normalised name -> its text up to the next requirement."""
    blocks = re.split(r"(?m)^(?=[A-Za-z0-9])", LOCK)
    return {_name(b): b for b in blocks if b.strip() and not b.startswith("#")}


@pytest.mark.parametrize("requirement", PROJECT["dependencies"])
def test_every_runtime_dependency_is_pinned_with_hashes(requirement: str) -> None:
    """Each of pyproject's dependencies is in the lock at one exact version, with hashes."""
    entry = _entries()[_name(requirement)]
    assert re.match(r"[A-Za-z0-9._-]+==\S+", entry)
    assert "--hash=sha256:" in entry


def test_every_locked_requirement_is_exact_and_hashed() -> None:
    """pip --require-hashes refuses a lock with any loose or unhashed line: there is none."""
    entries = _entries()
    assert len(entries) > len(PROJECT["dependencies"])  # their own dependencies are there too
    for name, entry in entries.items():
        assert re.match(r"[A-Za-z0-9._-]+==[^\s;]+", entry), name
        assert re.search(r"--hash=sha256:[0-9a-f]{64}", entry), name


def test_lock_holds_no_test_tool() -> None:
    """The test extra's tools are not in the lock a gateway installs from."""
    tools = {_name(r) for r in PROJECT["optional-dependencies"]["test"]}
    assert tools.isdisjoint(_entries())


def _dry_run(tmp_path: Path, target: str) -> str:
    """What `make TARGET` would run in a fresh checkout (make -n: nothing is run)."""
    shutil.copy(REPO / "Makefile", tmp_path / "Makefile")
    shutil.copy(REPO / "pyproject.toml", tmp_path / "pyproject.toml")
    done = subprocess.run(
        ["make", "-n", target], cwd=tmp_path, capture_output=True, text=True, check=True, timeout=30
    )
    return done.stdout


def test_make_run_installs_no_test_tools(tmp_path: Path) -> None:
    """`make run` installs the project alone; the test extra is not named."""
    commands = _dry_run(tmp_path, "run")
    assert "pip install -q -e . " in commands
    assert "[test]" not in commands


def test_make_test_installs_the_test_tools(tmp_path: Path) -> None:
    """`make test` installs the test extra and runs lint, types and pytest."""
    commands = _dry_run(tmp_path, "test")
    assert "pip install -q -e '.[test]'" in commands
    assert ".venv/bin/pytest -q" in commands
