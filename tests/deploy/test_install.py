"""deploy/install.sh into a staging root (DESTDIR): the layout, a repeat that changes nothing,
IT's files kept, the Practice Manager's page and the timers laid out (a list at the old place
moved once), the lock's packages and nothing else, and an offline upgrade from a wheelhouse.

These build a real virtualenv with pip, so they are slow: one wheel per session, one install
repeated, then one offline upgrade of the same root; the move is tried on a copy of that root,
whose virtualenv is already in place.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
INSTALL = REPO / "deploy" / "install.sh"
PREFIX = "opt/socialguard"
LIST = "etc/socialguard/allowlists/authorisations.yaml"
OLD_LIST = "etc/socialguard/authorisations.yaml"
UNITS = [
    "socialguard.service",
    "socialguard-admin.service",
    "socialguard-digest.service",
    "socialguard-digest.timer",
    "socialguard-pull.service",
    "socialguard-pull.timer",
]
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
    authorisations = root / LIST
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
        ("etc/socialguard/allowlists", "0o750"),
        (LIST, "0o640"),
        ("etc/socialguard/allowlists/.authorisations.yaml.lock", "0o600"),
        ("etc/socialguard/nftables-drop-quic.nft", "0o640"),
        ("var/lib/socialguard", "0o750"),
        ("var/log/socialguard", "0o750"),
        ("var/log/socialguard/admin", "0o750"),
        *((f"etc/systemd/system/{unit}", "0o644") for unit in UNITS),
        (f"{PREFIX}/bin/socialguard", "0o755"),
    ],
)
def test_install_lays_out_the_gateway(installed: Installed, path: str, mode: str) -> None:
    """The units, IT's files, the page's list folder, the state and log directories and the
    program, with tight modes."""
    assert _mode(installed.root / path) == mode


def test_install_puts_the_program_on_the_path(installed: Installed) -> None:
    """/usr/local/bin/socialguard links to the installed program (by its final path)."""
    link = installed.root / "usr/local/bin/socialguard"
    assert link.is_symlink()
    assert os.readlink(link) == f"/{PREFIX}/bin/socialguard"


def test_install_copies_the_units_and_the_checkouts_files(installed: Installed) -> None:
    """Every unit is the repository's (the page and the timers too); policy.yaml is
    config/policy.yaml on a first install; the old place of the list stays empty."""
    etc = installed.root / "etc"
    for unit in UNITS:
        wanted = (REPO / "deploy/systemd" / unit).read_text()
        assert (etc / "systemd/system" / unit).read_text() == wanted, unit
    policy = (REPO / "config/policy.yaml").read_text()
    assert (etc / "socialguard/policy.yaml").read_text() == policy
    assert not (installed.root / OLD_LIST).exists()


def test_the_proxy_and_the_page_read_the_list_the_page_writes(installed: Installed) -> None:
    """Neither unit names a list, so both take the installed policy's, which is the one in
    the page's folder (the installed program's own `validate` says so); the page's unit may
    write that folder."""
    system = installed.root / "etc/systemd/system"
    for unit in ("socialguard.service", "socialguard-admin.service"):
        assert "--authorisations" not in (system / unit).read_text(), unit
    assert (
        "ReadWritePaths=/etc/socialguard/allowlists\n"
        in (system / "socialguard-admin.service").read_text()
    )
    done = _run(
        [str(installed.root / PREFIX / "bin/socialguard"), "validate",
         "--config", str(installed.root / "etc/socialguard/policy.yaml")],
        timeout=60,
    )  # fmt: skip
    assert f", {installed.root / LIST} —" in done.stdout


def test_second_install_keeps_the_edited_authorisation_list(installed: Installed) -> None:
    """An authorisation list changed after the first install is left as it is."""
    text = (installed.root / LIST).read_text()
    assert text == EDITED + (REPO / "allowlists/authorisations.yaml").read_text()
    assert "kept " in installed.second_log


BEFORE_PAGE = "# the list as an install from before the page left it: moved, never rewritten\n"


@dataclass(frozen=True, slots=True, kw_only=True)
class Moved:
    """A root as an install from before the page left it, after three installs: what each
    said and the tree after each."""

    root: Path
    logs: list[str]
    trees: list[str]
    original: str  # the list as it was at the old place


@pytest.fixture(scope="module")
def moved(tmp_path_factory: pytest.TempPathFactory, installed: Installed, wheel: Path) -> Moved:
    """A copy of the installed root (its virtualenv already in place, so no pip) without the
    page's folders and units and with the list at /etc/socialguard/authorisations.yaml; then
    installed, installed again after IT sets its site in the pull unit, and installed once more
    after an old list reappears at the old place."""
    root = tmp_path_factory.mktemp("before-page") / "root"
    shutil.copytree(installed.root, root, symlinks=True)
    shutil.rmtree(root / "etc/socialguard/allowlists")
    shutil.rmtree(root / "var/log/socialguard/admin")
    for unit in UNITS[1:]:
        (root / "etc/systemd/system" / unit).unlink()
    old = root / OLD_LIST
    original = BEFORE_PAGE + (REPO / "allowlists/authorisations.yaml").read_text()
    old.write_text(original)
    old.chmod(0o640)
    env = {"DESTDIR": str(root)}
    install = [str(INSTALL), "--wheel", str(wheel)]
    logs = [_run(install, env).stdout]
    trees = [_tree(root)]
    pull = root / "etc/systemd/system/socialguard-pull.service"
    pull.write_text(pull.read_text().replace("SITE=riverside", "SITE=hillside"))
    logs.append(_run(install, env).stdout)
    trees.append(_tree(root))
    old.write_text("# an old copy, restored from a backup\n")
    logs.append(_run(install, env).stdout)
    return Moved(root=root, logs=logs, trees=trees, original=original)


def test_a_list_at_the_old_place_is_moved_once_as_it_is(moved: Moved) -> None:
    """An upgrade from before the page moves the list into the page's folder with its content
    and mode, lays out the rest of the page, and the next install moves nothing."""
    root = moved.root
    assert f"moved {root / OLD_LIST} to {root / LIST}" in moved.logs[0]
    assert f"wrote {root}/etc/systemd/system/socialguard-admin.service" in moved.logs[0]
    assert f"./{OLD_LIST} 640" not in moved.trees[0]
    assert f"./{LIST} 640" in moved.trees[0]
    assert "./var/log/socialguard/admin 750" in moved.trees[0]
    assert "moved " not in moved.logs[1]
    assert f"kept {root / LIST}" in moved.logs[1]
    assert moved.trees[1] == moved.trees[0]
    assert (root / LIST).read_text() == moved.original


def test_an_upgrade_keeps_the_practices_pull_unit(moved: Moved) -> None:
    """socialguard-pull.service holds the practice's repository and site: once installed, an
    upgrade keeps IT's copy and says so."""
    pull = moved.root / "etc/systemd/system/socialguard-pull.service"
    assert f"kept {pull}" in moved.logs[1]
    assert "Environment=SITE=hillside" in pull.read_text()


def test_a_list_at_both_places_is_left_and_named(moved: Moved) -> None:
    """A list that reappears at the old place is neither moved over the one in force nor
    deleted: both stay, and the install says which one is read."""
    root = moved.root
    assert "moved " not in moved.logs[2]
    assert f"warning: {root / OLD_LIST} is not read any more" in moved.logs[2]
    assert (root / LIST).read_text() == moved.original
    assert (root / OLD_LIST).read_text() == "# an old copy, restored from a backup\n"


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
    text = (installed.root / LIST).read_text()
    assert text.startswith(EDITED)
    done = _run([str(opt / "socialguard/bin/socialguard"), "--help"], timeout=60)
    assert "Usage: socialguard" in done.stdout
    scripts = (opt / "socialguard/bin/socialguard").read_text()
    assert scripts.startswith(f"#!{opt}/socialguard/bin/python")
