"""Organisations: create, read, update, delete."""

from __future__ import annotations

from sqlmodel import Session, select

from infracms.errors import Conflict, NotFound
from infracms.models.organisation import Organisation, OrganisationCreate, OrganisationUpdate
from infracms.services import audit
from infracms.services.authz import Action, authorize, is_allowed
from infracms.services.common import Fields, commit, organisation_by_name, parse, snapshot
from infracms.services.context import Actor

FIELDS = ("name", "title")


def create_organisation(
    *, session: Session, actor: Actor, data: OrganisationCreate | Fields
) -> Organisation:
    """Create an organisation (node admins only)."""
    authorize(actor, Action.org_create, None)
    org_in = parse(OrganisationCreate, data)
    if session.exec(select(Organisation).where(Organisation.name == org_in.name)).first():
        raise_conflict(org_in.name)
    org = Organisation.model_validate(org_in)
    session.add(org)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="org.create",
        subject=f"org:{org.name}",
        organisation_id=org.id,
        payload={"after": snapshot(org, FIELDS)},
    )
    commit(session, conflict=f"an organisation called {org.name!r} exists already")
    return org


def check_visible(*, session: Session, actor: Actor, name: str) -> None:
    """Refuse an organisation the actor is no member of as if it did not exist: whether it
    exists or not, the answer is the same, and nothing in it is read before this."""
    if actor.is_admin or actor.node_scope:  # a node token reads organisations (authz.py)
        return
    org = session.exec(select(Organisation).where(Organisation.name == name)).first()
    if org is None or actor.role_in(org.id) is None:
        raise NotFound(f"no organisation called {name!r}")


def raise_conflict(name: str) -> None:
    """Refuse a duplicate organisation name."""
    raise Conflict(
        f"an organisation called {name!r} exists already", errors={"name": "is already taken"}
    )


def get_organisation(*, session: Session, actor: Actor, name: str) -> Organisation:
    """One organisation the actor may see."""
    org = organisation_by_name(session, name=name)
    authorize(actor, Action.org_read, org.id)
    return org


def list_organisations(*, session: Session, actor: Actor) -> list[Organisation]:
    """The organisations the actor may see, by name."""
    orgs = session.exec(select(Organisation).order_by(Organisation.name)).all()
    return [org for org in orgs if is_allowed(actor, Action.org_read, org.id)]


def update_organisation(
    *, session: Session, actor: Actor, name: str, data: OrganisationUpdate | Fields
) -> Organisation:
    """Change an organisation's title."""
    org = organisation_by_name(session, name=name)
    authorize(actor, Action.org_update, org.id)
    update = parse(OrganisationUpdate, data)
    before = snapshot(org, FIELDS)
    org.sqlmodel_update(update.model_dump(exclude_unset=True))
    session.add(org)
    audit.record(
        session,
        actor=actor,
        action="org.update",
        subject=f"org:{org.name}",
        organisation_id=org.id,
        payload=audit.changes(before, snapshot(org, FIELDS)),
    )
    commit(session)
    return org


def delete_organisation(*, session: Session, actor: Actor, name: str) -> None:
    """Delete an organisation and everything it owns (node admins only)."""
    org = organisation_by_name(session, name=name)
    authorize(actor, Action.org_delete, org.id)
    audit.record(
        session,
        actor=actor,
        action="org.delete",
        subject=f"org:{org.name}",
        organisation_id=org.id,
        payload={"before": snapshot(org, FIELDS)},
    )
    session.delete(org)
    commit(session)
