"""`socialguard policy pull`: take this practice's policy from the shared git repository,
apply it only if it passes the checks of `socialguard validate`, and record what happened.

A bad commit never reaches the gateway: the merged files are checked in a staging folder, and
only a policy that loads whole replaces the files in force (each by an atomic rename; the
running proxy then reloads them as it does any edit). Applied and refused commits are recorded
in a hash-chained log of their own, `policy-pull.jsonl` (beside the audit log; installed, in
/var/log/socialguard/pull): the proxy's log has one writer, the proxy, and this command runs
beside it (from a systemd timer).

The files it replaces are the ones the proxy reads, found as every command finds them
(--config, $SOCIALGUARD_CONFIG, config/policy.yaml here, /etc/socialguard/policy.yaml). The
exemptions list is replaced only when the repository holds sites/SITE/authorisations.yaml;
then a marker beside it (files.list_source) stops the page and `socialguard exemptions` from
editing it. Otherwise the practice's own list stays byte for byte, and the merged policy is
checked together with it.

Installed, the unit runs this as root (to write /etc/socialguard) and git as the account
`--git-user` names, which can write only its copy of the repository; the commit is read from
`git archive`, never from that user's working tree.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import pwd
import re
import stat
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import click

from socialguard.cli.common import CommandGroup, Refusal, config_option
from socialguard.core.events import Event
from socialguard.core.problems import ConfigError
from socialguard.core.settings import Layout
from socialguard.files.authorisation_edit import locked
from socialguard.files.list_source import RepositoryList, marker_for, marker_text, shown_url
from socialguard.files.policy_files import find_config, layout_for, load_settings
from socialguard.files.policy_merge import (
    AUTHORISATIONS,
    Merged,
    check,
    holds_list,
    stage,
    unpack,
)

PULL_LOG = "policy-pull.jsonl"
STATE = "policy-pull.state"
CHECKOUT = "policy-repo"
# Installed (deploy/install.sh): the git user's home, holding its copy of the repository, and
# the pull log's own folder, the one place the unit may write under /var/log.
INSTALLED_PULL_HOME = Path("var/lib/socialguard-pull")
INSTALLED_PULL_LOGS = Path("var/log/socialguard/pull")
SITE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
FROM_REPOSITORY, KEPT_LOCAL = "repository", "local"


@click.group(cls=CommandGroup, not_loaded="the policy was not loaded; fix these and try again:")
def policy() -> None:
    """One policy for many practices, kept in git."""


@dataclass(frozen=True, slots=True)
class Account:
    """The user git runs as, when it is not the one running the pull."""

    name: str
    uid: int
    gid: int
    home: str


def git_account(name: str | None) -> Account | None:
    """The account `--git-user` names; None when git runs as this process does."""
    if not name:
        return None
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        raise Refusal(
            f"--git-user {name}: there is no such user (deploy/install.sh makes socialguard-pull)"
        ) from None
    if entry.pw_uid == os.geteuid():
        return None
    if os.geteuid() != 0:
        raise Refusal(
            f"--git-user {name}: only root can run git as another user — start the pull with "
            "`sudo systemctl start socialguard-pull`, or leave out --git-user"
        )
    return Account(name, entry.pw_uid, entry.pw_gid, entry.pw_dir)


def _git(*args: str, cwd: Path | None = None, account: Account | None = None) -> bytes:
    env = {**os.environ, "GIT_TERMINAL_PROMPT": "0"}
    if account is not None:
        env["HOME"] = account.home  # its own uid, gid and home, and none of root's groups
    try:
        done = subprocess.run(  # noqa: S603 - fixed git arguments, no shell
            ["git", *args],  # noqa: S607 - git from PATH, as an administrator runs it
            cwd=cwd,
            capture_output=True,
            timeout=120,
            check=False,
            env=env,
            user=account.uid if account else None,
            group=account.gid if account else None,
            extra_groups=[] if account else None,
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        raise Refusal(f"git {args[0]}: {error}") from None
    if done.returncode != 0:
        stderr = done.stderr.decode(errors="replace").strip()[-400:]
        raise Refusal(f"git {' '.join(args[:2])} failed: {stderr}")
    return bytes(done.stdout)


def fetch(
    repo: str, branch: str, checkout: Path, account: Account | None = None
) -> tuple[str, bytes]:
    """Bring `checkout` to the tip of `branch` of `repo`: the commit, and its files as a tar."""
    if not (checkout / ".git").is_dir():
        if account is None:
            checkout.parent.mkdir(parents=True, exist_ok=True)
        _git("clone", "--quiet", "--no-checkout", repo, str(checkout), account=account)
    _git("fetch", "--quiet", repo, branch, cwd=checkout, account=account)
    commit = _git("rev-parse", "--verify", "FETCH_HEAD^{commit}", cwd=checkout, account=account)
    commit_id = commit.decode().strip()
    # A working copy of what was fetched, for IT to look at; the pull itself reads the archive.
    _git("checkout", "--quiet", "--force", "--detach", commit_id, cwd=checkout, account=account)
    return commit_id, _git("archive", "--format=tar", commit_id, cwd=checkout, account=account)


def _write_over(target: Path, data: bytes, mode: int = 0o640) -> None:
    """Replace `target` whole (write aside, sync, rename): the proxy never reads half a file.

    A file replaced keeps its mode, owner and group; a new one takes its folder's owner and
    group (root:socialguard in /etc/socialguard, the page's user in allowlists/), so the
    proxy and the page read what a pull run as root writes.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        old: os.stat_result | None = target.stat()
    except FileNotFoundError:
        old = None
    owner = old or target.parent.stat()
    fd, partial = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
    try:
        with os.fdopen(fd, "wb") as stream:
            stream.write(data)
            stream.flush()
            os.fsync(stream.fileno())
        os.chmod(partial, stat.S_IMODE(old.st_mode) if old else mode)
        if (owner.st_uid, owner.st_gid) != (os.geteuid(), os.getegid()):
            with contextlib.suppress(PermissionError):
                os.chown(partial, owner.st_uid, owner.st_gid)
        os.replace(partial, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(partial)
        raise


@contextlib.contextmanager
def _list_lock(list_path: Path) -> Iterator[None]:
    """The list's edit lock, which the page and `socialguard exemptions` take to change it: a
    change cannot land between the marker and the list. Made as its folder's owner if missing,
    so the page can still take it after a pull run as root."""
    lock = list_path.parent / f".{list_path.name}.lock"
    if not lock.exists():
        _write_over(lock, b"", mode=0o600)
    with locked(list_path):
        yield


@contextlib.contextmanager
def _pull_log(path: Path, settings: object) -> Iterator[object]:
    """The pull log, one writer at a time (an exclusive lock beside it)."""
    from socialguard.audit.log import AuditLog, audit_options  # noqa: PLC0415

    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        lock = open(path.with_name(path.name + ".lock"), "w")  # noqa: SIM115 - closed below
    except OSError as error:
        raise Refusal(f"cannot write the pull log {path}: {error.strerror or error}") from None
    with lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        log = AuditLog(path, options=audit_options(settings))
        try:
            yield log
        finally:
            log.close()


def _installed_root(layout: Layout) -> Path | None:
    """ROOT of an installed layout (base is ROOT/etc/socialguard), else None."""
    return layout.base.parent.parent if layout.name == "installed" else None


def _policy_file(config: Path | None) -> Path:
    found, why = find_config(config)
    if found is None:
        raise click.UsageError(f"{why}: give --config with the policy.yaml the proxy reads")
    return found


def _same(path: Path, data: bytes) -> bool:
    try:
        return path.read_bytes() == data
    except OSError:
        return False


@policy.command()
@click.option("--repo", required=True, help="The policy repository: a folder or a git URL.")
@click.option("--site", required=True, help="This practice's folder under sites/ in it.")
@click.option("--branch", default="main", show_default=True, help="The branch to follow.")
@config_option(
    "The policy.yaml the proxy runs with, replaced when a commit passes. Default: found as "
    "the proxy finds it: $SOCIALGUARD_CONFIG, else config/policy.yaml in the current "
    "directory, else /etc/socialguard/policy.yaml."
)
@click.option(
    "--authorisations",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="The exemptions list the proxy runs with (default: the one the merged policy names, "
    "as the proxy finds it). Replaced only when the repository holds "
    "sites/SITE/authorisations.yaml; otherwise it is the practice's own and stays as it is.",
)
@click.option(
    "--checkout",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="Where the copy of the repository is kept (default: var/policy-repo beside the "
    "checkout's config/; /var/lib/socialguard-pull/policy-repo when installed).",
)
@click.option(
    "--audit-log",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="The proxy's audit log; the pull log goes beside it (default: beside the audit log "
    "policy.yaml names; /var/log/socialguard/pull/ when installed).",
)
@click.option(
    "--git-user",
    default=None,
    help="Run git as this user (the pull itself running as root): the unit gives "
    "socialguard-pull, which can write only its copy of the repository.",
)
def pull(
    repo: str,
    site: str,
    branch: str,
    config: Path | None,
    authorisations: Path | None,
    checkout: Path | None,
    audit_log: Path | None,
    git_user: str | None,
) -> None:
    """Fetch the policy repository, merge shared/ with sites/SITE/, and apply the result only
    if it passes every check of `socialguard validate`. Exit 0 applied (or unchanged), 1 refused.
    """
    if not SITE_NAME.fullmatch(site):
        raise click.BadParameter(
            f"{site!r} is not a folder name under sites/ (use letters, digits, '.', '_', '-')",
            param_hint="--site",
        )
    config = _policy_file(config)
    layout = layout_for(config)
    root = _installed_root(layout)
    # The settings in force say where the log is; if they do not load, the defaults do.
    try:
        current, _raw = load_settings(config if config.is_file() else None)
    except ConfigError:
        current, _raw = load_settings(None)
    if audit_log is not None:
        log_path = audit_log.parent / PULL_LOG
    elif root is not None:
        log_path = root / INSTALLED_PULL_LOGS / PULL_LOG
    else:
        log_path = current.audit_path.parent / PULL_LOG
    if checkout is None:
        home = root / INSTALLED_PULL_HOME if root is not None else layout.audit_path.parent
        checkout = home / CHECKOUT
    state_path = checkout.parent / STATE
    state = _read_state(state_path)
    shown = shown_url(repo)
    commit, archive = fetch(repo, branch, checkout, git_account(git_user))
    origin = RepositoryList(repository=shown, site=site, path=f"sites/{site}/{AUTHORISATIONS}")
    with tempfile.TemporaryDirectory(prefix="socialguard-pull-") as tmp:
        tree, staging = Path(tmp) / "commit", Path(tmp) / "merged"
        try:
            unpack(archive, tree, site)
            merged = stage(tree, site, staging)
            checked = check(merged, config, authorisations)
        except ConfigError as error:
            source = FROM_REPOSITORY if holds_list(tree, site) else KEPT_LOCAL
            problems = [
                str(p).replace(f"{tree}/", "").replace(str(staging), "<merged>")
                for p in error.problems
            ]
            if state.get("rejected") != commit:
                with _pull_log(log_path, current) as log:
                    log.record(  # type: ignore[attr-defined]
                        Event.POLICY_PULL_REJECTED,
                        {
                            "commit": commit,
                            "repo": shown,
                            "site": site,
                            "authorisations": source,
                            "errors": problems,
                            "detail": "the merged policy did not pass validation; the policy "
                            "in force is unchanged",
                        },
                    )
                _write_state(state_path, {**state, "rejected": commit})
            raise Refusal(
                f"commit {commit[:12]} of {shown} for site {site} was refused; the policy in "
                f"force is unchanged (recorded in {log_path})",
                problems,
            ) from None
        list_path = checked.authorisations
        try:
            changed = _apply(merged, config, list_path, origin)
        except OSError as error:
            raise Refusal(
                f"cannot replace {error.filename or 'the policy files'}: "
                f"{error.strerror or error} — run the pull as a user that may write the "
                "policy files (installed: sudo systemctl start socialguard-pull); the proxy "
                "checks the files again before it uses them"
            ) from None
    new = checked.policy
    source = KEPT_LOCAL if merged.authorisations is None else FROM_REPOSITORY
    if not changed and state.get("applied") == commit:
        click.echo(f"unchanged: commit {commit[:12]} is the policy in force")
        return
    with _pull_log(log_path, new.settings) as log:
        log.record(  # type: ignore[attr-defined]
            Event.POLICY_PULLED,
            {
                "commit": commit,
                "repo": shown,
                "site": site,
                "policy_digest": new.digest,
                "exemptions": len(new.authorisations.exemptions),
                "authorisations": source,
                "authorisations_path": str(list_path),
                "changed": changed,
            },
        )
    _write_state(state_path, {"applied": commit})
    click.echo(
        f"applied: commit {commit[:12]} for site {site} — {len(new.catalog.services)} services, "
        f"{len(new.authorisations.exemptions)} exemptions, policy {new.digest}"
        + ("" if changed else " (the files in force already held it)")
    )
    if source == FROM_REPOSITORY:
        click.echo(
            f"exemptions: from the repository (sites/{site}/{AUTHORISATIONS}), copied to "
            f"{list_path}; the page and `socialguard exemptions` leave it to the repository"
        )
    else:
        click.echo(
            f"exemptions: the practice's own list {list_path} is kept as it is (the repository "
            f"has no sites/{site}/{AUTHORISATIONS})"
        )
        if merged.shared_list_unused:
            click.echo(
                f"note: shared/{AUTHORISATIONS} does not apply to site {site}, which keeps its "
                "own list: its approvers and exemptions must be in that list"
            )


def _apply(merged: Merged, config: Path, list_path: Path, origin: RepositoryList) -> bool:
    """Write what differs from the files in force; whether anything did.

    Extra files first, then (under the list's edit lock) the marker and the list, then
    policy.yaml; the marker goes last when the list becomes the practice's again.
    """
    marker = marker_for(list_path)
    changed = False

    def put(target: Path, data: bytes) -> None:
        nonlocal changed
        if not _same(target, data):
            _write_over(target, data)
            changed = True

    for extra in merged.extras:
        put(config.parent / extra.name, extra.read_bytes())
    if merged.authorisations is not None:
        with _list_lock(list_path):
            put(marker, marker_text(origin))
            put(list_path, merged.authorisations.read_bytes())
    put(config, merged.policy.read_bytes())
    if merged.authorisations is None and marker.exists():
        with _list_lock(list_path):
            marker.unlink()
        changed = True
    return changed


def _read_state(path: Path) -> dict[str, str]:
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return {k: str(v) for k, v in value.items()} if isinstance(value, dict) else {}


def _write_state(path: Path, state: dict[str, str]) -> None:
    _write_over(path, json.dumps(state).encode())
