"""`socialguard privacy notice|record`: what is recorded about staff, from the settings in force.

The texts come from core.privacy, so they change when a setting changes; this module only
prints them, as plain text or as one self-contained HTML page.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import click

from socialguard.cli.common import CommandGroup, config_option
from socialguard.core.privacy import Document, notice, record_of_processing, render_text
from socialguard.core.settings import Settings
from socialguard.files.policy_files import PolicyPaths, check_exists, load_settings
from socialguard.templates import environment

FORMAT_OPTION = click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "html"]),
    default="text",
    show_default=True,
    help="Plain text, or one HTML page to publish on the intranet.",
)


def render_html(document: Document) -> str:
    """The document as one accessible HTML page (no scripts, nothing loaded from elsewhere)."""
    return environment().get_template("privacy.html").render(document=document)


def _print(config: Path | None, fmt: str, build: Callable[[Settings], Document]) -> None:
    if config is not None:
        check_exists(config, "the policy file")
    settings, _raw = load_settings(PolicyPaths(config).config_path())
    document = build(settings)
    click.echo(render_html(document) if fmt == "html" else render_text(document), nl=False)


@click.group(cls=CommandGroup)
def privacy() -> None:
    """What socialguard records about staff, said plainly (UK GDPR Art. 13 and 30)."""


@privacy.command("notice")
@config_option("IT's settings the notice is written from (default: config/policy.yaml).")
@FORMAT_OPTION
def notice_command(config: Path | None, fmt: str) -> None:
    """The privacy notice for staff: what is recorded, what never is, for how long, who sees it."""
    _print(config, fmt, notice)


@privacy.command("record")
@config_option("IT's settings the record is written from (default: config/policy.yaml).")
@FORMAT_OPTION
def record_command(config: Path | None, fmt: str) -> None:
    """The record of processing for the practice's data protection officer."""
    _print(config, fmt, record_of_processing)
