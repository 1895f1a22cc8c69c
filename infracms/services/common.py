"""Small helpers every service uses: commit, look-ups by name, pages, validation."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ValidationError
from sqlalchemy.exc import IntegrityError
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel import Session, SQLModel, func, select

from infracms.errors import Conflict, InvalidInput, NotFound
from infracms.models.organisation import Organisation

T = TypeVar("T")
M = TypeVar("M", bound=BaseModel)

MAX_PAGE = 500

Fields = Mapping[str, Any]
"""The raw fields of an input model, as a form or the CLI gives them: a service that
takes `SomeCreate | Fields` validates them with `parse`, so the rules stay in the model."""


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page of a list, with the total it is cut from."""

    items: list[T]
    total: int
    limit: int
    offset: int


def found(value: T | None, what: str) -> T:
    """`value`, looked up by a reference another row holds; NotFound if it has gone
    since (deleted meanwhile). An explicit check, where an `assert` would vanish
    under `python -O`."""
    if value is None:
        raise NotFound(f"{what} no longer exists")
    return value


def commit(session: Session, *, conflict: str = "that name is already taken") -> None:
    """Commit, turning a uniqueness race into a Conflict (nothing is written)."""
    try:
        session.commit()
    except IntegrityError as exc:
        session.rollback()
        raise Conflict(conflict) from exc


def parse(model: type[M], data: M | Fields) -> M:
    """Validate `data` into `model`, or raise InvalidInput naming each bad field."""
    if isinstance(data, model):
        return data
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise invalid_from(exc) from exc


def invalid_from(exc: ValidationError) -> InvalidInput:
    """An InvalidInput listing what pydantic found wrong, field by field."""
    errors = {
        ".".join(str(part) for part in error["loc"]) or "body": error["msg"].removeprefix(
            "Value error, "
        )
        for error in exc.errors()
    }
    return InvalidInput("the request has invalid fields", errors=errors)


def organisation_by_name(session: Session, *, name: str) -> Organisation:
    """The organisation called `name`, or NotFound."""
    org = session.exec(select(Organisation).where(Organisation.name == name)).first()
    if org is None:
        raise NotFound(f"no organisation called {name!r}")
    return org


def page(
    session: Session,
    *,
    table: type[SQLModel],
    where: Sequence[ColumnElement[bool]],
    order_by: Any,
    limit: int,
    offset: int,
) -> Page[Any]:
    """One page of rows of `table` matching `where`, ordered by `order_by` (a term, or a
    list of them)."""
    if not 1 <= limit <= MAX_PAGE:
        raise InvalidInput("bad page", errors={"limit": f"must be between 1 and {MAX_PAGE}"})
    if offset < 0:
        raise InvalidInput("bad page", errors={"offset": "must not be negative"})
    total = session.exec(select(func.count()).select_from(table).where(*where)).one()
    rows = session.exec(
        select(table)
        .where(*where)
        .order_by(*(order_by if isinstance(order_by, list) else [order_by]))
        .limit(limit)
        .offset(offset)
    ).all()
    return Page(items=list(rows), total=total, limit=limit, offset=offset)


def snapshot(row: SQLModel, fields: Sequence[str]) -> dict[str, Any]:
    """The named fields of a row, for an audit payload."""
    return {name: getattr(row, name) for name in fields}


def map_items(items: Sequence[T], convert: Callable[[T], Any]) -> list[Any]:
    """`convert` applied to each item."""
    return [convert(item) for item in items]
