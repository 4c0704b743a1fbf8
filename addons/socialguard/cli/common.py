"""What every `socialguard` command shares: how it refuses (one line naming the trouble, the
problems under it with their file and line, exit 1 — never a traceback) and its --config."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import click

from socialguard.audit.files import AuditError
from socialguard.core.policy import Policy
from socialguard.core.problems import ConfigError
from socialguard.files.policy_files import PolicyPaths, load_policy

DEFAULT_CONFIG_HELP = (
    "IT's settings. Default: $SOCIALGUARD_CONFIG, else config/policy.yaml in the current "
    "directory, else /etc/socialguard/policy.yaml, else the embedded defaults."
)


class Refusal(click.ClickException):
    """A command's refusal: one line naming the trouble, the problems under it, exit 1.

    Raised anywhere under a command; click prints it (no traceback) and exits with its code.
    """

    exit_code = 1

    def __init__(self, message: str, problems: Iterable[object] = ()) -> None:
        super().__init__(message)
        self.problems = tuple(problems)

    def show(self, file: Any = None) -> None:
        click.echo(f"socialguard: {self.message}", err=True)
        for problem in self.problems:
            click.echo(f"  {problem}", err=True)


class CommandGroup(click.Group):
    """A group whose commands refuse one way: a file's problems (ConfigError) and a log's
    (AuditError) raised anywhere under them become a Refusal, and a closed pipe (`| head`)
    ends quietly. `not_loaded` says what could not be loaded, above the problems."""

    def __init__(
        self,
        *args: Any,
        not_loaded: str = "the policy was not loaded; fix these and try again:",
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.not_loaded = not_loaded

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except ConfigError as error:
            raise Refusal(self.not_loaded, error.problems) from None
        except AuditError as error:
            raise Refusal(str(error)) from None
        except BrokenPipeError:
            sys.stderr.close()  # the reader has what it wanted
            sys.exit(0)


def config_option(help_text: str = DEFAULT_CONFIG_HELP) -> Callable[[Any], Any]:
    """`--config FILE`, each command saying what it reads policy.yaml for."""
    return click.option(
        "--config",
        "config",
        type=click.Path(path_type=Path, dir_okay=False),
        default=None,
        help=help_text,
    )


CONFIG_OPTION = config_option()
AUTHORISATIONS_OPTION = click.option(
    "--authorisations",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="The practice manager's list (default: policy.yaml's `authorisations:`, else "
    "allowlists/authorisations.yaml beside the checkout's config/, or "
    "/etc/socialguard/allowlists/authorisations.yaml when installed).",
)


def load_or_exit(paths: PolicyPaths) -> Policy:
    """The policy, or (through CommandGroup) a refusal listing every problem."""
    return load_policy(paths)
