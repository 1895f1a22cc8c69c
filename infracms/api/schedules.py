"""/api/v1/orgs/{org}/schedules (drift checks) and /api/v1/orgs/{org}/drift (host states)."""

from __future__ import annotations

from fastapi import APIRouter, Request, status

from infracms.api.deps import ActorDep, PluginsDep, SessionDep
from infracms.models.run import RunPublic
from infracms.models.schedule import (
    DriftAcknowledge,
    HostDriftPublic,
    ScheduleCreate,
    SchedulePublic,
)
from infracms.services import drift, schedules

router = APIRouter(prefix="/orgs/{org}", tags=["schedules"])


@router.post("/schedules", response_model=SchedulePublic, status_code=status.HTTP_201_CREATED)
def create_schedule(
    org: str, body: ScheduleCreate, session: SessionDep, actor: ActorDep
) -> SchedulePublic:
    """Add a drift check on a cron expression in a time zone (reconcile: then apply)."""
    found = schedules.create_schedule(session=session, actor=actor, organisation=org, data=body)
    return SchedulePublic.model_validate(found)


@router.get("/schedules", response_model=list[SchedulePublic])
def list_schedules(org: str, session: SessionDep, actor: ActorDep) -> list[SchedulePublic]:
    """The organisation's schedules, with when each last fired and is next due."""
    found = schedules.list_schedules(session=session, actor=actor, organisation=org)
    return [SchedulePublic.model_validate(s) for s in found]


@router.delete("/schedules/{name}", status_code=status.HTTP_204_NO_CONTENT)
def remove_schedule(org: str, name: str, session: SessionDep, actor: ActorDep) -> None:
    """Remove a schedule; its runs stay."""
    schedules.remove_schedule(session=session, actor=actor, organisation=org, name=name)


@router.get("/drift", response_model=list[HostDriftPublic])
def list_drift(org: str, session: SessionDep, actor: ActorDep) -> list[HostDriftPublic]:
    """Where each host stands: in sync, drifted, failed, unreachable, never applied, out of date."""
    return drift.organisation_drift(session=session, actor=actor, organisation=org)


@router.get("/drift/{host}", response_model=HostDriftPublic)
def host_drift(org: str, host: str, session: SessionDep, actor: ActorDep) -> HostDriftPublic:
    """Where one host stands, with the definitions and tasks that drifted."""
    return drift.host_drift(session=session, actor=actor, organisation=org, host=host)


@router.post("/drift/{host}/acknowledge", response_model=HostDriftPublic)
def acknowledge(
    org: str, host: str, body: DriftAcknowledge, session: SessionDep, actor: ActorDep
) -> HostDriftPublic:
    """Accept a host's drift for now, with a reason (audited)."""
    drift.acknowledge(session=session, actor=actor, organisation=org, host=host, data=body)
    return drift.host_drift(session=session, actor=actor, organisation=org, host=host)


@router.post(
    "/drift/{host}/remediate", response_model=RunPublic, status_code=status.HTTP_202_ACCEPTED
)
def remediate(
    org: str, host: str, request: Request, session: SessionDep, actor: ActorDep, plugins: PluginsDep
) -> RunPublic:
    """Apply the drifted definitions to the host (a run, started in the background)."""
    run = drift.remediate(
        session=session, actor=actor, plugins=plugins, organisation=org, host=host
    )
    request.app.state.executor.submit(run.id)
    return RunPublic.model_validate(run)
