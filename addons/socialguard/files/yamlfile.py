"""Read a YAML file so that every problem can name its file and line.

Pure reading only (pyyaml's safe loader); edits that must keep comments live elsewhere.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from socialguard.core.problems import ConfigError, LocatedDict, LocatedList, Problem

# What socialguard reads is written by a person (policy.yaml, authorisations.yaml) or by
# `catalog import` (a catalogue extra of a million domains is about 36 MiB). The bounds keep a
# mistaken or hostile file from taking the gateway's memory before it is even validated.
SETTINGS_MAX_BYTES = 1024 * 1024
AUTHORISATIONS_MAX_BYTES = 1024 * 1024
CATALOG_MAX_BYTES = 128 * 1024 * 1024

ALIAS_MESSAGE = (
    "YAML anchors and aliases (&name, *name) are not accepted — write each value out in full"
)


class _Loader(yaml.SafeLoader):
    def compose_node(self, parent: yaml.Node | None, index: int) -> yaml.Node | None:
        """Refuse an anchor or alias before it is used: a few hundred bytes of nested aliases
        would otherwise expand to gigabytes while being validated."""
        event = self.peek_event()  # type: ignore[no-untyped-call]
        if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None) is not None:
            raise yaml.composer.ComposerError(None, None, ALIAS_MESSAGE, event.start_mark)
        return super().compose_node(parent, index)


def _construct_mapping(loader: _Loader, node: yaml.MappingNode) -> LocatedDict:
    result = LocatedDict()
    result.line = node.start_mark.line + 1
    result.key_lines = {}
    loader.flatten_mapping(node)
    for key_node, value_node in node.value:
        # A plain scalar key keeps its text: YAML 1.1 would read `on:` or `no:` as a boolean.
        if isinstance(key_node, yaml.ScalarNode):
            key = str(key_node.value)
        else:
            key = str(loader.construct_object(key_node, deep=True))
        if key in result:
            raise yaml.constructor.ConstructorError(
                None, None, f"the key {key!r} appears twice", key_node.start_mark
            )
        result[key] = loader.construct_object(value_node, deep=True)
        result.key_lines[key] = key_node.start_mark.line + 1
    return result


def _construct_sequence(loader: _Loader, node: yaml.SequenceNode) -> LocatedList:
    result = LocatedList(loader.construct_object(child, deep=True) for child in node.value)
    result.line = node.start_mark.line + 1
    result.item_lines = [child.start_mark.line + 1 for child in node.value]
    return result


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)
_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_SEQUENCE_TAG, _construct_sequence)


def parse_yaml(text: str, source: str) -> Any:
    """Parse YAML text; a syntax error becomes a ConfigError naming the line."""
    try:
        return yaml.load(text, Loader=_Loader)  # noqa: S506 - _Loader is a SafeLoader
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        line = mark.line + 1 if mark else 1
        what = error.problem or str(error)
        if what == ALIAS_MESSAGE:
            raise ConfigError([Problem(source, line, what)]) from None
        raise ConfigError(
            [Problem(source, line, f"not valid YAML: {what} — check indentation and quoting")]
        ) from None
    except yaml.YAMLError as error:
        raise ConfigError([Problem(source, 1, f"not valid YAML: {error}")]) from None


def read_bounded(path: Path, max_bytes: int) -> bytes:
    """The file's bytes, or a ConfigError if it cannot be read or is larger than `max_bytes`."""
    try:
        with path.open("rb") as stream:
            raw = stream.read(max_bytes + 1)
    except OSError as error:
        reason = error.strerror or str(error)
        raise ConfigError([Problem(str(path), 0, f"cannot read the file: {reason}")]) from None
    if len(raw) > max_bytes:
        raise ConfigError(
            [
                Problem(
                    str(path),
                    0,
                    f"the file is larger than {_size(max_bytes)}, the most socialguard reads "
                    "for it — check that this is the right file",
                )
            ]
        )
    return raw


def _size(count: int) -> str:
    return f"{count // (1024 * 1024)} MiB" if count >= 1024 * 1024 else f"{count} bytes"


def read_yaml(path: Path, max_bytes: int = SETTINGS_MAX_BYTES) -> tuple[Any, bytes]:
    """Read and parse a YAML file of at most `max_bytes`; returns the data and the raw bytes
    (for digests)."""
    raw = read_bounded(path, max_bytes)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigError([Problem(str(path), 1, "not UTF-8 text — save it as UTF-8")]) from None
    return parse_yaml(text, str(path)), raw
