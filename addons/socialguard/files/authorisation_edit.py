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
import zoneinfo
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml as yaml11
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.scalarstring import SingleQuotedScalarString

from socialguard.core.authorisations import Authorisations, end_of, label_of
from socialguard.core.problems import ConfigError, Problem
from socialguard.files.yamlfile import AUTHORISATIONS_MAX_BYTES, parse_yaml

# Block-style indentation a hand-written list is likely to use: (mapping, sequence, offset).
# The first that reproduces the file exactly is used, so untouched lines keep their bytes.
_LAYOUTS = ((2, 4, 2), (2, 2, 0), (4, 6, 4), (4, 4, 2), (4, 4, 0), (2, 4, 0), (3, 5, 3))
_ID = re.compile(r"EX-(\d{4})-(\d+)")


class EditError(Exception):
    """An edit that cannot be made (no such id, already revoked…): the message says why."""


class InvalidFileError(ConfigError):
    """The file was already invalid before the edit: it must be fixed by hand first."""


# The proxy reads the list with pyyaml (YAML 1.1), where a plain `on`, `no`, `12:30` or `0o7`
# is a boolean or a number; ruamel writes YAML 1.2, where they are strings and stay unquoted.
_YAML11 = yaml11.resolver.Resolver()
_STR = "tag:yaml.org,2002:str"


def _scalar(value: str) -> str:
    """A string to write, quoted when YAML 1.1 would read it back as anything but itself."""
    tag = _YAML11.resolve(yaml11.ScalarNode, value, (True, False))  # type: ignore[no-untyped-call]
    if tag == _STR:
        return value
    quoted: str = SingleQuotedScalarString(value)
    return quoted


def _same(read: Any, expected: Any) -> bool:
    """Equal and of the same type (True == 1 and a date is not a datetime, here)."""
    if isinstance(expected, list):
        return (
            isinstance(read, list)
            and len(read) == len(expected)
            and all(_same(r, e) for r, e in zip(read, expected, strict=True))
        )
    if isinstance(expected, dict):
        return (
            isinstance(read, dict)
            and read.keys() == expected.keys()
            and all(_same(read[k], v) for k, v in expected.items())
        )
    return type(read) is type(expected) and bool(read == expected)


