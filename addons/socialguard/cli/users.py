"""`socialguard users`: the proxy sign-in accounts of a practice without a directory (LDAP).

The file is identity.proxyauth's @file from the policy in force (else /etc/socialguard/htpasswd);
each change is one atomic rename under a lock, which the running proxy picks up by itself.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from socialguard.cli.common import Refusal, config_option
from socialguard.core.problems import ConfigError
from socialguard.files import htpasswd
from socialguard.files.policy_files import find_config, load_settings

HTPASSWD_OPTION = click.option(
    "--htpasswd",
    "file",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="The password file (default: identity.proxyauth's @FILE in the policy in force, "
    f"else {htpasswd.DEFAULT_HTPASSWD}).",
)
CONFIG = config_option("IT's settings, read for identity.proxyauth (found as for run).")


def _file(file: Path | None, config: Path | None) -> Path:
    if file is not None:
        return file
    try:
        settings, _ = load_settings(find_config(config)[0])
    except ConfigError as error:
        raise Refusal(
            "the policy was not loaded; fix these or give --htpasswd FILE:", error.problems
        ) from None
    proxyauth = settings.proxyauth or ""
    return Path(proxyauth[1:]) if proxyauth.startswith("@") else htpasswd.DEFAULT_HTPASSWD


def _password(name: str) -> str:
    """Asked twice without echo on a terminal; else the first line of standard input."""
    if sys.stdin.isatty():
        password: str = click.prompt(
            f"Password for {name}", hide_input=True, confirmation_prompt=True, err=True
        )
    else:
        password = sys.stdin.readline().rstrip("\r\n")
    try:
        htpasswd.check_password(password)
    except htpasswd.HtpasswdError as error:
        raise Refusal(str(error)) from None
    return password


def _change(path: Path, name: str, *, exists: bool, password: bool) -> None:
    """Add (exists=False) or change/remove (exists=True) `name`, under the file's lock."""
    try:
        htpasswd.check_name(name)
        secret = _password(name) if password else None
        hashed = htpasswd.hash_password(secret) if secret is not None else None
        with htpasswd.locked(path):
            users = htpasswd.read(path)
            if exists and name not in users:
                raise Refusal(f"{path}: there is no user {name!r} (see `socialguard users list`)")
            if not exists and name in users:
                raise Refusal(
                    f"{path}: {name!r} already exists — change the password with `users passwd`"
                )
            if hashed is None:
                del users[name]
            else:
                users[name] = hashed
            htpasswd.write(path, users)
    except htpasswd.HtpasswdError as error:
        raise Refusal(str(error)) from None


@click.group()
def users() -> None:
    """Proxy sign-in accounts in the htpasswd file (bcrypt). The running proxy picks up each
    change by itself."""


@users.command()
@HTPASSWD_OPTION
@CONFIG
@click.argument("name")
def add(file: Path | None, config: Path | None, name: str) -> None:
    """Add NAME; the password is asked without echo, or read from standard input."""
    path = _file(file, config)
    _change(path, name, exists=False, password=True)
    click.echo(f"added {name} to {path}")


@users.command()
@HTPASSWD_OPTION
@CONFIG
@click.argument("name")
def passwd(file: Path | None, config: Path | None, name: str) -> None:
    """Set a new password for NAME (asked without echo, or read from standard input)."""
    path = _file(file, config)
    _change(path, name, exists=True, password=True)
    click.echo(f"changed the password of {name} in {path}")


@users.command()
@HTPASSWD_OPTION
@CONFIG
@click.argument("name")
def remove(file: Path | None, config: Path | None, name: str) -> None:
    """Remove NAME: they can no longer sign in to the proxy."""
    path = _file(file, config)
    _change(path, name, exists=True, password=False)
    click.echo(f"removed {name} from {path}")


@users.command("list")
@HTPASSWD_OPTION
@CONFIG
def list_(file: Path | None, config: Path | None) -> None:
    """The user names, one a line (never the hashes)."""
    path = _file(file, config)
    try:
        names = list(htpasswd.read(path))
    except htpasswd.HtpasswdError as error:
        raise Refusal(str(error)) from None
    click.echo(f"{len(names)} users in {path}", err=True)
    for name in names:
        click.echo(name)
