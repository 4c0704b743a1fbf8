"""`socialguard audit`: Verify, search and report on the audit log."""

from __future__ import annotations

import click


@click.group()
def audit() -> None:
    """Verify, search and report on the audit log."""
