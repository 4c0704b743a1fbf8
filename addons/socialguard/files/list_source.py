"""Who keeps the practice's exemptions list: the practice (on the page, or with `socialguard
exemptions`), or IT in the shared policy repository, copied here by `socialguard policy pull`.

The pull says so with a small file beside the list, `authorisations.yaml.kept-in-git`, written
before it replaces the list and removed when the repository stops holding the list. The page
and the command line read it before every change (and again under the list's edit lock), so
they never write a list the next pull would silently replace. Its presence is what counts: a
marker that cannot be read still stops edits. No click, no web framework here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import yaml

MARKER_SUFFIX = ".kept-in-git"
SOMEWHERE = "the shared policy repository"
_PASSWORD = re.compile(r"^([a-z][a-z0-9+.-]*://[^/@:]*):[^/@]*@", re.IGNORECASE)


@dataclass(frozen=True, slots=True, kw_only=True)
class RepositoryList:
    """The list is kept in `repository`, in the file `path` there (sites/SITE/...)."""

    repository: str
    site: str
    path: str

    def where(self) -> str:
        """The repository and the file, as people are told."""
        if self.repository == SOMEWHERE:
            return SOMEWHERE
        file = f" ({self.path})" if self.path else ""
        return f"{SOMEWHERE} {self.repository}{file}"

    def refusal(self) -> str:
        """Why a grant, renewal or revocation made here is refused (the CLI and the page)."""
        return (
            f"this practice's exemptions are kept in {self.where()} and copied to this "
            "gateway by `socialguard policy pull`, so they cannot be changed here (the next "
            "pull would undo it): ask IT to make the change in the repository — nothing was "
            "written"
        )

    def notice(self) -> str:
        """What the page says instead of offering changes."""
        return (
            f"These exemptions are kept by IT in {self.where()}, and this gateway takes them "
            "from there. This page shows them but cannot grant, renew or revoke one: ask IT "
            "to make the change in the repository."
        )


def shown_url(repository: str) -> str:
    """The repository's address without a password (https://user:secret@host → user@host):
    it is written to logs and shown on the page."""
    return _PASSWORD.sub(r"\1@", repository.strip())


def marker_for(list_path: Path) -> Path:
    return list_path.with_name(list_path.name + MARKER_SUFFIX)


def marker_text(origin: RepositoryList) -> bytes:
    """The marker's content: stable for one repository and site, so an unchanged pull leaves
    it as it is."""
    header = (
        "# Written by `socialguard policy pull`: this practice's exemptions list (beside this\n"
        "# file) is kept in the shared policy repository and replaced from there at every\n"
        "# pull, so the Practice Manager's page and `socialguard exemptions` do not change it.\n"
        "# The pull removes this file when the repository stops holding the list; from then\n"
        "# the list as it was last pulled is the practice's own to edit.\n"
    )
    body = {"repository": origin.repository, "site": origin.site, "path": origin.path}
    return (header + yaml.safe_dump(body, sort_keys=False, allow_unicode=True)).encode()


def kept_in_repository(list_path: Path) -> RepositoryList | None:
    """The repository that keeps the list at `list_path`, or None when the practice keeps it."""
    marker = marker_for(list_path)
    try:
        text = marker.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError):
        return RepositoryList(repository=SOMEWHERE, site="", path="")
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError:
        data = None
    if not isinstance(data, dict):
        return RepositoryList(repository=SOMEWHERE, site="", path="")
    return RepositoryList(
        repository=shown_url(str(data.get("repository") or SOMEWHERE)),
        site=str(data.get("site") or ""),
        path=str(data.get("path") or ""),
    )
