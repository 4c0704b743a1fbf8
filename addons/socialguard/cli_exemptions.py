"""`socialguard exemptions`: Grant, renew, revoke and review the practice manager's exemptions."""

from __future__ import annotations

import click


@click.group()
def exemptions() -> None:
    """Grant, renew, revoke and review the practice manager's exemptions."""
