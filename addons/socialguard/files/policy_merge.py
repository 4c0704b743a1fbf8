"""One policy for many practices: the shared files of a policy repository merged with one
practice's own, written to a staging folder for `socialguard validate`'s checks.

The repository's layout (docs/FLEET.md):

    shared/policy.yaml           settings every practice gets (enforced categories, catalogs…)
    shared/authorisations.yaml   approvers, and exemptions every practice gets (rare), for
                                 the practices whose lists the repository holds
    shared/*.yaml                other files (catalogue additions), copied beside the policy
    sites/NAME/policy.yaml       this practice's settings (site, zones, devices, groups, …)
    sites/NAME/authorisations.yaml  this practice's own exemptions, if IT keeps them here;
                                 without it the practice keeps its list on the gateway

Settings: a practice's key replaces the shared one, except mappings (practice, audit,
identity, …), which are merged one level down as policy.yaml itself is over the defaults.
Authorisations: only for a practice whose list the repository holds (sites/NAME/
authorisations.yaml): approvers are joined, exemptions listed shared first then the
practice's. A practice without that file keeps its own list on the gateway, and
shared/authorisations.yaml does not apply to it.

The commit is read from `git archive`'s tar stream (unpack), never from a working tree: the
pull may run git as a user of its own, and then reads nothing that user could have pointed
elsewhere with a symbolic link.
"""

from __future__ import annotations

import io
import tarfile
from dataclasses import dataclass, replace
from pathlib import Path, PurePosixPath
from typing import Any

import yaml

from socialguard.core.policy import Policy
from socialguard.core.problems import ConfigError, Problem
from socialguard.core.settings import parse_settings
from socialguard.files.policy_files import check_directory_files, layout_for, load_with_settings
from socialguard.files.yamlfile import SETTINGS_MAX_BYTES, read_yaml

POLICY = "policy.yaml"
AUTHORISATIONS = "authorisations.yaml"


@dataclass(frozen=True, slots=True)
class Merged:
    """The staged files: the merged policy, the merged list (None: the practice keeps its
    own), the extra files copied, and whether shared/authorisations.yaml went unused."""

    policy: Path
    authorisations: Path | None
    extras: tuple[Path, ...]
    shared_list_unused: bool = False


def holds_list(tree: Path, site: str) -> bool:
    """Whether the repository keeps `site`'s exemptions list (sites/SITE/authorisations.yaml)."""
    return (tree / "sites" / site / AUTHORISATIONS).is_file()


def unpack(archive: bytes, dest: Path, site: str) -> None:
    """The plain files of a commit (a `git archive` tar) under `dest`. A symbolic or hard link
    where the pull reads (shared/, sites/SITE/) is a problem: commit the file itself."""
    problems = []
    read_here = ("shared/", f"sites/{site}/")
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        for member in tar:
            parts = PurePosixPath(member.name).parts
            if not parts or parts[0] == "/" or ".." in parts:
                continue
            if member.isdir():
                dest.joinpath(*parts).mkdir(parents=True, exist_ok=True)
            elif member.isfile():
                target = dest.joinpath(*parts)
                target.parent.mkdir(parents=True, exist_ok=True)
                stream = tar.extractfile(member)
                target.write_bytes(stream.read() if stream else b"")
            elif member.name.startswith(read_here):
                problems.append(
                    Problem(
                        member.name,
                        0,
                        "a link, not a file: the pull reads plain files only — commit the "
                        "file itself",
                    )
                )
    if problems:
        raise ConfigError(problems)


