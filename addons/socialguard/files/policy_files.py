"""Load the three files that make a policy, validated together, or refuse them all.

A policy either loads whole or not at all: a caller never sees half a policy.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from socialguard.core.authorisations import EMPTY, Authorisations, parse_authorisations
from socialguard.core.catalog import Catalog
from socialguard.core.policy import Policy, digest_of
from socialguard.core.problems import ConfigError, Problem, Problems
from socialguard.core.settings import (
    CURRENT_DIRECTORY,
    DEFAULT_AUDIT_PATH,
    DEFAULT_AUTHORISATIONS_PATH,
    DEFAULT_CA_DIR,
    DEFAULT_POLICY_PATH,
    INSTALLED_POLICY_PATH,
    Layout,
    Settings,
    parse_settings,
)
from socialguard.files.catalog_file import load_catalog
from socialguard.files.signup_file import load_policy_endpoints
from socialguard.files.yamlfile import AUTHORISATIONS_MAX_BYTES, SETTINGS_MAX_BYTES, read_yaml

ENVIRONMENT_VARIABLE = "SOCIALGUARD_CONFIG"
# Where the installed layout is looked for (default /): the tests point it at an empty folder,
# so an installation on the machine running them never leaks into them.
ROOT_VARIABLE = "SOCIALGUARD_ROOT"


def installed_policy_path() -> Path:
    root = os.environ.get(ROOT_VARIABLE)
    if not root:
        return INSTALLED_POLICY_PATH
    return Path(root) / INSTALLED_POLICY_PATH.relative_to("/")


SEARCH_ORDER = (
    f"--config, then ${ENVIRONMENT_VARIABLE}, then config/policy.yaml in the current "
    f"directory, then {INSTALLED_POLICY_PATH}"
)


def find_config(config: Path | None) -> tuple[Path | None, str]:
    """The policy file in force and how it was found: --config, then $SOCIALGUARD_CONFIG, then
    the checkout's config/policy.yaml (current directory), then /etc/socialguard/policy.yaml.

    (None, why) when there is none: the embedded defaults.
    """
    if config is not None:
        return config, "--config"
    named = os.environ.get(ENVIRONMENT_VARIABLE)
    if named:
        return Path(named), ENVIRONMENT_VARIABLE
    if DEFAULT_POLICY_PATH.is_file():
        return DEFAULT_POLICY_PATH, "the checkout's config/policy.yaml"
    installed = installed_policy_path()
    if installed.is_file():
        return installed, "the installed policy"
    return None, f"no policy file found ({SEARCH_ORDER})"


def layout_for(config: Path | None) -> Layout:
    """Where relative paths in `config` point and which files it uses when it names none.

    ROOT/etc/socialguard/policy.yaml: installed, under ROOT
    (/etc/socialguard/allowlists/authorisations.yaml, /var/lib/socialguard/ca,
    /var/log/socialguard/audit.jsonl when ROOT is /). DIR/config/policy.yaml: a checkout,
    under DIR (allowlists/, var/). Any other file: paths written in it
    are read beside it, the defaults of those it leaves out are under the current directory.
    No file: the current directory.
    """
    if config is None:
        return CURRENT_DIRECTORY
    folder = config.parent
    if folder.name == "socialguard" and folder.parent.name == "etc":
        root = folder.parent.parent
        return Layout.installed(root if str(root) not in ("", ".") else Path("/"))
    if folder.name == "config":
        return Layout.checkout(folder.parent)
    # Paths written in the file are read beside it; the ones it leaves out keep their default
    # place under the current directory, as they always have (so `run --config FILE` and a
    # `ca export` run in the same directory share one CA).
    return Layout(
        name="beside the policy file",
        base=folder,
        authorisations=DEFAULT_AUTHORISATIONS_PATH,
        ca_dir=DEFAULT_CA_DIR,
        audit_path=DEFAULT_AUDIT_PATH,
    )


@dataclass(frozen=True, slots=True)
class PolicyPaths:
    """Where the policy comes from. `None` means found by the search order (find_config).

    `pinned` paths were in force once: the proxy's watcher pins the files it has loaded, so a
    file deleted under it is a rejection (the last good policy stays), never a quiet fall back
    to the embedded defaults.
    """

    config: Path | None = None
    authorisations: Path | None = None
    origin: str | None = None  # how `config` was found, once fixed()
    pinned: bool = False

    def config_path(self) -> Path | None:
        return find_config(self.config)[0]

    def found_by(self) -> str:
        return self.origin or find_config(self.config)[1]

    def fixed(self) -> PolicyPaths:
        """The same paths with the policy file found now, so a running proxy keeps to it."""
        config, origin = find_config(self.config)
        return PolicyPaths(config, self.authorisations, origin)

    def authorisations_path(self, settings: Settings | None = None) -> Path | None:
        """--authorisations, else policy.yaml's `authorisations:`, else the layout's default
        when that file exists."""
        if self.authorisations is not None:
            return self.authorisations
        if settings is None:
            settings = load_settings(self.config_path())[0]
        path = settings.authorisations_path
        return path if path.is_file() else None

    def watched(self, settings: Settings | None = None) -> list[Path]:
        return [
            p for p in (self.config_path(), self.authorisations_path(settings)) if p is not None
        ]

    def pin(self, settings: Settings | None = None) -> PolicyPaths:
        """These paths with each file now in use named outright, so its absence is refused.
        `settings` are those in force (read from the policy file when not given)."""
        config, origin = find_config(self.config)
        authorisations = self.authorisations_path(settings)
        return PolicyPaths(config, authorisations, self.origin or origin, pinned=True)


def load_policy(paths: PolicyPaths) -> Policy:
    """Read and validate settings, catalogue, authorisations and the signup guard's endpoints;
    raises ConfigError with every problem found."""
    config, found_by = find_config(paths.config)
    named = (
        (config, f"the policy file (from {found_by})"),
        (paths.authorisations, "the authorisation list"),
    )
    missing: list[Problem] = []  # both named at once if both are gone
    for path, what in named:
        if path is not None:
            try:
                check_exists(path, what, was_loaded=paths.pinned)
            except ConfigError as error:
                missing.extend(error.problems)
    if missing:
        raise ConfigError(missing)
    settings, settings_raw = load_settings(config)
    return load_with_settings(
        settings,
        settings_raw,
        str(config or "<embedded defaults>"),
        paths.authorisations_path(settings),
    )


def load_with_settings(
    settings: Settings, settings_raw: bytes, policy_file: str, authorisations_path: Path | None
) -> Policy:
    """The rest of a policy once its settings are read: catalogue, authorisations (none when
    `authorisations_path` is None) and the signup guard's endpoints, validated together.
    `policy_pull` uses it to check merged files as they will be read where they are going."""
    # The endpoints file's problems are reported with the other files', all at once.
    endpoint_problems: list[Problem] = []
    try:
        endpoints, endpoints_raw = load_policy_endpoints(settings, policy_file)
    except ConfigError as error:
        endpoints, endpoints_raw = (), b""
        endpoint_problems = error.problems
    try:
        catalog, catalog_raws = load_catalog(settings.catalogs, settings.practice.domains)
        if authorisations_path is None:
            authorisations, authorisations_raw = EMPTY, b""
        else:
            authorisations, authorisations_raw = load_authorisations(
                authorisations_path, catalog, settings
            )
    except ConfigError as error:
        raise ConfigError([*error.problems, *endpoint_problems]) from None
    if endpoint_problems:
        raise ConfigError(endpoint_problems)
    # The practice's endpoints file counts only when named, so digests without one are as before.
    practice_raws = [endpoints_raw] if settings.signup_endpoints is not None else []
    return Policy(
        settings=settings,
        catalog=catalog,
        authorisations=authorisations,
        digest=digest_of([settings_raw, *catalog_raws, authorisations_raw, *practice_raws]),
        signup_endpoints=endpoints,
    )


def load_settings(path: Path | None) -> tuple[Settings, bytes]:
    """Read policy.yaml; `None` or a missing default file means the embedded defaults."""
    if path is None:
        return parse_settings(None, "<embedded defaults>"), b""
    data, raw = read_yaml(path, SETTINGS_MAX_BYTES)
    settings = parse_settings(data, str(path), layout_for(path))
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


def check_exists(path: Path, what: str, *, was_loaded: bool = False) -> None:
    """Refuse a file the user named (or that was in force) that is not there, rather than
    quietly using defaults."""
    if path.is_file():
        return
    if was_loaded:
        message = (
            f"{what} was in force and is now missing (deleted or moved) — put it back; "
            "to run on the embedded defaults, restart the proxy without it"
        )
    else:
        message = f"{what} not found — check the path"
    raise ConfigError([Problem(str(path), 0, message)])


def load_authorisations(
    path: Path, catalog: Catalog, settings: Settings
) -> tuple[Authorisations, bytes]:
    data, raw = read_yaml(path, AUTHORISATIONS_MAX_BYTES)
    return parse_authorisations(data, str(path), catalog, settings), raw
