"""Write an output file (a report, an exported certificate) without following links.

Writing through the path would follow a symbolic link planted at the target by someone who can
write to the directory (a shared /tmp, say), and overwrite whatever it points to with the
privileges of the person running the command. Instead a new file is created beside the target
(O_CREAT | O_EXCL, so nothing existing is opened) and renamed over it: a link at the target is
replaced by the file, and what it pointed to is left alone.
"""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from pathlib import Path


class OutputError(Exception):
    """The file could not be written; the message names it and says what to do."""


def write_file(path: Path, data: bytes, mode: int = 0o644) -> None:
    """Replace `path` with a new file holding `data` (never writing through a link)."""
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        info = None
    except OSError as error:
        raise OutputError(f"{path}: cannot write here: {error.strerror}") from None
    if info is not None and stat.S_ISDIR(info.st_mode):
        raise OutputError(f"{path}: is a folder — give a file name")
    directory = path.parent
    try:
        fd, temp_name = tempfile.mkstemp(dir=directory, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as error:
        raise OutputError(
            f"{path}: cannot create a file in {directory}: {error.strerror} — check the path"
        ) from None
    try:
        with os.fdopen(fd, "wb") as out:
            os.fchmod(out.fileno(), mode)
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temp_name, path)  # renames over a link, never through it
    except OSError as error:
        with contextlib.suppress(OSError):
            os.unlink(temp_name)
        raise OutputError(f"{path}: cannot write the file: {error.strerror}") from None
    with contextlib.suppress(OSError):
        directory_fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(directory_fd)
        finally:
            os.close(directory_fd)