def _plain(value: Any) -> Any:
    """Located mappings and lists as plain ones, for yaml.safe_dump."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _mapping(path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {}
    data, _raw = read_yaml(path)
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError([Problem(str(path), 1, "must be a mapping (key: value)")])
    return dict(_plain(data))


def merge_settings(shared: dict[str, Any], site: dict[str, Any]) -> dict[str, Any]:
    merged = dict(shared)
    for key, value in site.items():
        if isinstance(merged.get(key), dict) and isinstance(value, dict):
            merged[key] = {**merged[key], **value}
        else:
            merged[key] = value
    return merged


def merge_authorisations(shared: dict[str, Any], site: dict[str, Any]) -> dict[str, Any]:
    merged = merge_settings(shared, site)
    approvers = [*(shared.get("approvers") or []), *(site.get("approvers") or [])]
    if approvers:
        merged["approvers"] = list(dict.fromkeys(approvers))
    exemptions = [*(shared.get("exemptions") or []), *(site.get("exemptions") or [])]
    if exemptions or "exemptions" in merged:
        merged["exemptions"] = exemptions
    return merged


def stage(checkout: Path, site: str, staging: Path) -> Merged:
    """Merge the shared and `site` files of a checked-out repository into `staging`."""
    shared_dir, site_dir = checkout / "shared", checkout / "sites" / site
    if not site_dir.is_dir():
        known = sorted(p.name for p in (checkout / "sites").glob("*") if p.is_dir())
        raise ConfigError(
            [
                Problem(
                    str(site_dir),
                    0,
                    f"no folder for site {site!r} in the policy repository "
                    f"(sites there: {', '.join(known) or 'none'})",
                )
            ]
        )
    staging.mkdir(parents=True, exist_ok=True)
    extras = []
    for extra in sorted(shared_dir.glob("*.y*ml")) if shared_dir.is_dir() else []:
        if extra.name not in (POLICY, AUTHORISATIONS):
            target = staging / extra.name
            target.write_bytes(extra.read_bytes())
            extras.append(target)
    settings = merge_settings(_mapping(shared_dir / POLICY), _mapping(site_dir / POLICY))
    header = f"# Made by `socialguard policy pull` for site {site}: shared/ + sites/{site}/.\n"
    policy_path = staging / POLICY
    policy_path.write_text(
        header + yaml.safe_dump(settings, sort_keys=False, allow_unicode=True), encoding="utf-8"
    )
    if not holds_list(checkout, site):
        return Merged(
            policy=policy_path,
            authorisations=None,
            extras=tuple(extras),
            shared_list_unused=(shared_dir / AUTHORISATIONS).is_file(),
        )
    authorisations = merge_authorisations(
        _mapping(shared_dir / AUTHORISATIONS), _mapping(site_dir / AUTHORISATIONS)
    )
    auth_path = staging / AUTHORISATIONS
    auth_path.write_text(
        header + yaml.safe_dump(authorisations, sort_keys=False, allow_unicode=True),
        encoding="utf-8",
    )
    return Merged(policy=policy_path, authorisations=auth_path, extras=tuple(extras))


@dataclass(frozen=True, slots=True)
class Checked:
    """The merged policy as validated, and the list it is to run with."""

    policy: Policy
    authorisations: Path


def check(merged: Merged, config: Path, authorisations: Path | None = None) -> Checked:
    """Every check of `socialguard validate` on the merged files, read as the proxy will read
    them once the policy is at `config`: its relative paths from there, the files the pull
    brings beside it (catalogues, a signup endpoints file) from staging, and the list the
    merged policy names (or `authorisations`). That list is the merged one when the repository
    holds it, else the practice's own as it is (none yet: no exemptions). Raises ConfigError
    naming every problem."""
    data, settings_raw = read_yaml(merged.policy, SETTINGS_MAX_BYTES)
    settings = parse_settings(data, str(merged.policy), layout_for(config))
    check_directory_files(settings)
    staged = {extra.name: extra for extra in merged.extras}
    folder = config.resolve().parent

    def brought(path: Path) -> Path:
        return (
            staged[path.name] if path.name in staged and path.resolve().parent == folder else path
        )

    list_path = authorisations or settings.authorisations_path
    checked_list = merged.authorisations or (list_path if list_path.is_file() else None)
    as_read = replace(
        settings,
        catalogs=tuple(brought(c) for c in settings.catalogs),
        signup_endpoints=brought(settings.signup_endpoints) if settings.signup_endpoints else None,
    )
    policy = load_with_settings(as_read, settings_raw, str(merged.policy), checked_list)
    return Checked(policy=policy, authorisations=list_path)
