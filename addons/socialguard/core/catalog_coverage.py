"""How well the catalogue covers a table of real hosts, each with the answer it should get.

A table is text, one host a line: the host, a tab, `block` or `allow`, and optionally a third
column: the catalogue service the host belongs to, or `never-block` for a host that must stay
protected by the never-block list whatever any catalogue says; `#` starts a comment. The measure is
recall (of the hosts that should be blocked, how many are) and false positives (hosts that
should pass but are blocked). Pure: the command line reads the file and prints these lines.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from socialguard.core.catalog import Catalog, Service
from socialguard.core.hosts import HostError, HostKind, normalise_host

BLOCK = "block"
ALLOW = "allow"
# The third column's word for "protected by never_block", in place of a service id.
NEVER_BLOCK = "never-block"
SHOWN = 20


@dataclass(frozen=True, slots=True)
class CoverageRow:
    """One host of the table and the answer it should get (and, optionally, its service)."""

    host: str
    block: bool
    line: int
    service: str | None = None


@dataclass(slots=True, kw_only=True)
class CoverageResult:
    """What the catalogue answered for a table: counts and the hosts it got wrong."""

    should_block: int = 0
    should_allow: int = 0
    blocked: int = 0
    # Should be blocked, but pass: the catalogue does not know them.
    missed: list[CoverageRow] = field(default_factory=list)
    # Should pass, but are blocked: (row, the service that blocked it).
    wrongly_blocked: list[tuple[CoverageRow, Service]] = field(default_factory=list)
    # The third column named a service (or never-block) and the catalogue said otherwise:
    # (row, the service it named, `never-block`, or None for nothing).
    misnamed: list[tuple[CoverageRow, str | None]] = field(default_factory=list)

    @property
    def rows(self) -> int:
        return self.should_block + self.should_allow

    @property
    def recall(self) -> float:
        """The share of the hosts that should be blocked that are (1.0 if there are none)."""
        return self.blocked / self.should_block if self.should_block else 1.0

    @property
    def false_positives(self) -> int:
        return len(self.wrongly_blocked)

    @property
    def false_positive_rate(self) -> float:
        return self.false_positives / self.should_allow if self.should_allow else 0.0


def read_table(text: str) -> tuple[list[CoverageRow], list[tuple[int, str]]]:
    """The table's rows, and (line, problem) for each line that cannot be read."""
    rows: list[CoverageRow] = []
    problems: list[tuple[int, str]] = []
    first: dict[str, CoverageRow] = {}
    for line_no, raw in enumerate(text.splitlines(), start=1):
        body = raw.split("#", 1)[0].strip()
        if not body:
            continue
        columns = body.split()
        if len(columns) not in (2, 3):
            problems.append(
                (
                    line_no,
                    f"{body!r}: write the host, a tab and block or allow (and optionally the "
                    "service id), e.g. www.facebook.com<TAB>block",
                )
            )
            continue
        answer = columns[1].lower()
        if answer not in (BLOCK, ALLOW):
            problems.append((line_no, f"{columns[1]!r} is not block or allow"))
            continue
        if "/" in columns[0]:
            problems.append(
                (line_no, f"{columns[0]!r}: write the host name only, without scheme or path")
            )
            continue
        try:
            host = normalise_host(columns[0])
        except HostError as error:
            problems.append((line_no, f"{columns[0]!r} is not a host name: {error.reason}"))
            continue
        if len(columns) == 3 and columns[2] == NEVER_BLOCK and answer == BLOCK:
            problems.append((line_no, f"{columns[0]}: a never-block host cannot be blocked"))
            continue
        row = CoverageRow(
            host=host.name,
            block=answer == BLOCK,
            line=line_no,
            service=columns[2] if len(columns) == 3 else None,
        )
        earlier = first.setdefault(row.host, row)
        if earlier is not row:
            if earlier.block != row.block:
                problems.append(
                    (
                        line_no,
                        f"{row.host} is listed on line {earlier.line} with the other answer: "
                        "keep one",
                    )
                )
            continue
        if host.kind is HostKind.IP and row.block:
            problems.append(
                (line_no, f"{row.host} is an IP address: no catalogue can name it; remove it")
            )
            continue
        rows.append(row)
    return rows, problems


def coverage(
    catalog: Catalog, rows: Iterable[CoverageRow], enforced: Iterable[str]
) -> CoverageResult:
    """Answer every row as the proxy does: blocked when the catalogue names a service of an
    enforced category (never-block and unknown hosts pass); exemptions are not considered."""
    categories = frozenset(enforced)
    result = CoverageResult()
    for row in rows:
        entry = catalog.entry(row.host)
        service = entry if isinstance(entry, Service) else None
        blocked = service is not None and service.category in categories
        named = service.id if service else NEVER_BLOCK if isinstance(entry, str) else None
        if row.service is not None and named != row.service:
            result.misnamed.append((row, named))
        if row.block:
            result.should_block += 1
            if blocked:
                result.blocked += 1
            else:
                result.missed.append(row)
        else:
            result.should_allow += 1
            if blocked and service is not None:
                result.wrongly_blocked.append((row, service))
    return result


def _percent(share: float) -> str:
    return f"{share * 100:.1f}%"


def summary_lines(result: CoverageResult, *, shown: int = SHOWN) -> list[str]:
    """The report in sentences: recall, false positives, then the hosts behind each."""
    lines: list[str] = []
    if result.should_block:
        lines.append(
            f"recall: {_percent(result.recall)} — {result.blocked:,} of the "
            f"{result.should_block:,} hosts that should be blocked are blocked"
        )
    else:
        lines.append("recall: not measured — the table lists no host that should be blocked")
    lines.append(
        f"false positives: {result.false_positives:,} of the {result.should_allow:,} hosts "
        f"that should pass are blocked ({_percent(result.false_positive_rate)})"
    )
    sections: list[tuple[str, list[str]]] = [
        (
            "missed (should be blocked, but pass)",
            [f"{row.host} (line {row.line})" for row in result.missed],
        ),
        (
            "wrongly blocked (should pass)",
            [
                f"{row.host} (line {row.line}): blocked as {service.name}, {service.category}"
                for row, service in result.wrongly_blocked
            ],
        ),
        (
            "named otherwise than the table says",
            [
                f"{row.host} (line {row.line}): the table says {row.service}, the catalogue "
                f"says {named or 'not social media'}"
                for row, named in result.misnamed
            ],
        ),
    ]
    for title, items in sections:
        if not items:
            continue
        lines.append(f"{title}: {len(items):,}")
        lines.extend(f"  {item}" for item in items[:shown])
        if len(items) > shown:
            lines.append(f"  … and {len(items) - shown:,} more (--json lists them all)")
    return lines


def as_dict(result: CoverageResult) -> dict[str, Any]:
    """The result for `--json`: figures and every host behind them."""
    return {
        "rows": result.rows,
        "should_block": result.should_block,
        "should_allow": result.should_allow,
        "blocked": result.blocked,
        "recall": round(result.recall, 4),
        "false_positives": result.false_positives,
        "missed": [{"host": r.host, "line": r.line} for r in result.missed],
        "wrongly_blocked": [
            {"host": r.host, "line": r.line, "service": s.id} for r, s in result.wrongly_blocked
        ],
        "misnamed": [
            {"host": r.host, "line": r.line, "expected": r.service, "named": named}
            for r, named in result.misnamed
        ],
    }
