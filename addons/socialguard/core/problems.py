"""Where a value came from and what is wrong with it: the data every validator reports in.

Pure data types: the YAML reader in files/ fills them in; the core's parsers read them.
"""

from __future__ import annotations

import difflib
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any


class LocatedDict(dict[str, Any]):
    """A mapping that remembers the line of itself and of each of its keys (1-based)."""

    line: int = 0
    key_lines: dict[str, int]

    def line_of(self, key: str) -> int:
        return self.key_lines.get(key, self.line)


class LocatedList(list[Any]):
    """A sequence that remembers the line of each item (1-based)."""

    line: int = 0
    item_lines: list[int]

    def line_of(self, index: int) -> int:
        return self.item_lines[index] if index < len(self.item_lines) else self.line


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with a file: where, what, and what to do about it."""

    source: str
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.source}:{self.line}: {self.message}"


class ConfigError(Exception):
    """Every problem found in one or more files; printed as one line per problem."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__("\n".join(str(p) for p in problems))
        self.problems = problems


@dataclass
class Problems:
    """Collects problems while validating a whole file, so the user sees all of them at once."""

    source: str
    found: list[Problem] = field(default_factory=list)

    def add(self, line: int, message: str) -> None:
        self.found.append(Problem(self.source, line, message))

    def raise_if_any(self) -> None:
        if self.found:
            raise ConfigError(self.found)


def unknown_keys(
    mapping: Mapping[str, Any],
    known: Collection[str],
    where: str,
    problems: Problems,
    *,
    noun: str = "key",
    see: str | None = None,
) -> None:
    """Report each key of `mapping` that is not in `known`, at its line, with the nearest
    known name: a misspelt key is never ignored (`identity: {proxyath: ...}` would otherwise
    run the proxy with no sign-in at all). `see` replaces the list of known names when it
    would be too long to read."""
    names = sorted(known)
    for key in mapping:
        if key in known:
            continue
        if isinstance(mapping, LocatedDict):
            line = mapping.line_of(key)
        else:
            line = getattr(mapping, "line", 0)
        hint = did_you_mean(str(key), names)
        prefix = f"{where}: " if where else ""
        listed = f"see {see}" if see else f"known: {', '.join(names)}"
        problems.add(line, f"{prefix}unknown {noun} {str(key)!r}{hint} ({listed})")


def did_you_mean(name: str, known: Collection[str]) -> str:
    """` — did you mean 'x'?` for the known name nearest to `name`, or "" if none is near."""
    close = difflib.get_close_matches(name, sorted(known), n=1, cutoff=0.6)
    return f" — did you mean {close[0]!r}?" if close else ""
