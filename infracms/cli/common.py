"""What the command-line modules share: settings, engine, the acting identity, output."""

from __future__ import annotations

import getpass
import json
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from typing import Any

import typer
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from pydantic import BaseModel
from sqlalchemy import Engine
from sqlmodel import Session

from infracms import db
from infracms.config import Settings, get_settings
from infracms.errors import ConfigurationError
from infracms.services.context import Actor, system_actor


def settings() -> Settings:
    """The settings from the environment."""
    return get_settings()


@lru_cache(maxsize=1)
def engine() -> Engine:
    """An engine for the configured database (one per command)."""
    return db.make_engine(settings())


def cli_actor() -> Actor:
    """Whoever runs the command on the node: its administrator."""
    return system_actor(f"cli:{getpass.getuser()}")


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
