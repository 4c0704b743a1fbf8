"""`socialguard admin` (the Practice Manager's page) and `socialguard digest` (its weekly
e-mail). Neither imports the proxy: the page never holds the CA key, and the proxy never
holds write access to the authorisation list."""

from __future__ import annotations

from pathlib import Path
from typing import NoReturn

import click

from socialguard.cli.common import AUTHORISATIONS_OPTION, Refusal, config_option
from socialguard.core.settings import parse_listen
from socialguard.files import exemption_actions as actions


def _fail(message: str, problems: tuple[object, ...] = ()) -> NoReturn:
    raise Refusal(message, problems)


def _context(config: Path | None, authorisations: Path | None) -> actions.Context:
    try:
        context = actions.load_context(config, authorisations)
        actions.load(context)  # refuse to start on a list the page could not show
    except actions.ActionRefusedError as error:
        _fail(error.message, error.problems)
    return context


@click.command()
@config_option("IT's settings; admin: says where the page listens and who may sign in.")
@AUTHORISATIONS_OPTION
@click.option("--listen", help="HOST:PORT to serve on (default: admin.listen, 127.0.0.1:8090).")
def admin(config: Path | None, authorisations: Path | None, listen: str | None) -> None:
    """Serve the Practice Manager's page: exemptions, staff requests and the latest blocks."""
    from socialguard.web import server  # noqa: PLC0415 - the web stack loads only here

    address = None
    if listen is not None:
        try:
            address = parse_listen(listen)
        except ValueError as error:
            raise click.BadParameter(str(error), param_hint="--listen") from None
    context = _context(config, authorisations)
    try:
        server.serve(context, address)
    except server.StartError as error:
        _fail(str(error))
    except OSError as error:
        _fail(
            f"the page cannot start: {error.strerror or error} — check admin.listen and "
            "the files it names"
        )


@click.command()
@config_option("IT's settings; digest: says where the e-mail goes.")
@AUTHORISATIONS_OPTION
@click.option("--dry-run", "dry_run", is_flag=True, help="Print the digest (text and HTML).")
@click.option("--send", "send_now", is_flag=True, help="Send it now to digest.to.")
def digest(config: Path | None, authorisations: Path | None, dry_run: bool, send_now: bool) -> None:
    """The weekly digest: pending requests, exemptions ending soon, overdue reviews, blocks."""
    from socialguard.web import digest as weekly  # noqa: PLC0415
    from socialguard.web.server import request_store  # noqa: PLC0415

    if dry_run == send_now:
        raise click.UsageError("say --dry-run (print it) or --send (send it now)")
    context = _context(config, authorisations)
    settings = context.settings
    try:
        built = weekly.build(context, request_store(settings, context), settings.audit_path)
    except actions.ActionRefusedError as error:
        _fail(error.message, error.problems)
    if dry_run:
        click.echo(f"Subject: {built.subject}\nTo: {', '.join(settings.digest.to) or '-'}\n")
        click.echo("--- plain text ---")
        click.echo(built.text)
        click.echo("--- HTML ---")
        click.echo(built.html)
        return
    try:
        weekly.send(built, settings)
    except weekly.DigestError as error:
        _fail(str(error))
    click.echo(f"sent the digest to {', '.join(settings.digest.to)}.")
