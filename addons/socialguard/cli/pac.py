"""`socialguard pac`: the proxy auto-config file for the practice's browsers."""

from __future__ import annotations

from pathlib import Path

import click

from socialguard.cli.common import CONFIG_OPTION, Refusal
from socialguard.core.pac import pac_text
from socialguard.core.problems import ConfigError
from socialguard.core.settings import parse_listen
from socialguard.files.catalog_file import load_catalog
from socialguard.files.policy_files import find_config, load_settings


@click.command()
@CONFIG_OPTION
@click.option("--proxy", "proxy", required=True, help="HOST:PORT the browsers reach the proxy at.")
@click.option(
    "--direct-never-block",
    is_flag=True,
    help="Also send the catalogue's never-block clinical systems (nhs.uk, nhs.net, …) DIRECT, "
    "past the proxy. Only where IT has decided so.",
)
def pac(config: Path | None, proxy: str, direct_never_block: bool) -> None:
    """Print a PAC file: the LAN, the practice's own domains (practice.domains and
    email_domains) and, with --direct-never-block, clinical systems go DIRECT; everything else
    to the proxy (no DIRECT fallback). Publish it for WPAD or by group policy (README)."""
    try:
        host, port = parse_listen(proxy)
    except ValueError as error:
        raise click.BadParameter(str(error), param_hint="--proxy") from None
    if proxy.startswith(":") or not all(c.isalnum() or c in ".-[]:" for c in proxy):
        raise click.BadParameter("write it as HOST:PORT, e.g. 10.0.0.1:8080", param_hint="--proxy")
    path, found_by = find_config(config)
    try:
        settings, _ = load_settings(path)
        never_block: list[str] = []
        if direct_never_block:
            catalog, _ = load_catalog(settings.catalogs, settings.practice.domains)
            never_block = sorted(catalog.never_block)
    except ConfigError as error:
        raise Refusal(
            "the policy was not loaded; fix these and try again:", error.problems
        ) from None
    source = f"{path} ({found_by})" if path is not None else "the embedded defaults"
    header = (
        f"socialguard proxy auto-config for {settings.practice.name}, from {source}.\n"
        "Made by `socialguard pac`; make it again after changing practice.domains."
    )
    where = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    own = [*settings.practice.domains, *settings.email_domains]
    click.echo(pac_text(where, own, never_block, header=header), nl=False)
