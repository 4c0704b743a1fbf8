"""How every `socialguard` command refuses: one line naming the trouble, the problems under it
(each with its file and line), exit 1 — never a traceback."""

from __future__ import annotations

import sys
from collections.abc import Iterable
from typing import NoReturn

import click


def fail(message: str, problems: Iterable[object] = ()) -> NoReturn:
    click.echo(f"socialguard: {message}", err=True)
    for problem in problems:
        click.echo(f"  {problem}", err=True)
    sys.exit(1)
