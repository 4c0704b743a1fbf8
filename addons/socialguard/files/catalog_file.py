"""The catalogue files on disk: the shipped one inside the package and the practice's extras."""

from __future__ import annotations

import importlib.resources
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import yaml

from socialguard.core.catalog import Catalog, parse_catalogs
from socialguard.core.problems import ConfigError, Problem
from socialguard.files import yamlfile
from socialguard.files.yamlfile import CATALOG_MAX_BYTES, read_bounded, read_yaml

try:
    from yaml import CSafeLoader as _SafeBase
except ImportError:  # pragma: no cover - PyYAML built without libyaml
    from yaml import SafeLoader as _SafeBase  # type: ignore[assignment]


def embedded_catalog_path() -> Path:
    """The catalogue shipped inside the package."""
    return Path(str(importlib.resources.files("socialguard") / "data" / "catalog.yaml"))


class _FastLoader(_SafeBase):
    """libyaml's safe loader with the same line-keeping mappings and lists as yamlfile's.

    An imported list of a million domains takes seconds to read this way instead of a quarter
    of a minute; any problem falls back to the careful reader, whose messages name the line.
    """


# The same construction as yamlfile's careful reader on purpose, so both give the same data.
_FastLoader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG,
    cast(Any, yamlfile._construct_mapping),
)
_FastLoader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_SEQUENCE_TAG,
    cast(Any, yamlfile._construct_sequence),
)


def _uses_anchors(text: str) -> bool:
    """Whether the YAML holds an anchor or an alias, as libyaml's own events say: a `*` or `&`
    inside a quoted string ("*.skype.com", "AT&T") is neither."""
    for event in yaml.parse(text, Loader=_SafeBase):
        if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None) is not None:
            return True
    return False


def read_catalog_yaml(path: Path) -> tuple[Any, bytes]:
    """Read a catalogue file quickly; on any problem, re-read it carefully to explain it.

    libyaml's composer cannot be told to refuse anchors and aliases (expanded, a few hundred
    bytes of them become gigabytes), so a file that may hold one (a `&` or `*` anywhere) is
    first walked event by event; one that does is read by the careful reader, which refuses
    them at their line.
    """
    raw = read_bounded(path, CATALOG_MAX_BYTES)
    try:
        text = raw.decode("utf-8")
        if (b"&" in raw or b"*" in raw) and _uses_anchors(text):
            return read_yaml(path, CATALOG_MAX_BYTES)
        return yaml.load(text, Loader=_FastLoader), raw  # noqa: S506 - safe
    except (UnicodeDecodeError, yaml.YAMLError):
        return read_yaml(path, CATALOG_MAX_BYTES)


def load_catalog(
    paths: list[Path] | tuple[Path, ...] = (), extra_never_block: tuple[str, ...] = ()
) -> tuple[Catalog, list[bytes]]:
    """Load the shipped catalogue, then each extra file in order; returns the raw bytes too."""
    raws: list[bytes] = []
    unreadable: list[Problem] = []

    def read_each() -> Iterator[tuple[Any, str]]:
        for path in (embedded_catalog_path(), *paths):
            try:
                data, raw = read_catalog_yaml(path)
            except ConfigError as error:
                unreadable.extend(error.problems)
                continue
            raws.append(raw)
            yield data, str(path)

    try:
        catalog = parse_catalogs(read_each(), extra_never_block)
    except ConfigError as error:
        unreadable.extend(error.problems)
    if unreadable:
        # Every file's problems, in the order the files are read.
        order = {str(path): n for n, path in enumerate((embedded_catalog_path(), *paths))}
        raise ConfigError(sorted(unreadable, key=lambda p: order.get(p.source, len(order))))
    return catalog, raws
