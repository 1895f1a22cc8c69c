"""/api/v1/orgs/{org}/secret-grants: the $env/$file sources an organisation may refer to."""

from __future__ import annotations

from fastapi import APIRouter, status

from infracms.api.deps import ActorDep, SessionDep, SettingsDep
from infracms.models.organisation import SecretGrantCreate, SecretGrantPublic, SecretSourceKind
from infracms.services import secret_sources

router = APIRouter(prefix="/orgs/{org}/secret-grants", tags=["organisations"])


@router.get("", response_model=list[SecretGrantPublic])
def list_grants(org: str, session: SessionDep, actor: ActorDep) -> list[SecretGrantPublic]:
    """The variables and files the organisation's definitions may refer to."""
    found = secret_sources.list_sources(session=session, actor=actor, organisation=org)
    return [SecretGrantPublic.model_validate(row) for row in found]


@router.post("", response_model=SecretGrantPublic, status_code=status.HTTP_201_CREATED)
def grant(
    org: str, body: SecretGrantCreate, session: SessionDep, actor: ActorDep, settings: SettingsDep
) -> SecretGrantPublic:
    """Grant a variable, file or directory to the organisation (node admins)."""
    row = secret_sources.grant_source(
        session=session, actor=actor, settings=settings, organisation=org, data=body
    )
    return SecretGrantPublic.model_validate(row)


@router.delete("", status_code=status.HTTP_204_NO_CONTENT)
def revoke(
    org: str,
    kind: SecretSourceKind,
    name: str,
    session: SessionDep,
    actor: ActorDep,
    settings: SettingsDep,
) -> None:
    """Take a grant back (node admins): `?kind=env&name=INFRACMS_VAR_X`."""
    secret_sources.revoke_source(
        session=session,
        actor=actor,
        settings=settings,
        organisation=org,
        data={"kind": kind, "name": name},
    )
