"""`socialguard catalog`: Look up, list, import and check the catalogue of services."""

from __future__ import annotations

import click


@click.group()
def catalog() -> None:
    """Look up, list, import and check the catalogue of services."""
