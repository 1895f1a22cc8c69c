"""What the command-line modules share: settings, engine, the acting identity, output."""

from __future__ import annotations

import json
import os
import pwd
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from typing import Any

import typer
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from pydantic import BaseModel
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session

from infracms import db
from infracms.config import Settings, get_settings
from infracms.errors import ConfigurationError, NotFound, PermissionDenied
from infracms.services.context import Actor, system_actor

_acting_as: list[str] = []
"""The account given with the global ``--as USER`` option, if any (set once per command)."""


def settings() -> Settings:
    """The settings from the environment."""
    return get_settings()


@lru_cache(maxsize=1)
def engine() -> Engine:
    """An engine for the configured database (one per command)."""
    return db.make_engine(settings())


def act_as(username: str | None) -> None:
    """Record changes of this command as `username` (the global ``--as`` option)."""
    _acting_as[:] = [username] if username else []
    cli_actor.cache_clear()


@lru_cache(maxsize=1)
def cli_actor() -> Actor:
    """The person running the command, as the audit log records them.

    ``--as USER``, else the infracms account named like the OS user, acts with that
    account's own rights (its roles, admin or not); the entry's request id says
    ``cli:<os user>``, so it shows who typed it too. When no account has the OS
    user's name, the command acts as the node's shell, ``cli:<os user>``, a system
    actor: the log marks it as no person.
    """
    os_user = _os_user()
    wanted = _acting_as[0] if _acting_as else None
    found = _account_actor(wanted or os_user, via=f"cli:{os_user}", required=wanted is not None)
    return found or system_actor(f"cli:{os_user}")


def node_shell_actor() -> Actor:
    """The node's shell: who can run this command on the node can already read its
    database and keys, so a recovery (``user reset-password``) trusts it as the node.
    With ``--as USER`` it is that account instead, with that account's rights."""
    return cli_actor() if _acting_as else system_actor(f"cli:{_os_user()}")


def _os_user() -> str:
    """Who runs this process, by its effective uid: not LOGNAME or USER, which anyone
    sets (`getpass.getuser()` reads them first, so they would name someone else)."""
    uid = os.geteuid()
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:  # a uid with no passwd entry (a container's arbitrary user)
        return f"uid{uid}"


def _account_actor(username: str, *, via: str, required: bool) -> Actor | None:
    """The actor of the active account `username`; None (or an error if `required`)."""
    from infracms.services.auth import user_actor
    from infracms.services.users import roles_of, user_by_name

    try:
        with db.session_scope(engine()) as session:
            user = user_by_name(session, username=username)
            roles = roles_of(session, user_id=user.id)
    except NotFound as exc:
        if required:
            raise NotFound(f"--as {username}: there is no infracms account called that") from exc
        return None
    except SQLAlchemyError as exc:  # no database yet (`infracms init`), or an old one
        if required:
            raise ConfigurationError(f"--as {username}: accounts cannot be read: {exc}") from exc
        return None
    if not user.is_active:
        raise PermissionDenied(f"the infracms account {username!r} is disabled")
    return user_actor(user, roles, request_id=via)


def require_current_schema() -> None:
    """Refuse to work on a database that is not at the latest migration."""
    current = settings()
    head = ScriptDirectory.from_config(db.alembic_config(current)).get_current_head()
    with engine().connect() as connection:
        revision = MigrationContext.configure(connection).get_current_revision()
    if revision != head:
        raise ConfigurationError(
            f"the database is at {revision or 'no revision'}, expected {head}: "
            "run `infracms init` or `infracms db upgrade`"
        )


@contextmanager
def write_session() -> Iterator[Session]:
    """A writing session for one command."""
    require_current_schema()
    with db.session_scope(engine(), write=True) as session:
        yield session


@contextmanager
def read_session() -> Iterator[Session]:
    """A reading session for one command."""
    require_current_schema()
    with db.session_scope(engine()) as session:
        yield session


def emit(value: BaseModel | list[Any] | dict[str, Any], *, as_json: bool) -> None:
    """Print a model or list of models, as JSON or as `key: value` lines."""
    if as_json:
        typer.echo(json.dumps(_plain(value), indent=2, default=str))
        return
    if isinstance(value, list):
        for item in value:
            typer.echo(_one_line(item))
        return
    for key, item in _plain(value).items():
        typer.echo(f"{key}: {item}")


def _plain(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, list):
        return [_plain(item) for item in value]
    return value


def _one_line(item: Any) -> str:
    data = _plain(item)
    if isinstance(data, dict):
        return "  ".join(str(data.get(key, "")) for key in list(data)[:4])
    return str(data)
