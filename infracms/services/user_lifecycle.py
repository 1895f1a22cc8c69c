"""An account's life after it is made: edit, disable, enable, delete.

Node admins manage every account (user.manage); a person edits their own names. A node
admin cannot disable, demote or delete the last active node admin, nor disable or delete
their own account. Disabling ends the user's web sessions at once and refuses their API
tokens while disabled (the tokens work again if the account is enabled).

Deleting removes the account, its memberships, web sessions and API tokens. Its audit
entries stay as they were recorded (they are immutable and signed): the actor's name and
id as they were then. A later account may take the name; it has a new id, so the entries
of the two are told apart by actor id.
"""

from __future__ import annotations

from sqlmodel import Session, col, select

from infracms.errors import Conflict, PermissionDenied
from infracms.models.user import ApiToken, Membership, User, UserUpdate
from infracms.services import audit
from infracms.services.auth import end_sessions
from infracms.services.authz import Action, authorize
from infracms.services.common import Fields, commit, parse, snapshot
from infracms.services.context import Actor
from infracms.services.users import user_by_name

PROFILE = ("display_name", "email", "is_admin")


def get_user(*, session: Session, actor: Actor, username: str) -> User:
    """One account: node admins see any, a person their own."""
    if not _names_self(actor, username):  # before the lookup: no probing for names
        authorize(actor, Action.user_list, None)
    return user_by_name(session, username=username)


def update_user(
    *, session: Session, actor: Actor, username: str, data: UserUpdate | Fields
) -> User:
    """Change an account's display name, email or admin flag (the flag by admins only)."""
    update = parse(UserUpdate, data)
    changes = update.model_dump(exclude_unset=True)
    if not _names_self(actor, username) or "is_admin" in changes:
        authorize(actor, Action.user_manage, None)
    user = user_by_name(session, username=username)
    if changes.get("is_admin") is False and user.is_admin:
        _refuse_last_admin(session, user, "stop being a node administrator")
    if "email" in changes and not changes["email"]:
        changes["email"] = None
    before = snapshot(user, PROFILE)
    user.sqlmodel_update(changes)
    session.add(user)
    audit.record(
        session,
        actor=actor,
        action="user.update",
        subject=f"user:{user.username}",
        payload=audit.changes(before, snapshot(user, PROFILE)),
    )
    commit(session)
    return user


def disable_user(*, session: Session, actor: Actor, username: str) -> User:
    """Disable an account: its sessions end and its tokens are refused, at once."""
    authorize(actor, Action.user_manage, None)
    user = user_by_name(session, username=username)
    _refuse_self(actor, user, "disable")
    if user.is_admin and user.is_active:
        _refuse_last_admin(session, user, "be disabled")
    if not user.is_active:
        return user
    ended = end_sessions(session, user_id=user.id)
    user.is_active = False
    session.add(user)
    audit.record(
        session,
        actor=actor,
        action="user.disable",
        subject=f"user:{user.username}",
        payload={"sessions_ended": ended},
    )
    commit(session)
    return user


def enable_user(*, session: Session, actor: Actor, username: str) -> User:
    """Enable a disabled account: it may sign in, and its unrevoked tokens work again."""
    authorize(actor, Action.user_manage, None)
    user = user_by_name(session, username=username)
    if not user.is_active:
        user.is_active = True
        session.add(user)
        audit.record(session, actor=actor, action="user.enable", subject=f"user:{user.username}")
        commit(session)
    return user


def delete_user(*, session: Session, actor: Actor, username: str) -> None:
    """Delete an account with its memberships, sessions and tokens; its audit entries
    keep the name and id they recorded."""
    authorize(actor, Action.user_manage, None)
    user = user_by_name(session, username=username)
    _refuse_self(actor, user, "delete")
    if user.is_admin and user.is_active:
        _refuse_last_admin(session, user, "be deleted")
    memberships = session.exec(select(Membership).where(Membership.user_id == user.id)).all()
    tokens = session.exec(select(ApiToken).where(ApiToken.user_id == user.id)).all()
    audit.record(
        session,
        actor=actor,
        action="user.delete",
        subject=f"user:{user.username}",
        payload={
            "before": {**snapshot(user, PROFILE), "id": str(user.id)},
            "memberships": sorted(str(m.organisation_id) for m in memberships),
            "tokens": len(tokens),
        },
    )
    end_sessions(session, user_id=user.id)
    for row in [*memberships, *tokens]:
        session.delete(row)
    session.flush()
    session.delete(user)
    commit(session)


def _names_self(actor: Actor, username: str) -> bool:
    """Whether a signed-in person names their own account (a token does not count)."""
    return actor.kind == "user" and actor.user_id is not None and actor.name == username


def _refuse_self(actor: Actor, user: User, verb: str) -> None:
    if actor.user_id == user.id:
        raise PermissionDenied(f"you cannot {verb} your own account: ask another node admin")


def _refuse_last_admin(session: Session, user: User, what: str) -> None:
    """Refuse a change that would leave the node without an active node admin.

    The other admins' rows are locked (PostgreSQL), so two admins cannot each disable
    the other at once."""
    others = session.exec(
        select(User.id)
        .where(col(User.is_admin), col(User.is_active), User.id != user.id)
        .with_for_update()
    ).all()
    if not others:
        raise Conflict(
            f"{user.username} is the last active node administrator and cannot {what}: "
            "make another account a node administrator first"
        )
