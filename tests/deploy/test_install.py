"""deploy/install.sh into a staging root (DESTDIR): the layout, a repeat that changes nothing,
IT's files kept, the lock's packages and nothing else, and an offline upgrade from a wheelhouse.

These build a real virtualenv with pip, so they are slow: one wheel per session, one install
repeated, then one offline upgrade of the same root.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
INSTALL = REPO / "deploy" / "install.sh"
PREFIX = "opt/socialguard"
EDITED = "# kept by the Practice Manager: an upgrade must not replace this file\n"


def _run(
    args: list[str], env: dict[str, str] | None = None, timeout: float = 240
) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        args,
        check=False,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )
    assert done.returncode == 0, f"{args} exited {done.returncode}:\n{done.stdout}\n{done.stderr}"
    return done


def _tree(root: Path) -> list[str]:
    """Every path under root with its mode, as the acceptance check lists them (no bytecode)."""
    listing = subprocess.run(
        ["find", ".", "-printf", "%p %m\\n"],
        cwd=root,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout.splitlines()
    return sorted(line for line in listing if ".pyc " not in line and "__pycache__" not in line)


def _mode(path: Path) -> str:
    return oct(path.stat().st_mode & 0o7777)


@dataclass(frozen=True, slots=True, kw_only=True)
class Installed:
    """A staging root after two installs, with what each left and said."""

    root: Path
    first: list[str]
    second: list[str]
    second_log: str
    stamp: str
    python: str  # the interpreter install.sh chose


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """socialguard's wheel, built once from this checkout."""
    out = tmp_path_factory.mktemp("dist")
    done = _run([str(REPO / "deploy" / "build-wheel.sh"), str(out)])
    path = Path(done.stdout.strip().splitlines()[-1])
    assert path.name.startswith("socialguard-")
    assert path.name.endswith("-py3-none-any.whl")
    return path


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory, wheel: Path) -> Installed:
    """Install into a staging root, edit the authorisation list as a user would, install again."""
    root = tmp_path_factory.mktemp("root")
    env = {"DESTDIR": str(root)}
    first_log = _run([str(INSTALL), "--wheel", str(wheel)], env).stdout
    chosen = re.search(r"creating \S+ with (\S+)", first_log)
    assert chosen, first_log
    first = _tree(root)
    authorisations = root / "etc/socialguard/authorisations.yaml"
    authorisations.write_text(EDITED + authorisations.read_text())
    second = _run([str(INSTALL), "--wheel", str(wheel)], env)
    return Installed(
        root=root,
        first=first,
        second=_tree(root),
        second_log=second.stdout,
        stamp=(root / PREFIX / ".socialguard-install").read_text(),
        python=chosen.group(1),
    )


def test_second_install_changes_nothing(installed: Installed) -> None:
    """Installing the same wheel again leaves the same tree with the same modes, and says so."""
    assert installed.second == installed.first
    assert "already installed" in installed.second_log


@pytest.mark.parametrize(
    ("path", "mode"),
    [
        ("etc/socialguard", "0o750"),
        ("etc/socialguard/policy.yaml", "0o640"),
        ("etc/socialguard/authorisations.yaml", "0o640"),
        ("etc/socialguard/nftables-drop-quic.nft", "0o640"),
        ("var/lib/socialguard", "0o750"),
        ("var/log/socialguard", "0o750"),
        ("etc/systemd/system/socialguard.service", "0o644"),
        (f"{PREFIX}/bin/socialguard", "0o755"),
    ],
)
def test_install_lays_out_the_gateway(installed: Installed, path: str, mode: str) -> None:
    """The unit, IT's files, the state and log directories and the program, with tight modes."""
    assert _mode(installed.root / path) == mode


def test_install_puts_the_program_on_the_path(installed: Installed) -> None:
    """/usr/local/bin/socialguard links to the installed program (by its final path)."""
    link = installed.root / "usr/local/bin/socialguard"
    assert link.is_symlink()
    assert os.readlink(link) == f"/{PREFIX}/bin/socialguard"


def test_install_copies_the_unit_and_the_checkouts_files(installed: Installed) -> None:
    """The unit is the repository's; policy.yaml is config/policy.yaml on a first install."""
    etc = installed.root / "etc"
    unit = REPO / "deploy/systemd/socialguard.service"
    assert (etc / "systemd/system/socialguard.service").read_text() == unit.read_text()
    policy = (REPO / "config/policy.yaml").read_text()
    assert (etc / "socialguard/policy.yaml").read_text() == policy


