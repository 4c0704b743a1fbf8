"""Change the practice manager's authorisation list without losing a comment, a blank line or
the order of anything the change does not touch.

ruamel.yaml's round-trip mode carries comments and layout through a load and a dump, so an edit
is a change to a data structure rather than string surgery. Every edit is validated whole, by
the same rules the proxy applies, before a byte is written; the write is atomic (a temporary
file in the same directory, fsync'd, then renamed over the old one), so the proxy and a crash
only ever see the old file or the new one. This module never imports mitmproxy.
"""

from __future__ import annotations

import contextlib
import copy
import datetime as dt
import fcntl
import io
import os
import re
import stat
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import YAMLError

from socialguard.authorisations import Authorisations
from socialguard.yamlfile import ConfigError, Problem, parse_yaml

# Block-style indentation a hand-written list is likely to use: (mapping, sequence, offset).
# The first that reproduces the file exactly is used, so untouched lines keep their bytes.
_LAYOUTS = ((2, 4, 2), (2, 2, 0), (4, 6, 4), (4, 4, 2), (4, 4, 0), (2, 4, 0), (3, 5, 3))
_ID = re.compile(r"EX-(\d{4})-(\d+)")


class EditError(Exception):
    """An edit that cannot be made (no such id, already revoked…): the message says why."""


@dataclass(frozen=True, slots=True, kw_only=True)
class NewExemption:
    """What a grant adds: who, what, why, who approved it, and until when."""

    who_kind: str
    who: str
    services: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    domains: tuple[str, ...] = ()
    purpose: str
    approved_by: str
    approved_on: dt.date
    expires: dt.date | dt.datetime


def _yaml(layout: tuple[int, int, int]) -> YAML:
    yaml = YAML(typ="rt")
    yaml.preserve_quotes = True
    yaml.width = 4096  # never fold a long purpose onto a second line
    mapping, sequence, offset = layout
    yaml.indent(mapping=mapping, sequence=sequence, offset=offset)
    aliases = yaml.representer.ignore_aliases
    # A date used twice (approved on = renewed on) would otherwise become an anchor and alias.
    yaml.representer.ignore_aliases = lambda data: (
        not isinstance(data, CommentedMap | CommentedSeq) or aliases(data)
    )
    return yaml


def _dump(yaml: YAML, doc: Any) -> str:
    out = io.StringIO()
    yaml.dump(doc, out)
    return out.getvalue()


def _flow(value: dict[str, Any] | list[Any]) -> CommentedMap | CommentedSeq:
    """A mapping or list written on one line, as people write `who: {user: j.smith}`."""
    node = CommentedMap(value) if isinstance(value, dict) else CommentedSeq(value)
    node.fa.set_flow_style()
    return node


def next_id(existing: Iterator[str] | list[str], year: int) -> str:
    """The next free EX-YYYY-NNN for the year (revoked entries keep their numbers)."""
    highest = 0
    for ident in existing:
        match = _ID.fullmatch(str(ident))
        if match and int(match[1]) == year:
            highest = max(highest, int(match[2]))
    return f"EX-{year}-{highest + 1:03d}"


def _comment_slot(container: Any, key: Any) -> tuple[Any, Any, int]:
    """Where the comment lines after `container[key]` are kept: (holder, key, position).

    ruamel attaches the comments and blank lines that follow a block to its deepest last key
    (or item). Something added after that key must take them over, or it would be written
    below them (after the comments that end the file, say).
    """
    while True:
        value = container[key]
        if isinstance(value, CommentedMap | CommentedSeq) and value and not value.fa.flow_style():
            container = value
            key = len(value) - 1 if isinstance(value, CommentedSeq) else list(value.keys())[-1]
            continue
        return container, key, 0 if isinstance(container, CommentedSeq) else 2


