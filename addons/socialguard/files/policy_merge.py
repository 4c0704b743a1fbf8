"""One policy for many practices: the shared files of a policy repository merged with one
practice's own, written to a staging folder for `socialguard validate`'s checks.

The repository's layout (docs/FLEET.md):

    shared/policy.yaml           settings every practice gets (enforced categories, catalogs…)
    shared/authorisations.yaml   approvers, and exemptions every practice gets (rare)
    shared/*.yaml                other files (catalogue additions), copied beside the policy
    sites/NAME/policy.yaml       this practice's settings (site, zones, devices, groups, …)
    sites/NAME/authorisations.yaml  this practice's own exemptions

Settings: a practice's key replaces the shared one, except mappings (practice, audit,
identity, …), which are merged one level down as policy.yaml itself is over the defaults.
Authorisations: approvers are joined, exemptions listed shared first then the practice's.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from socialguard.core.problems import ConfigError, Problem
from socialguard.files.yamlfile import read_yaml

POLICY = "policy.yaml"
AUTHORISATIONS = "authorisations.yaml"


@dataclass(frozen=True, slots=True)
class Merged:
    """The staged files: the merged policy, authorisations and the extra files copied."""

    policy: Path
    authorisations: Path
    extras: tuple[Path, ...]


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
    authorisations = merge_authorisations(
        _mapping(shared_dir / AUTHORISATIONS), _mapping(site_dir / AUTHORISATIONS)
    )
    header = f"# Made by `socialguard policy pull` for site {site}: shared/ + sites/{site}/.\n"
    policy_path, auth_path = staging / POLICY, staging / AUTHORISATIONS
    policy_path.write_text(
        header + yaml.safe_dump(settings, sort_keys=False, allow_unicode=True), encoding="utf-8"
    )
    auth_path.write_text(
        header + yaml.safe_dump(authorisations, sort_keys=False, allow_unicode=True),
        encoding="utf-8",
    )
    return Merged(policy=policy_path, authorisations=auth_path, extras=tuple(extras))
