"""/api/v1/users, /me and /tokens: accounts and API tokens."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, status
from pydantic import BaseModel

from infracms.api.deps import ActorDep, AdminActorDep, SessionDep, SettingsDep
from infracms.models.user import (
    ApiTokenCreate,
    ApiTokenIssued,
    ApiTokenPublic,
    Role,
    UserCreate,
    UserPublic,
)
from infracms.services import auth, users

router = APIRouter(tags=["people"])


class Me(BaseModel):
    """Who you are to this node."""

    kind: str
    name: str
    is_admin: bool
    roles: dict[uuid.UUID, Role]


@router.get("/me", response_model=Me)
def me(actor: ActorDep) -> Me:
    """The calling identity and its roles."""
    return Me(kind=actor.kind, name=actor.name, is_admin=actor.is_admin, roles=dict(actor.roles))


@router.get("/users", response_model=list[UserPublic])
def list_users(session: SessionDep, actor: ActorDep) -> list[UserPublic]:
    """All accounts (node admins)."""
    return [UserPublic.model_validate(u) for u in users.list_users(session=session, actor=actor)]


@router.post("/users", response_model=UserPublic, status_code=status.HTTP_201_CREATED)
def create_user(
    body: UserCreate, session: SessionDep, actor: AdminActorDep, settings: SettingsDep
) -> UserPublic:
    """Create an account (node admins)."""
    user = users.create_user(session=session, actor=actor, settings=settings, data=body)
    return UserPublic.model_validate(user)


@router.get("/tokens", response_model=list[ApiTokenPublic])
def list_tokens(session: SessionDep, actor: ActorDep) -> list[ApiTokenPublic]:
    """Your API tokens (without their secret)."""
    return [
        ApiTokenPublic.model_validate(t) for t in auth.list_tokens(session=session, actor=actor)
    ]


@router.post("/tokens", response_model=ApiTokenIssued, status_code=status.HTTP_201_CREATED)
def issue_token(body: ApiTokenCreate, session: SessionDep, actor: ActorDep) -> ApiTokenIssued:
    """Make an API token scoped to one organisation and role; the token is shown once."""
    return auth.issue_token(session=session, actor=actor, data=body)


@router.delete("/tokens/{token_id}", response_model=ApiTokenPublic)
def revoke_token(token_id: uuid.UUID, session: SessionDep, actor: ActorDep) -> ApiTokenPublic:
    """Revoke one of your tokens."""
    token = auth.revoke_token(session=session, actor=actor, token_id=token_id)
    return ApiTokenPublic.model_validate(token)
