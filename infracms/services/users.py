"""People: accounts and their roles in organisations."""

from __future__ import annotations

from typing import Any

from sqlmodel import Session, select

from infracms.config import Settings
from infracms.errors import Conflict, InvalidInput, NotFound
from infracms.models.user import Membership, MembershipPublic, MembershipSet, Role, User, UserCreate
from infracms.services import audit
from infracms.services.authz import Action, authorize
from infracms.services.common import Fields, commit, organisation_by_name, parse
from infracms.services.context import Actor
from infracms.services.passwords import hash_password


def create_user(
    *, session: Session, actor: Actor, settings: Settings, data: UserCreate | Fields
) -> User:
    """Create an account (node admins only); the password is stored as an Argon2 hash."""
    authorize(actor, Action.user_create, None)
    user_in = parse(UserCreate, data)
    if session.exec(select(User).where(User.username == user_in.username)).first():
        raise Conflict(
            f"a user called {user_in.username!r} exists already",
            errors={"username": "is already taken"},
        )
    user = User.model_validate(
        user_in, update={"password_hash": hash_password(settings, user_in.password)}
    )
    session.add(user)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="user.create",
        subject=f"user:{user.username}",
        payload={"after": {"username": user.username, "is_admin": user.is_admin}},
    )
    commit(session, conflict=f"a user called {user.username!r} exists already")
    return user


def list_users(*, session: Session, actor: Actor) -> list[User]:
    """All accounts (node admins only)."""
    authorize(actor, Action.user_list, None)
    return list(session.exec(select(User).order_by(User.username)).all())


def user_by_name(session: Session, *, username: str) -> User:
    """The user called `username`, or NotFound."""
    user = session.exec(select(User).where(User.username == username)).first()
    if user is None:
        raise NotFound(f"no user called {username!r}")
    return user


def set_membership(
    *, session: Session, actor: Actor, organisation: str, data: MembershipSet | Fields
) -> MembershipPublic:
    """Give a user a role in an organisation, or change the role they have."""
    org = organisation_by_name(session, name=organisation)
    authorize(actor, Action.member_manage, org.id)
    member_in = parse(MembershipSet, data)
    try:
        user = user_by_name(session, username=member_in.username)
    except NotFound as exc:
        raise InvalidInput(exc.detail, errors={"username": "no such user"}) from exc
    membership = _membership(session, user, org.id)
    before = membership.role if membership else None
    if membership is None:
        membership = Membership(user_id=user.id, organisation_id=org.id, role=member_in.role)
    membership.role = member_in.role
    session.add(membership)
    audit.record(
        session,
        actor=actor,
        action="member.set",
        subject=f"member:{org.name}/{user.username}",
        organisation_id=org.id,
        payload={"before": {"role": before}, "after": {"role": member_in.role}},
    )
    commit(session)
    return MembershipPublic(
        user_id=user.id, username=user.username, organisation_id=org.id, role=member_in.role
    )


def remove_membership(*, session: Session, actor: Actor, organisation: str, username: str) -> None:
    """Take a user's role in an organisation away."""
    org = organisation_by_name(session, name=organisation)
    authorize(actor, Action.member_manage, org.id)
    user = user_by_name(session, username=username)
    membership = _membership(session, user, org.id)
    if membership is None:
        raise NotFound(f"{username} is not a member of {organisation}")
    audit.record(
        session,
        actor=actor,
        action="member.remove",
        subject=f"member:{org.name}/{user.username}",
        organisation_id=org.id,
        payload={"before": {"role": membership.role}},
    )
    session.delete(membership)
    commit(session)


def list_members(*, session: Session, actor: Actor, organisation: str) -> list[MembershipPublic]:
    """The people of an organisation and their roles."""
    org = organisation_by_name(session, name=organisation)
    authorize(actor, Action.member_read, org.id)
    rows = session.exec(
        select(Membership, User)
        .join(User, Membership.user_id == User.id)  # type: ignore[arg-type]
        .where(Membership.organisation_id == org.id)
        .order_by(User.username)
    ).all()
    return [
        MembershipPublic(
            user_id=user.id, username=user.username, organisation_id=org.id, role=m.role
        )
        for m, user in rows
    ]


def roles_of(session: Session, *, user_id: Any) -> dict[Any, Role]:
    """A user's role in each organisation they belong to."""
    rows = session.exec(select(Membership).where(Membership.user_id == user_id)).all()
    return {m.organisation_id: m.role for m in rows}


def _membership(session: Session, user: User, organisation_id: Any) -> Membership | None:
    return session.exec(
        select(Membership).where(
            Membership.user_id == user.id, Membership.organisation_id == organisation_id
        )
    ).first()
