"""The `infracms` command: thin wrappers over ``services/``.

Errors from the exception tree become a message on stderr and the exit code the error
class names, in one place (:func:`main`): ``AuditUnavailable`` (the change's audit entry
could not be written, so nothing changed) exits 75, ``AuditVerificationError`` 7.
The global ``--as USER`` names the person changes are recorded as (``common.cli_actor``).
"""

from __future__ import annotations

import sys

import typer

from federation.errors import FederationError
from infracms.cli.lazy import LazyGroup
from infracms.errors import InfracmsError

app = typer.Typer(
    name="infracms",
    help="A self-hosted, federated content management system for infrastructure.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    cls=LazyGroup,  # each command's module is imported when the command runs
)


@app.callback()
def _global_options(
    as_user: str = typer.Option(
        None,
        "--as",
        metavar="USER",
        help="the infracms account your changes are recorded as, with its rights "
        "(default: the account named like your OS user; else cli:<os user>)",
    ),
) -> None:
    """A self-hosted, federated content management system for infrastructure."""
    if as_user is not None or "infracms.cli.common" in sys.modules:  # else nothing to reset
        from infracms.cli import common

        common.act_as(as_user)


def main() -> None:
    """Run the command line, mapping infracms errors to messages and exit codes."""
    try:
        code = app(standalone_mode=False)  # a command's typer.Exit(n) comes back as n
    except InfracmsError as exc:
        typer.echo(f"error: {exc.detail}", err=True)
        for field, message in exc.errors.items():
            typer.echo(f"  {field}: {message}", err=True)
        sys.exit(exc.exit_code)
    except FederationError as exc:  # a peer refused, failed to answer, or does not verify
        typer.echo(f"error: {type(exc).__name__}: {exc}", err=True)
        sys.exit(1)
    except typer.Abort:
        typer.echo("aborted", err=True)
        sys.exit(1)
    except SystemExit:
        raise
    except Exception as exc:  # click's usage errors carry their own exit code
        code = getattr(exc, "exit_code", None)
        show = getattr(exc, "show", None)
        if code is not None and callable(show):
            show()
            sys.exit(code)
        raise
    if isinstance(code, int) and code:
        sys.exit(code)
