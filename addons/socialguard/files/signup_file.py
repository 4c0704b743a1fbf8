"""The signup guard's known endpoints on disk: the file shipped beside the catalogue, and the
practice's own file that policy.yaml may name (`signup_guard.endpoints`)."""

from __future__ import annotations

import functools
import importlib.resources
from pathlib import Path

from socialguard.core.problems import ConfigError, Problem
from socialguard.core.settings import Settings
from socialguard.core.signup_endpoints import Endpoint, parse_endpoints, parse_practice_endpoints
from socialguard.files.yamlfile import read_yaml


def embedded_endpoints_path() -> Path:
    """data/signup_endpoints.yaml inside the package."""
    return Path(str(importlib.resources.files("socialguard") / "data" / "signup_endpoints.yaml"))


def load_endpoints(path: Path) -> tuple[Endpoint, ...]:
    """Read and validate an endpoints file; ConfigError names its file and line."""
    data, _raw = read_yaml(path)
    return parse_endpoints(data, str(path))


@functools.cache
def embedded_endpoints() -> tuple[Endpoint, ...]:
    """The shipped endpoints, read once: they change only with the package."""
    return load_endpoints(embedded_endpoints_path())


def load_policy_endpoints(
    settings: Settings, policy_file: str
) -> tuple[tuple[Endpoint, ...], bytes]:
    """The endpoints a policy uses: the shipped ones, with the practice's own file over them when
    policy.yaml names one. Returns that file's bytes too (for the policy's digest), or b"".

    `policy_file` is where the setting is written, so a file that is not there is reported at
    the line that names it."""
    shipped = embedded_endpoints()
    path = settings.signup_endpoints
    if path is None:
        return shipped, b""
    if not path.exists():
        base = settings.layout.base
        folder = "the current directory" if str(base) in ("", ".") else str(base)
        raise ConfigError(
            [
                Problem(
                    policy_file,
                    settings.signup_endpoints_line,
                    f"signup_guard.endpoints: {path} does not exist — write the practice's "
                    "endpoints file there (the format of the shipped one, docs/SIGNUP.md) or "
                    f"correct the path (a relative path is read from {folder})",
                )
            ]
        )
    data, raw = read_yaml(path)
    return parse_practice_endpoints(data, str(path), shipped), raw
