"""Where a value came from and what is wrong with it: the data every validator reports in.

Pure data types: the YAML reader in files/ fills them in; the core's parsers read them.
"""

from __future__ import annotations

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
