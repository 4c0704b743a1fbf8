"""`socialguard policy pull`: take this practice's policy from the shared git repository,
apply it only if it passes the checks of `socialguard validate`, and record what happened.

A bad commit never reaches the gateway: the merged files are checked in a staging folder, and
only a policy that loads whole replaces the files in force (each by an atomic rename; the
running proxy then reloads them as it does any edit). Applied and refused commits are recorded
in a hash-chained log of their own, `policy-pull.jsonl` beside the audit log: the proxy's log
has one writer, the proxy, and this command runs beside it (from a systemd timer).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import click

from socialguard.cli.common import CommandGroup, Refusal
from socialguard.core.events import Event
from socialguard.core.problems import ConfigError
from socialguard.core.settings import DEFAULT_AUTHORISATIONS_PATH, DEFAULT_POLICY_PATH
from socialguard.files.policy_files import PolicyPaths, load_policy, load_settings
from socialguard.files.policy_merge import stage

PULL_LOG = "policy-pull.jsonl"
STATE = "policy-pull.state"


@click.group(cls=CommandGroup, not_loaded="the policy was not loaded; fix these and try again:")
def policy() -> None:
    """One policy for many practices, kept in git."""


def _git(*args: str, cwd: Path | None = None) -> str:
    try:
        done = subprocess.run(  # noqa: S603 - fixed git arguments, no shell
            ["git", *args],  # noqa: S607 - git from PATH, as an administrator runs it
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
            env={**os.environ, "GIT_TERMINAL_PROMPT": "0"},
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        raise Refusal(f"git {args[0]}: {error}") from None
    if done.returncode != 0:
        raise Refusal(f"git {' '.join(args[:2])} failed: {done.stderr.strip()[-400:]}")
    return done.stdout.strip()


def fetch(repo: str, branch: str, checkout: Path) -> str:
    """Bring `checkout` to the tip of `branch` of `repo`; returns the commit."""
    if not (checkout / ".git").is_dir():
        checkout.parent.mkdir(parents=True, exist_ok=True)
        _git("clone", "--quiet", "--no-checkout", repo, str(checkout))
    _git("fetch", "--quiet", repo, branch, cwd=checkout)
    _git("checkout", "--quiet", "--force", "--detach", "FETCH_HEAD", cwd=checkout)
    return _git("rev-parse", "HEAD", cwd=checkout)


def _write_over(target: Path, data: bytes) -> None:
    """Replace `target` whole (write aside, sync, rename): the proxy never reads half a file."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, partial = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
    try:
        with os.fdopen(fd, "wb") as stream:
            stream.write(data)
            stream.flush()
            os.fsync(stream.fileno())
        os.chmod(partial, 0o640)
        os.replace(partial, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(partial)
        raise


@contextlib.contextmanager
def _pull_log(path: Path, settings: object) -> Iterator[object]:
    """The pull log, one writer at a time (an exclusive lock beside it)."""
    from socialguard.audit.log import AuditLog, audit_options  # noqa: PLC0415

    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(path.name + ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        log = AuditLog(path, options=audit_options(settings))
        try:
            yield log
        finally:
            log.close()


@policy.command()
@click.option("--repo", required=True, help="The policy repository: a folder or a git URL.")
@click.option("--site", required=True, help="This practice's folder under sites/ in it.")
@click.option("--branch", default="main", show_default=True, help="The branch to follow.")
@click.option(
    "--config",
    "config",
    type=click.Path(path_type=Path, dir_okay=False),
    default=DEFAULT_POLICY_PATH,
    show_default=True,
    help="The policy.yaml the proxy runs with (replaced when a commit passes).",
)
@click.option(
    "--authorisations",
    type=click.Path(path_type=Path, dir_okay=False),
    default=DEFAULT_AUTHORISATIONS_PATH,
    show_default=True,
    help="The exemptions list the proxy runs with (replaced when a commit passes).",
)
@click.option(
    "--checkout",
    type=click.Path(path_type=Path, file_okay=False),
    default=Path("var/policy-repo"),
    show_default=True,
    help="Where the repository is kept on this gateway.",
)
@click.option(
    "--audit-log",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="The proxy's audit log (default from policy.yaml); the pull log goes beside it.",
)
def pull(
    repo: str,
    site: str,
    branch: str,
    config: Path,
    authorisations: Path,
    checkout: Path,
    audit_log: Path | None,
) -> None:
    """Fetch the policy repository, merge shared/ with sites/SITE/, and apply the result only
    if it passes every check of `socialguard validate`. Exit 0 applied (or unchanged), 1 refused.
    """
    # The settings in force say where the log is; if they do not load, the defaults do.
    try:
        current, _raw = load_settings(config if config.is_file() else None)
    except ConfigError:
        current, _raw = load_settings(None)
    log_path = (audit_log or current.audit_path).parent / PULL_LOG
    state_path = checkout.parent / STATE
    state = _read_state(state_path)
    commit = fetch(repo, branch, checkout)
    with tempfile.TemporaryDirectory(prefix="socialguard-pull-") as tmp:
        staging = Path(tmp)
        try:
            merged = stage(checkout, site, staging)
            check_policy = _for_check(merged.policy, config.parent, staging)
            new = load_policy(PolicyPaths(check_policy, merged.authorisations))
        except ConfigError as error:
            problems = [str(p).replace(str(staging), "<merged>") for p in error.problems]
            if state.get("rejected") != commit:
                with _pull_log(log_path, current) as log:
                    log.record(  # type: ignore[attr-defined]
                        Event.POLICY_PULL_REJECTED,
                        {
                            "commit": commit,
                            "repo": repo,
                            "site": site,
                            "errors": problems,
                            "detail": "the merged policy did not pass validation; the policy "
                            "in force is unchanged",
                        },
                    )
                _write_state(state_path, {**state, "rejected": commit})
            raise Refusal(
                f"commit {commit[:12]} of {repo} for site {site} was refused; the policy in "
                f"force is unchanged (recorded in {log_path})",
                problems,
            ) from None
        if state.get("applied") == commit and config.is_file():
            click.echo(f"unchanged: commit {commit[:12]} is the policy in force")
            return
        for extra in merged.extras:
            _write_over(config.parent / extra.name, extra.read_bytes())
        _write_over(authorisations, merged.authorisations.read_bytes())
        _write_over(config, merged.policy.read_bytes())
    with _pull_log(log_path, new.settings) as log:
        log.record(  # type: ignore[attr-defined]
            Event.POLICY_PULLED,
            {
                "commit": commit,
                "repo": repo,
                "site": site,
                "policy_digest": new.digest,
                "exemptions": len(new.authorisations.exemptions),
            },
        )
    _write_state(state_path, {"applied": commit})
    click.echo(
        f"applied: commit {commit[:12]} for site {site} — {len(new.catalog.services)} services, "
        f"{len(new.authorisations.exemptions)} exemptions, policy {new.digest}"
    )


def _for_check(policy_path: Path, config_dir: Path, staging: Path) -> Path:
    """The merged policy as the checks must read it: catalogue files that the pull brings
    (named under the config folder) read from the staging copy, not the old ones in force."""
    import yaml  # noqa: PLC0415

    data = yaml.safe_load(policy_path.read_text(encoding="utf-8")) or {}
    catalogs = data.get("catalogs") if isinstance(data, dict) else None
    if not isinstance(catalogs, list):
        return policy_path
    staged = {p.name for p in staging.glob("*.y*ml")}
    data["catalogs"] = [
        str(staging / Path(c).name)
        if isinstance(c, str) and Path(c).name in staged and Path(c).parent == config_dir
        else c
        for c in catalogs
    ]
    checked = staging / "policy-as-checked.yaml"
    checked.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return checked


def _read_state(path: Path) -> dict[str, str]:
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return {k: str(v) for k, v in value.items()} if isinstance(value, dict) else {}


def _write_state(path: Path, state: dict[str, str]) -> None:
    _write_over(path, json.dumps(state).encode())