def _move_trailing_comments(container: Any, before: Any, after: Any) -> None:
    """The end-of-line comment stays on `before`'s last line; the lines below move to `after`."""
    holder, key, position = _comment_slot(container, before)
    slot = holder.ca.items.get(key)
    if not slot or len(slot) <= position or slot[position] is None:
        return
    token = slot[position]
    head, newline, tail = str(token.value).partition("\n")
    if not tail:
        return
    if head.strip():
        kept = copy.copy(token)
        kept.value = head + newline
        slot[position] = kept
    else:
        slot[position] = None
        if not any(slot):
            del holder.ca.items[key]
    token.value = "\n" + tail
    target, target_key, target_position = _comment_slot(container, after)
    entry: list[Any] = [None, None, None, None]
    entry[target_position] = token
    target.ca.items[target_key] = entry


def _append(container: CommentedMap | CommentedSeq, key: Any, value: Any) -> None:
    """Add a key (or list item) after the last one, taking over the comments below it."""
    if isinstance(container, CommentedSeq):
        container.append(value)
        before, after = len(container) - 2, len(container) - 1
    else:
        container[key] = value
        keys = list(container.keys())
        before, after = (keys[-2] if len(keys) > 1 else -1), keys[-1]
    if before != -1:
        _move_trailing_comments(container, before, after)


class AuthorisationDocument:
    """An authorisations.yaml held for editing; `text()` renders it with the edits made."""

    def __init__(self, text: str, source: str) -> None:
        self.source = source
        self.original = text
        self.warnings: list[str] = []
        layout = _LAYOUTS[0]
        doc: Any = None
        try:
            for candidate in _LAYOUTS:
                yaml = _yaml(candidate)
                doc = yaml.load(text)
                if _dump(yaml, doc) == text:
                    layout = candidate
                    break
            else:
                if doc is not None:  # an empty or comment-only file has no layout to keep
                    self.warnings.append(
                        f"{source}: the file's layout could not be kept exactly; lines outside "
                        "the change may be re-indented (the content is unchanged)"
                    )
        except YAMLError as error:
            raise ConfigError(
                [Problem(source, 1, f"not valid YAML: {error} — fix it by hand first")]
            ) from None
        self._yaml = _yaml(layout)
        # A file of comments alone loads as nothing: keep its text above what is added.
        self._prefix = ""
        if doc is None:
            self._prefix = text if not text or text.endswith("\n") else text + "\n"
            doc = CommentedMap()
        if not isinstance(doc, CommentedMap):
            raise ConfigError(
                [Problem(source, 1, "the file must be a mapping with approvers: and exemptions:")]
            )
        self.doc: CommentedMap = doc

    def text(self) -> str:
        if not self.doc:
            return self.original  # nothing added (yet) to a file that held no data
        return self._prefix + _dump(self._yaml, self.doc)

    def _entries(self) -> CommentedSeq:
        entries = self.doc.get("exemptions")
        if entries is None:
            entries = CommentedSeq()
            self.doc["exemptions"] = entries
        if not isinstance(entries, CommentedSeq):
            raise EditError(f"{self.source}: exemptions: must be a list — fix it by hand first")
        if entries.fa.flow_style():
            entries.fa.set_block_style()  # `exemptions: []` becomes a list of block entries
        return entries

    def ids(self) -> list[str]:
        return [str(e.get("id")) for e in self._entries() if isinstance(e, dict)]

    def find(self, ident: str) -> CommentedMap:
        for entry in self._entries():
            if isinstance(entry, CommentedMap) and str(entry.get("id")) == ident:
                return entry
        known = ", ".join(self.ids()) or "none"
        raise EditError(
            f"{self.source}: no exemption with id {ident!r} (ids in the file: {known}) — "
            "see 'socialguard exemptions list --all'"
        )

    def grant(self, new: NewExemption, year: int) -> str:
        """Append a new entry with a fresh id; returns the id."""
        entries = self._entries()
        ident = next_id(self.ids(), year)
        entry = CommentedMap()
        entry["id"] = ident
        entry["who"] = _flow({new.who_kind: new.who})
        for key, values in (
            ("services", new.services),
            ("categories", new.categories),
            ("domains", new.domains),
        ):
            if values:
                entry[key] = _flow(list(values))
        entry["purpose"] = new.purpose
        entry["approved_by"] = new.approved_by
        entry["approved_on"] = new.approved_on
        entry["expires"] = new.expires
        _append(entries, None, entry)
        return ident

    def renew(
        self, ident: str, expires: dt.date | dt.datetime, approved_by: str, on: dt.date
    ) -> None:
        """A fresh approval: new expiry, approver and date; the old ones go into `renewed:`."""
        entry = self.find(ident)
        if entry.get("revoked") is not None:
            raise EditError(
                f"{self.source}: {ident} was revoked; grant a new exemption instead of renewing it"
            )
        record = _flow(
            {
                "on": on,
                "by": approved_by,
                "previous_approved_by": entry.get("approved_by"),
                "previous_approved_on": entry.get("approved_on"),
                "previous_expires": entry.get("expires"),
            }
        )
        entry["approved_by"] = approved_by
        entry["approved_on"] = on
        entry["expires"] = expires
        history = entry.get("renewed")
        if isinstance(history, CommentedSeq):
            _append(history, None, record)
        else:
            _append(entry, "renewed", CommentedSeq([record]))

    def revoke(self, ident: str, on: dt.date, by: str, reason: str) -> None:
        """Mark an entry revoked; it stays in the file so the auditor sees its whole history."""
        entry = self.find(ident)
        if entry.get("revoked") is not None:
            raise EditError(f"{self.source}: {ident} is already revoked")
        _append(entry, "revoked", _flow({"on": on, "by": by, "reason": reason}))