def _yaml_problem(error: YAMLError, source: str) -> Problem:
    """A ruamel syntax error as yamlfile words pyyaml's: the line of the problem, and the fix."""
    line = 1
    what = str(error)
    if isinstance(error, MarkedYAMLError):
        mark = error.problem_mark or error.context_mark
        line = mark.line + 1 if mark else 1
        what = error.problem or what
    return Problem(source, line, f"not valid YAML: {what} — check indentation and quoting")


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
    # Who ran the command: the system user, and the sudo user where there is one.
    system_user: str = ""
    sudo_user: str = ""


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
        # (id, keys, value): what the edit means each changed field to read back as.
        self._expected: list[tuple[str, tuple[str, ...], Any]] = []
        # Edited as LF with a final newline; written back with the file's own endings.
        self._crlf = "\r\n" in text and text.count("\r\n") == text.count("\n")
        self._final_newline = not text or text.endswith("\n")
        normal = text.replace("\r\n", "\n") if self._crlf else text
        if normal and not normal.endswith("\n"):
            normal += "\n"
        self.normal = normal
        try:
            parse_yaml(normal, source)  # as the proxy reads it: the file must be valid already
        except ConfigError as error:
            raise InvalidFileError(error.problems) from None
        layout = _LAYOUTS[0]
        doc: Any = None
        try:
            for candidate in _LAYOUTS:
                yaml = _yaml(candidate)
                doc = yaml.load(normal)
                if _dump(yaml, doc) == normal:
                    layout = candidate
                    break
            else:
                if doc is not None:  # an empty or comment-only file has no layout to keep
                    self.warnings.append(
                        f"{source}: the file's layout could not be kept exactly; lines outside "
                        "the change may be re-indented (the content is unchanged)"
                    )
        except YAMLError as error:
            raise InvalidFileError([_yaml_problem(error, source)]) from None
        self._yaml = _yaml(layout)
        # A file of comments alone loads as nothing: keep its text above what is added.
        self._prefix = ""
        if doc is None:
            self._prefix = normal
            doc = CommentedMap()
        if not isinstance(doc, CommentedMap):
            raise InvalidFileError(
                [Problem(source, 1, "the file must be a mapping with approvers: and exemptions:")]
            )
        self.doc: CommentedMap = doc

    def text(self) -> str:
        if not self.doc:
            return self.original  # nothing added (yet) to a file that held no data
        out = self._prefix + _dump(self._yaml, self.doc)
        if not self._final_newline:
            out = out.removesuffix("\n")
        return out.replace("\n", "\r\n") if self._crlf else out

    def _expect(self, ident: str, keys: tuple[str, ...], value: Any) -> None:
        self._expected.append((ident, keys, value))

    def verify(self, text: str) -> None:
        """The changed fields, read back as the proxy reads the file, are exactly as asked.

        Raises EditError naming the field otherwise: a name the reader would take for a
        boolean or a number must never be written as one.
        """
        data = parse_yaml(text, self.source)
        entries = data.get("exemptions") if isinstance(data, dict) else None
        found = {
            str(e.get("id")): e
            for e in (entries if isinstance(entries, list) else [])
            if isinstance(e, dict)
        }
        for ident, keys, expected in self._expected:
            value: Any = found.get(ident)
            for key in keys:
                value = value.get(key) if isinstance(value, dict) else None
            if not _same(value, expected):
                raise EditError(
                    f"{self.source}: {ident}: {'.'.join(keys)} would be read back as "
                    f"{value!r} instead of {expected!r} — quote it in the file by hand, "
                    "or report this as a bug"
                )

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
        entry["who"] = _flow({new.who_kind: _scalar(new.who)})
        self._expect(ident, ("who",), {new.who_kind: new.who})
        for key, values in (
            ("services", new.services),
            ("categories", new.categories),
            ("domains", new.domains),
        ):
            if values:
                entry[key] = _flow([_scalar(v) for v in values])
                self._expect(ident, (key,), list(values))
        entry["purpose"] = _scalar(new.purpose)
        entry["approved_by"] = _scalar(new.approved_by)
        entry["approved_on"] = new.approved_on
        entry["expires"] = new.expires
        for key in ("purpose", "approved_by", "approved_on", "expires"):
            self._expect(ident, (key,), getattr(new, key))
        if new.system_user:
            recorded = {"system_user": new.system_user}
            if new.sudo_user:
                recorded["sudo_user"] = new.sudo_user
            entry["recorded_by"] = _flow({k: _scalar(v) for k, v in recorded.items()})
            self._expect(ident, ("recorded_by",), recorded)
        _append(entries, None, entry)
        return ident

    def renew(
        self,
        ident: str,
        expires: dt.date | dt.datetime,
        approved_by: str,
        on: dt.date,
        tz: zoneinfo.ZoneInfo,
    ) -> None:
        """A fresh approval: new expiry, approver and date; the old ones go into `renewed:`.

        A renewal extends: an expiry earlier than the one in force is refused (the proxy would
        record it as a change, not a renewal); ending an exemption sooner is a revocation.
        """
        entry = self.find(ident)
        if entry.get("revoked") is not None:
            raise EditError(
                f"{self.source}: {ident} was revoked; grant a new exemption instead of renewing it"
            )
        current = end_of(entry.get("expires"), tz)
        wanted = end_of(expires, tz)
        previous_on = entry.get("approved_on")
        if current is not None and wanted is not None:
            shorter = wanted < current
            same = wanted == current and isinstance(previous_on, dt.date) and on <= previous_on
            if shorter or same:
                raise EditError(
                    f"{self.source}: {ident} already runs until "
                    f"{label_of(entry.get('expires'))}; a renewal must end later than that. "
                    f"To end it sooner, revoke it ('socialguard exemptions revoke {ident} "
                    "--reason … --by …') and grant a new one for the shorter time if it is "
                    "still needed"
                )
        approved_by = _scalar(approved_by)
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
        self._expect(ident, ("approved_by",), str(approved_by))
        self._expect(ident, ("approved_on",), on)
        self._expect(ident, ("expires",), expires)
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
        raw = self.doc.get("approvers")
        approvers = sorted(str(a) for a in raw) if isinstance(raw, list) else []
        if by not in approvers:
            raise EditError(
                f"{self.source}: --by {by!r} is not on the approvers list "
                f"({', '.join(approvers) or 'empty'}) — add them to approvers: or ask an "
                "approver to revoke it"
            )
        _append(
            entry,
            "revoked",
            _flow({"on": on, "by": _scalar(by), "reason": _scalar(reason)}),
        )
        self._expect(ident, ("revoked",), {"on": on, "by": by, "reason": reason})


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
        if len(raw) > AUTHORISATIONS_MAX_BYTES:
            raise InvalidFileError(
                [
                    Problem(
                        source,
                        0,
                        f"the file is larger than {AUTHORISATIONS_MAX_BYTES // (1024 * 1024)} "
                        "MiB, the most socialguard reads for it — check that this is the right "
                        "file",
                    )
                ]
            )
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise EditError(f"{source}: not UTF-8 text — save it as UTF-8") from None
        document = AuthorisationDocument(text, source)
        outcome = change(document)
        new_text = document.text()
        try:
            authorisations = validate_text(new_text, source, parse)
        except ConfigError:
            try:  # already invalid before the change? then that is what to fix first
                validate_text(document.normal, source, parse)
            except ConfigError as before:
                raise InvalidFileError(before.problems) from None
            raise
        document.verify(new_text)
        write_atomic(path, new_text)
    return EditResult(
        authorisations=authorisations,
        warnings=(*document.warnings, *authorisations.warnings),
        result=outcome,
    )
