"""Shared parts of the secret-reference attacks: people with API tokens, problem fields.

`people(engine, settings)` makes organisations `clinic` and `other`, an owner `olga`
and an editor `eddie` of clinic and an owner `otto` of other, and returns each one's
API token (the editor's is an editor token: what an attacker holding one would have).
"""

from __future__ import annotations

from typing import Any

import httpx
from sqlalchemy import Engine

from infracms.db import session_scope
from infracms.models import Role
from infracms.services import auth, users
from infracms.services.context import Actor
from tests.helpers import make_org, make_user

CLINIC, OTHER = "clinic", "other"


def token_of(engine: Engine, username: str, organisation: str, role: Role) -> str:
    """A fresh API token of `username` in `organisation` with `role`."""
    with session_scope(engine, write=True) as session:
        user = users.user_by_name(session, username=username)
        actor = Actor(
            kind="user",
            id=str(user.id),
            name=username,
            roles=users.roles_of(session, user_id=user.id),
            user_id=user.id,
        )
        issued = auth.issue_token(
            session=session,
            actor=actor,
            data={"name": f"{username}-token", "role": role, "organisation": organisation},
        )
    return issued.token


def people(engine: Engine, settings: Any, *, orgs: bool = True) -> dict[str, str]:
    """The organisations and people above; {username: API token}."""
    if orgs:
        make_org(engine, CLINIC)
    make_org(engine, OTHER)
    make_user(engine, settings, "olga", clinic=Role.owner)
    make_user(engine, settings, "eddie", clinic=Role.editor)
    make_user(engine, settings, "otto", other=Role.owner)
    return {
        "olga": token_of(engine, "olga", CLINIC, Role.owner),
        "eddie": token_of(engine, "eddie", CLINIC, Role.editor),
        "otto": token_of(engine, "otto", OTHER, Role.owner),
    }


def bearer(token: str) -> dict[str, str]:
    """The header an API token goes in."""
    return {"authorization": f"Bearer {token}"}


def field_errors(response: httpx.Response) -> dict[str, str]:
    """A problem document's field errors, {field: message}."""
    body = response.json()
    return {error["field"]: error["message"] for error in body.get("errors", [])}
