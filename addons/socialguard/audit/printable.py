"""Text from the record made safe to print: to a terminal, a log line or a spreadsheet cell.

Much of what the record holds came from a client (a Host header, a user name), so a line break
in it could forge a console line and a leading `=` could become a live spreadsheet formula.
"""

from __future__ import annotations

import re

# C0 and C1 controls, DEL, the Unicode line and paragraph separators, and the bidirectional
# overrides and isolates that can make a line read differently from what it holds.
_UNPRINTABLE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
# What a spreadsheet reads as the start of a formula (OWASP's list, tab and CR included).
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def printable(text: str) -> str:
    """`text` with every control character written as an escape (`\\n` → `\\x0a`)."""
    return _UNPRINTABLE.sub(_escape, text)


def spreadsheet_cell(value: object) -> object:
    """A CSV cell that a spreadsheet shows as text: numbers stay numbers; a string that would
    start a formula gets a leading apostrophe, and its control characters are escaped."""
    if not isinstance(value, str):
        return value
    if value.startswith(_FORMULA_START):
        value = "'" + value
    return printable(value)
