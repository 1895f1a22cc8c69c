"""/api/v1/orgs: organisations and their members."""

from __future__ import annotations

from fastapi import APIRouter, status

from infracms.api.deps import ActorDep, AdminActorDep, SessionDep
from infracms.models.organisation import OrganisationCreate, OrganisationPublic, OrganisationUpdate
from infracms.models.user import MembershipPublic, MembershipSet
from infracms.services import organisations, users

router = APIRouter(prefix="/orgs", tags=["organisations"])


@router.get("", response_model=list[OrganisationPublic])
def list_orgs(session: SessionDep, actor: ActorDep) -> list[OrganisationPublic]:
    """The organisations you can see."""
    orgs = organisations.list_organisations(session=session, actor=actor)
    return [OrganisationPublic.model_validate(org) for org in orgs]


@router.post("", response_model=OrganisationPublic, status_code=status.HTTP_201_CREATED)
def create_org(
    body: OrganisationCreate, session: SessionDep, actor: AdminActorDep
) -> OrganisationPublic:
    """Create an organisation (node admins)."""
    org = organisations.create_organisation(session=session, actor=actor, data=body)
    return OrganisationPublic.model_validate(org)


@router.get("/{org}", response_model=OrganisationPublic)
def get_org(org: str, session: SessionDep, actor: ActorDep) -> OrganisationPublic:
    """One organisation."""
    found = organisations.get_organisation(session=session, actor=actor, name=org)
    return OrganisationPublic.model_validate(found)


@router.patch("/{org}", response_model=OrganisationPublic)
def update_org(
    org: str, body: OrganisationUpdate, session: SessionDep, actor: ActorDep
) -> OrganisationPublic:
    """Change an organisation's title (owners)."""
    found = organisations.update_organisation(session=session, actor=actor, name=org, data=body)
    return OrganisationPublic.model_validate(found)


@router.delete("/{org}", status_code=status.HTTP_204_NO_CONTENT)
def delete_org(org: str, session: SessionDep, actor: ActorDep) -> None:
    """Delete an organisation and all it owns (node admins)."""
    organisations.delete_organisation(session=session, actor=actor, name=org)


@router.get("/{org}/members", response_model=list[MembershipPublic])
def list_members(org: str, session: SessionDep, actor: ActorDep) -> list[MembershipPublic]:
    """The people of an organisation and their roles."""
    return users.list_members(session=session, actor=actor, organisation=org)


@router.put("/{org}/members", response_model=MembershipPublic)
def set_member(
    org: str, body: MembershipSet, session: SessionDep, actor: ActorDep
) -> MembershipPublic:
    """Give a user a role in the organisation (owners)."""
    return users.set_membership(session=session, actor=actor, organisation=org, data=body)


@router.delete("/{org}/members/{username}", status_code=status.HTTP_204_NO_CONTENT)
def remove_member(org: str, username: str, session: SessionDep, actor: ActorDep) -> None:
    """Take a user's role away (owners)."""
    users.remove_membership(session=session, actor=actor, organisation=org, username=username)
