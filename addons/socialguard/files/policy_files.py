"""Load the three files that make a policy, validated together, or refuse them all.

A policy either loads whole or not at all: a caller never sees half a policy.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from socialguard.core.authorisations import EMPTY, Authorisations, parse_authorisations
from socialguard.core.catalog import Catalog
from socialguard.core.policy import Policy, digest_of
from socialguard.core.problems import ConfigError, Problem, Problems
from socialguard.core.settings import (
    DEFAULT_AUTHORISATIONS_PATH,
    DEFAULT_POLICY_PATH,
    Settings,
    parse_settings,
)
from socialguard.files.catalog_file import load_catalog
from socialguard.files.yamlfile import read_yaml


@dataclass(frozen=True, slots=True)
class PolicyPaths:
    """Where the policy comes from. `None` means the default path, if that file exists."""

    config: Path | None = None
    authorisations: Path | None = None

    def config_path(self) -> Path | None:
        if self.config is not None:
            return self.config
        return DEFAULT_POLICY_PATH if DEFAULT_POLICY_PATH.is_file() else None

    def authorisations_path(self) -> Path | None:
        if self.authorisations is not None:
            return self.authorisations
        return DEFAULT_AUTHORISATIONS_PATH if DEFAULT_AUTHORISATIONS_PATH.is_file() else None

    def watched(self) -> list[Path]:
        return [p for p in (self.config_path(), self.authorisations_path()) if p is not None]


def load_policy(paths: PolicyPaths) -> Policy:
    """Read and validate settings, catalogue and authorisations; raises ConfigError."""
    if paths.config is not None:
        check_exists(paths.config, "the policy file")
    if paths.authorisations is not None:
        check_exists(paths.authorisations, "the authorisation list")
    settings, settings_raw = load_settings(paths.config_path())
    catalog, catalog_raws = load_catalog(settings.catalogs, settings.practice.domains)
    authorisations_path = paths.authorisations_path()
    if authorisations_path is None:
        authorisations, authorisations_raw = EMPTY, b""
    else:
        authorisations, authorisations_raw = load_authorisations(
            authorisations_path, catalog, settings
        )
    return Policy(
        settings=settings,
        catalog=catalog,
        authorisations=authorisations,
        digest=digest_of([settings_raw, *catalog_raws, authorisations_raw]),
    )


def load_settings(path: Path | None) -> tuple[Settings, bytes]:
    """Read policy.yaml; `None` or a missing default file means the embedded defaults."""
    if path is None:
        return parse_settings(None, "<embedded defaults>"), b""
    data, raw = read_yaml(path)
    settings = parse_settings(data, str(path))
    check_directory_files(settings)
    return settings, raw


def check_directory_files(settings: Settings) -> None:
    """identity.ldap's CA and password files must be there and readable before sign-in needs
    them: a missing CA would otherwise show only as every member of staff being refused."""
    ldap = settings.ldap
    if ldap is None:
        return
    problems = Problems(ldap.source)
    for key, path, what, fix in (
        (
            "ca_file",
            ldap.ca_file,
            "the directory's CA certificate (PEM)",
            "export the CA that signed the domain controller's certificate to this path",
        ),
        (
            "bind_password_file",
            ldap.bind_password_file,
            "the bind password file",
            "write the service account's password into it (chmod 600, owned by socialguard)",
        ),
    ):
        try:
            content = path.read_bytes()
        except FileNotFoundError:
            problems.add(
                ldap.lines.get(key, 0),
                f"identity.ldap.{key}: {path}: {what} does not exist — {fix}",
            )
            continue
        except OSError as error:
            problems.add(
                ldap.lines.get(key, 0),
                f"identity.ldap.{key}: {path}: cannot read {what}: {error.strerror} — give the "
                "socialguard user read access",
            )
            continue
        if key == "ca_file" and b"-----BEGIN CERTIFICATE-----" not in content:
            problems.add(
                ldap.lines.get(key, 0),
                f"identity.ldap.{key}: {path}: not a PEM certificate — {fix}",
            )
        if key == "bind_password_file" and not content.strip():
            problems.add(
                ldap.lines.get(key, 0), f"identity.ldap.{key}: {path}: the file is empty — {fix}"
            )
    problems.raise_if_any()


def check_exists(path: Path, what: str) -> None:
    """Refuse a file the user named that is not there, rather than quietly using defaults."""
    if not path.is_file():
        raise ConfigError([Problem(str(path), 0, f"{what} not found — check the path")])


def load_authorisations(
    path: Path, catalog: Catalog, settings: Settings
) -> tuple[Authorisations, bytes]:
    data, raw = read_yaml(path)
    return parse_authorisations(data, str(path), catalog, settings), raw