def test_second_install_keeps_the_edited_authorisation_list(installed: Installed) -> None:
    """An authorisation list changed after the first install is left as it is."""
    text = (installed.root / "etc/socialguard/authorisations.yaml").read_text()
    assert text == EDITED + (REPO / "allowlists/authorisations.yaml").read_text()
    assert "kept " in installed.second_log


def test_installed_program_runs(installed: Installed) -> None:
    """The installed console script starts and prints its help."""
    done = _run([str(installed.root / PREFIX / "bin/socialguard"), "--help"], timeout=60)
    assert "Usage: socialguard" in done.stdout


def _locked() -> dict[str, str]:
    """requirements.lock's pins: normalised name -> version."""
    pins = re.findall(
        r"(?m)^([A-Za-z0-9][A-Za-z0-9._-]*)==([^ ;\\]+)", (REPO / "requirements.lock").read_text()
    )
    return {re.sub(r"[-_.]+", "-", name).lower(): version for name, version in pins}


def _installed_packages(root: Path) -> dict[str, str]:
    done = _run(
        [str(root / PREFIX / "bin/python"), "-m", "pip", "list", "--format=json"], timeout=60
    )
    return {
        re.sub(r"[-_.]+", "-", p["name"]).lower(): p["version"] for p in json.loads(done.stdout)
    }


def test_installed_packages_are_the_lock_and_no_test_tools(installed: Installed) -> None:
    """Every package in /opt/socialguard is pinned by the lock at that version, or is socialguard
    itself or pip; none of the test tools is there."""
    packages = _installed_packages(installed.root)
    locked = _locked()
    extra = {
        name: version
        for name, version in packages.items()
        if name not in {"socialguard", "pip"} and locked.get(name) != version
    }
    assert extra == {}
    assert "socialguard" in packages
    assert {"pytest", "mypy", "ruff", "hypothesis", "playwright", "httpx"}.isdisjoint(packages)


@pytest.fixture(scope="module")
def upgraded(
    tmp_path_factory: pytest.TempPathFactory, installed: Installed
) -> tuple[Installed, list[str], str]:
    """The same root upgraded offline from a bundle made by deploy/make-wheelhouse.sh.

    The bundle's wheel is built with another timestamp, so it differs from the installed one by
    its hash and the whole virtualenv is replaced. pip is given no index and no configuration:
    it can install from the wheelhouse only.
    """
    out = tmp_path_factory.mktemp("bundle")
    version = _run(
        [installed.python, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"]
    ).stdout.strip()
    _run(
        [str(REPO / "deploy" / "make-wheelhouse.sh"), str(out)],
        {
            "SOURCE_DATE_EPOCH": "315619200",
            "PYTHON": installed.python,
            "WHEELHOUSE_PYTHONS": version,  # the one the install uses: half the downloads
        },
        timeout=300,
    )
    bundles = [p for p in out.iterdir() if p.is_dir() and p.name.startswith("socialguard-")]
    assert len(bundles) == 1
    bundle = bundles[0]
    offline = {
        "DESTDIR": str(installed.root),
        "PIP_CONFIG_FILE": os.devnull,
        "PIP_NO_INDEX": "1",
        "PIP_FIND_LINKS": "",
        "PYTHON": installed.python,
    }
    done = _run(
        [str(bundle / "deploy/install.sh"), "--wheelhouse", str(bundle / "wheelhouse")], offline
    )
    return installed, _tree(installed.root), done.stdout


def test_offline_upgrade_replaces_the_program_and_keeps_the_layout(
    upgraded: tuple[Installed, list[str], str],
) -> None:
    """An upgrade from a wheelhouse swaps the virtualenv whole: same tree and modes, no leftovers,
    the new wheel recorded, IT's edited file kept, and the program runs."""
    installed, tree, log = upgraded
    assert "creating" in log
    assert tree == installed.second
    opt = installed.root / "opt"
    assert sorted(p.name for p in opt.iterdir()) == ["socialguard"]
    stamp = (opt / "socialguard/.socialguard-install").read_text()
    assert stamp.splitlines()[0] != installed.stamp.splitlines()[0]  # the wheel's hash
    assert stamp.splitlines()[1:] == installed.stamp.splitlines()[1:]  # the lock, the Python
    text = (installed.root / "etc/socialguard/authorisations.yaml").read_text()
    assert text.startswith(EDITED)
    done = _run([str(opt / "socialguard/bin/socialguard"), "--help"], timeout=60)
    assert "Usage: socialguard" in done.stdout
    scripts = (opt / "socialguard/bin/socialguard").read_text()
    assert scripts.startswith(f"#!{opt}/socialguard/bin/python")
