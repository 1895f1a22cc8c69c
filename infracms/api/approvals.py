"""/api/v1/orgs/{org}/approval-policies and /orgs/{org}/runs/{id}/approvals: who must
approve an apply, and approving, refusing or breaking the glass on a held one."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Request, status
from pydantic import BaseModel

from infracms.api.deps import ActorDep, PluginsDep, SessionDep
from infracms.models.approval import (
    ApprovalDecide,
    ApprovalPolicyCreate,
    ApprovalPolicyPublic,
    ApprovalPublic,
    ApprovalRequestPublic,
    BreakGlass,
)
from infracms.models.run import Run, RunPublic, RunStatus
from infracms.services import approval_policies, approvals

router = APIRouter(prefix="/orgs/{org}", tags=["approvals"])


class RunApprovals(BaseModel):
    """A run's approval: the held plan's digest and needs (null if never held), and the
    decisions so far."""

    request: ApprovalRequestPublic | None
    decisions: list[ApprovalPublic]


@router.get("/approval-policies", response_model=list[ApprovalPolicyPublic])
def list_policies(org: str, session: SessionDep, actor: ActorDep) -> list[ApprovalPolicyPublic]:
    """The organisation's approval policies."""
    found = approval_policies.list_policies(session=session, actor=actor, organisation=org)
    return [ApprovalPolicyPublic.model_validate(p) for p in found]


@router.post("/approval-policies", response_model=ApprovalPolicyPublic)
def set_policy(
    org: str, body: ApprovalPolicyCreate, session: SessionDep, actor: ActorDep
) -> ApprovalPolicyPublic:
    """Set a policy (owners): a policy of the same name is replaced."""
    policy = approval_policies.set_policy(session=session, actor=actor, organisation=org, data=body)
    return ApprovalPolicyPublic.model_validate(policy)


@router.delete("/approval-policies/{name}", status_code=status.HTTP_204_NO_CONTENT)
def delete_policy(org: str, name: str, session: SessionDep, actor: ActorDep) -> None:
    """Remove a policy (owners)."""
    approval_policies.delete_policy(session=session, actor=actor, organisation=org, name=name)


@router.get("/runs/{run_id}/approvals", response_model=RunApprovals)
def run_approvals(
    org: str, run_id: uuid.UUID, session: SessionDep, actor: ActorDep
) -> RunApprovals:
    """A run's approval request and its decisions."""
    request, decisions = approvals.approval_of(
        session=session, actor=actor, organisation=org, run_id=run_id
    )
    return RunApprovals(
        request=ApprovalRequestPublic.model_validate(request) if request else None,
        decisions=[ApprovalPublic.model_validate(d) for d in decisions],
    )


@router.post("/runs/{run_id}/approvals", response_model=RunPublic)
def decide(
    org: str,
    run_id: uuid.UUID,
    body: ApprovalDecide,
    request: Request,
    session: SessionDep,
    actor: ActorDep,
    plugins: PluginsDep,
) -> RunPublic:
    """Approve or refuse a held apply; the last approval needed starts it."""
    run = approvals.decide(
        session=session, actor=actor, plugins=plugins, organisation=org, run_id=run_id, data=body
    )
    return _submitted(request, run)


@router.post("/runs/{run_id}/break-glass", response_model=RunPublic)
def break_glass(
    org: str,
    run_id: uuid.UUID,
    body: BreakGlass,
    request: Request,
    session: SessionDep,
    actor: ActorDep,
) -> RunPublic:
    """Start a held apply without its approvals (owners), saying why: flagged in the log."""
    run = approvals.break_glass(
        session=session, actor=actor, organisation=org, run_id=run_id, data=body
    )
    return _submitted(request, run)


def _submitted(request: Request, run: Run) -> RunPublic:
    if run.status is RunStatus.queued:
        request.app.state.executor.submit(run.id)
    return RunPublic.model_validate(run)
