"""/api/v1/users, /me and /tokens: accounts, their lifecycle, and API tokens."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Request, status
from pydantic import BaseModel

from infracms.api.deps import SESSION_COOKIE, ActorDep, AdminActorDep, SessionDep, SettingsDep
from infracms.models.user import (
    ApiTokenCreate,
    ApiTokenIssued,
    ApiTokenPublic,
    PasswordChange,
    PasswordIssued,
    PasswordReset,
    Role,
    UserCreate,
    UserPublic,
    UserUpdate,
)
from infracms.services import auth, user_lifecycle, user_passwords, users

router = APIRouter(tags=["people"])


class Me(BaseModel):
    """Who you are to this node."""

    kind: str
    name: str
    is_admin: bool
    node_scope: bool
    roles: dict[uuid.UUID, Role]


@router.get("/me", response_model=Me)
def me(actor: ActorDep) -> Me:
    """The calling identity and its roles (a node token: node-level actions only)."""
    return Me(
        kind=actor.kind,
        name=actor.name,
        is_admin=actor.is_admin,
        node_scope=actor.node_scope,
        roles=dict(actor.roles),
    )


@router.post("/me/password", status_code=status.HTTP_204_NO_CONTENT)
def change_password(
    body: PasswordChange,
    request: Request,
    session: SessionDep,
    actor: ActorDep,
    settings: SettingsDep,
) -> None:
    """Change your own password, giving the current one; your other sessions end."""
    user_passwords.change_password(
        session=session,
        actor=actor,
        settings=settings,
        data=body,
        keep_session=request.cookies.get(SESSION_COOKIE),
    )


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


@router.get("/users/{username}", response_model=UserPublic)
def get_user(username: str, session: SessionDep, actor: ActorDep) -> UserPublic:
    """One account (node admins; anyone their own)."""
    user = user_lifecycle.get_user(session=session, actor=actor, username=username)
    return UserPublic.model_validate(user)


@router.patch("/users/{username}", response_model=UserPublic)
def update_user(
    username: str, body: UserUpdate, session: SessionDep, actor: ActorDep
) -> UserPublic:
    """Change an account's display name or email (node admins, or its user), or whether
    it is a node admin (node admins; never the last active one)."""
    data = body.model_dump(exclude_unset=True)
    user = user_lifecycle.update_user(session=session, actor=actor, username=username, data=data)
    return UserPublic.model_validate(user)


@router.post("/users/{username}/disable", response_model=UserPublic)
def disable_user(username: str, session: SessionDep, actor: ActorDep) -> UserPublic:
    """Disable an account: its sessions end and its API tokens are refused, at once."""
    user = user_lifecycle.disable_user(session=session, actor=actor, username=username)
    return UserPublic.model_validate(user)


@router.post("/users/{username}/enable", response_model=UserPublic)
def enable_user(username: str, session: SessionDep, actor: ActorDep) -> UserPublic:
    """Enable a disabled account."""
    user = user_lifecycle.enable_user(session=session, actor=actor, username=username)
    return UserPublic.model_validate(user)


@router.post("/users/{username}/password-reset", response_model=PasswordIssued)
def reset_password(
    username: str,
    session: SessionDep,
    actor: ActorDep,
    settings: SettingsDep,
    body: PasswordReset | None = None,
) -> PasswordIssued:
    """Set a one-time password (given, or generated and shown once); the user must
    change it at the next sign-in, and their sessions end."""
    return user_passwords.reset_password(
        session=session, actor=actor, settings=settings, username=username, data=body
    )


@router.delete("/users/{username}", status_code=status.HTTP_204_NO_CONTENT)
def delete_user(username: str, session: SessionDep, actor: ActorDep) -> None:
    """Delete an account with its memberships, sessions and tokens; its audit entries
    keep the name and id they recorded."""
    user_lifecycle.delete_user(session=session, actor=actor, username=username)


@router.get("/tokens", response_model=list[ApiTokenPublic])
def list_tokens(session: SessionDep, actor: ActorDep) -> list[ApiTokenPublic]:
    """Your API tokens (without their secret)."""
    return [
        ApiTokenPublic.model_validate(t) for t in auth.list_tokens(session=session, actor=actor)
    ]


@router.post("/tokens", response_model=ApiTokenIssued, status_code=status.HTTP_201_CREATED)
def issue_token(body: ApiTokenCreate, session: SessionDep, actor: ActorDep) -> ApiTokenIssued:
    """Make an API token, shown once: scoped to one organisation and role, or (node
    admins, `"scope": "node"`) to node-level actions."""
    return auth.issue_token(session=session, actor=actor, data=body)


@router.delete("/tokens/{token_id}", response_model=ApiTokenPublic)
def revoke_token(token_id: uuid.UUID, session: SessionDep, actor: ActorDep) -> ApiTokenPublic:
    """Revoke one of your tokens."""
    token = auth.revoke_token(session=session, actor=actor, token_id=token_id)
    return ApiTokenPublic.model_validate(token)