def validate_text(
    text: str, source: str, parse: Callable[[Any, str], Authorisations]
) -> Authorisations:
    """Validate a whole candidate file with the proxy's own rules; raises ConfigError."""
    return parse(parse_yaml(text, source), source)


@contextlib.contextmanager
def locked(path: Path) -> Iterator[None]:
    """One editor at a time: two grants at once must not both read the same old file."""
    lock_path = path.parent / f".{path.name}.lock"
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


def write_atomic(path: Path, text: str) -> None:
    """Replace the file whole: readers see the old bytes or the new, never half of either."""
    target = path.resolve()  # a symlinked list keeps its link; the file behind it is replaced
    try:
        info: os.stat_result | None = target.stat()
    except FileNotFoundError:
        info = None
    fd, temp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    temp = Path(temp_name)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        if info is not None:
            os.chmod(temp, stat.S_IMODE(info.st_mode))
            if (info.st_uid, info.st_gid) != (os.getuid(), os.getgid()):
                with contextlib.suppress(PermissionError):
                    os.chown(temp, info.st_uid, info.st_gid)
        os.replace(temp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            temp.unlink()
        raise
    directory = os.open(target.parent, os.O_RDONLY)
    try:
        os.fsync(directory)  # the rename itself survives a power cut
    finally:
        os.close(directory)


@dataclass(frozen=True, slots=True, kw_only=True)
class EditResult:
    """What an edit wrote: the validated list and any warnings for the person editing."""

    authorisations: Authorisations
    warnings: tuple[str, ...]
    result: str


def edit_file(
    path: Path,
    change: Callable[[AuthorisationDocument], str],
    parse: Callable[[Any, str], Authorisations],
) -> EditResult:
    """Read, change, validate whole and write atomically, under the edit lock.

    `change` edits the document and returns what to report (e.g. the new id). Nothing is
    written unless the whole new file passes validation; a ConfigError lists every problem.
    """
    source = str(path)
    missing = EditError(f"{source}: the authorisation list was not found — check --authorisations")
    if not path.is_file():
        raise missing
    with locked(path):
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            raise missing from None
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise EditError(f"{source}: not UTF-8 text — save it as UTF-8") from None
        document = AuthorisationDocument(text, source)
        outcome = change(document)
        new_text = document.text()
        authorisations = validate_text(new_text, source, parse)
        write_atomic(path, new_text)
    return EditResult(
        authorisations=authorisations,
        warnings=(*document.warnings, *authorisations.warnings),
        result=outcome,
    )
