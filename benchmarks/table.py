"""The one table `make bench` prints: a row per measured case, ratios beside their targets."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence


# -- the table -----------------------------------------------------------------------------------
@dataclasses.dataclass
class Row:
    section: str
    case: str
    socialguard: str
    baseline: str = ""
    ratio: str = ""
    target: str = ""


def fmt_ratio(value: float | None, target: float | None = None) -> str:
    if value is None:
        return "—"
    text = f"{value:.3f}"
    if target is not None:
        text += " ✓" if value >= target else " ✗"
    return text


def print_table(rows: Sequence[Row]) -> str:
    header = ("§", "case", "socialguard", "baseline (peer)", "ratio", "target")
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for r in rows:
        cells = (r.section, r.case, r.socialguard, r.baseline, r.ratio, r.target)
        lines.append("| " + " | ".join(c.replace("|", "/") for c in cells) + " |")
    return "\n".join(lines)
