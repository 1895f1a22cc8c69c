"""/api/v1/modules and /api/v1/orgs/{org}/modules, /definitions: the CMS content."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, status
from pydantic import BaseModel

from infracms.api.deps import ActorDep, AdminActorDep, PluginsDep, SessionDep
from infracms.models.definition import (
    DefinitionCreate,
    DefinitionPublic,
    RevisionCreate,
    RevisionPublic,
    Rollback,
)
from infracms.models.validators import DB_INT_MAX
from infracms.services import definitions, modules

router = APIRouter(tags=["modules"])


class Availability(BaseModel):
    """Whether organisations may enable a module."""

    available: bool


@router.get("/modules")
def list_modules(session: SessionDep, actor: ActorDep, plugins: PluginsDep) -> list[dict[str, Any]]:
    """Every module the node knows, with its settings schema and availability."""
    found = modules.list_modules(session=session, actor=actor, plugins=plugins)
    return [asdict(info) for info in found]


@router.get("/modules/problems")
def module_problems(actor: ActorDep, plugins: PluginsDep) -> list[dict[str, str]]:
    """Modules and plugins that were skipped at start-up, and why."""
    return [asdict(problem) for problem in plugins.registry.problems]


@router.put("/modules/{name}/availability", response_model=Availability)
def set_availability(
    name: str, body: Availability, session: SessionDep, actor: AdminActorDep, plugins: PluginsDep
) -> Availability:
    """Make a module available to organisations, or withdraw it (node admins)."""
    modules.set_available(
        session=session, actor=actor, plugins=plugins, name=name, available=body.available
    )
    return body


@router.get("/orgs/{org}/modules")
def org_modules(
    org: str, session: SessionDep, actor: ActorDep, plugins: PluginsDep
) -> list[dict[str, Any]]:
    """Modules with whether this organisation has enabled them."""
    found = modules.list_modules(session=session, actor=actor, plugins=plugins, organisation=org)
    return [asdict(info) for info in found]


@router.post("/orgs/{org}/modules/{name}", status_code=status.HTTP_201_CREATED)
def enable_module(
    org: str, name: str, session: SessionDep, actor: ActorDep, plugins: PluginsDep
) -> dict[str, list[str]]:
    """Enable a module (and what it requires) in the organisation (owners)."""
    enabled = modules.enable_module(
        session=session, actor=actor, plugins=plugins, organisation=org, name=name
    )
    return {"enabled": enabled}


@router.delete("/orgs/{org}/modules/{name}", status_code=status.HTTP_204_NO_CONTENT)
def disable_module(
    org: str, name: str, session: SessionDep, actor: ActorDep, plugins: PluginsDep
) -> None:
    """Disable a module no definition uses (owners)."""
    modules.disable_module(
        session=session, actor=actor, plugins=plugins, organisation=org, name=name
    )


@router.get("/orgs/{org}/definitions", response_model=list[DefinitionPublic])
def list_definitions(
    org: str, session: SessionDep, actor: ActorDep, retired: bool = False
) -> list[DefinitionPublic]:
    """The organisation's definitions."""
    return definitions.list_definitions(
        session=session, actor=actor, organisation=org, include_retired=retired
    )


@router.post(
    "/orgs/{org}/definitions", response_model=DefinitionPublic, status_code=status.HTTP_201_CREATED
)
def create_definition(
    org: str, body: DefinitionCreate, session: SessionDep, actor: ActorDep, plugins: PluginsDep
) -> DefinitionPublic:
    """Apply a module to a host or group with settings (revision 1, published)."""
    return definitions.create_definition(
        session=session, actor=actor, plugins=plugins, organisation=org, data=body
    )


@router.get("/orgs/{org}/definitions/{name}", response_model=DefinitionPublic)
def get_definition(org: str, name: str, session: SessionDep, actor: ActorDep) -> DefinitionPublic:
    """One definition with its published settings."""
    return definitions.get_definition(session=session, actor=actor, organisation=org, name=name)


@router.delete("/orgs/{org}/definitions/{name}", status_code=status.HTTP_204_NO_CONTENT)
def retire_definition(org: str, name: str, session: SessionDep, actor: ActorDep) -> None:
    """Retire a definition: it is no longer applied; its history stays."""
    definitions.retire_definition(session=session, actor=actor, organisation=org, name=name)


@router.get("/orgs/{org}/definitions/{name}/revisions", response_model=list[RevisionPublic])
def revisions(org: str, name: str, session: SessionDep, actor: ActorDep) -> list[RevisionPublic]:
    """Every revision, newest first."""
    return definitions.history(session=session, actor=actor, organisation=org, name=name)


@router.post(
    "/orgs/{org}/definitions/{name}/revisions",
    response_model=DefinitionPublic,
    status_code=status.HTTP_201_CREATED,
)
def save_revision(
    org: str,
    name: str,
    body: RevisionCreate,
    session: SessionDep,
    actor: ActorDep,
    plugins: PluginsDep,
) -> DefinitionPublic:
    """Save new settings as the next revision."""
    return definitions.save_revision(
        session=session, actor=actor, plugins=plugins, organisation=org, name=name, data=body
    )


@router.post(
    "/orgs/{org}/definitions/{name}/revisions/{number}/publish", response_model=DefinitionPublic
)
def publish(
    org: str,
    name: str,
    number: Annotated[int, Path(ge=1, le=DB_INT_MAX)],
    session: SessionDep,
    actor: ActorDep,
) -> DefinitionPublic:
    """Publish an existing revision as it is."""
    return definitions.publish_revision(
        session=session, actor=actor, organisation=org, name=name, number=number
    )


@router.post("/orgs/{org}/definitions/{name}/rollback", response_model=DefinitionPublic)
def rollback(
    org: str, name: str, body: Rollback, session: SessionDep, actor: ActorDep, plugins: PluginsDep
) -> DefinitionPublic:
    """Publish an older revision's settings again, as a new revision."""
    return definitions.rollback(
        session=session, actor=actor, plugins=plugins, organisation=org, name=name, data=body
    )


@router.get("/orgs/{org}/definitions/{name}/diff")
def diff(
    org: str,
    name: str,
    session: SessionDep,
    actor: ActorDep,
    old: Annotated[int, Query(ge=1, le=DB_INT_MAX, alias="from")],
    new: Annotated[int, Query(ge=1, le=DB_INT_MAX, alias="to")],
) -> dict[str, Any]:
    """What changed between two revisions."""
    return definitions.diff(
        session=session, actor=actor, organisation=org, name=name, old=old, new=new
    )
