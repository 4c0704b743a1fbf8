"""The signup guard's known endpoints on disk: the file shipped beside the catalogue."""

from __future__ import annotations

import functools
import importlib.resources
from pathlib import Path

from socialguard.core.signup import Endpoint, parse_endpoints
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
