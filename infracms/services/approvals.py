"""Approvals: holding an apply, decisions bound to the plan, break-glass, expiry.

An owner sets an organisation's policies (services/approval_policies.py): which hosts or
groups (a group takes in the groups within it, as a run's group filter does) and which
modules need approval, by how many distinct people (k), of which roles, within how many
hours. An apply that a policy
covers is created ``pending_approval`` with its plan (services/approval_plan.py) and
the plan's digest. Each decision names that digest. When every covering policy has k
approvals of the digest from people of its roles (never the requester), the run is
queued; before it runs, the plan is made again (``check_before_claim``) and, if anything
changed, the approvals are void and the run ends refused, saying what changed. A
refusal ends the run; so does expiry. An owner may release a held apply without its
approvals (break-glass) with a written reason, flagged in the log.

Every step is an audit entry naming the run, the person and the plan digest, so the
exported log alone shows who approved what ran.
Where a notification is due, ``notify`` is called: the call point for the notification
outbox (issue 15), which does nothing yet.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

from sqlmodel import Session, col, select

from infracms.errors import Conflict, InfracmsError, InvalidInput, NotFound, PermissionDenied
from infracms.models.approval import (
    Approval,
    ApprovalDecide,
    ApprovalPolicy,
    ApprovalRequest,
    BreakGlass,
    RequestState,
)
from infracms.models.base import utcnow
from infracms.models.notification import NotificationKind
from infracms.models.organisation import Organisation
from infracms.models.run import Run, RunKind, RunStatus
from infracms.models.user import Role
from infracms.modules.render import HostRow, reached
from infracms.plugins import Plugins
from infracms.services import audit, notifications, rendering
from infracms.services.approval_plan import (
    changes,
    current_pins,
    digest_of,
    pinned_of,
    plan_of,
)
from infracms.services.authz import Action, authorize
from infracms.services.common import Fields, commit, found, organisation_by_name, parse
from infracms.services.context import Actor, system_actor

APPROVAL_NOTIFICATIONS = {
    "approval.requested": NotificationKind.approval_requested,
    "approval.granted": NotificationKind.approval_granted,
    "approval.refused": NotificationKind.approval_refused,
    "approval.void": NotificationKind.approval_refused,
    "approval.expired": NotificationKind.approval_expired,
    "approval.break_glass": NotificationKind.break_glass_used,
}


def notify(session: Session, *, event: str, run: Run, payload: dict[str, Any]) -> None:
    """Queue the notification of an approval event (requested, granted, refused or void,
    expired, break-glass used) in the caller's transaction: the organisation's channels
    whose rules ask for it, and the requester's own email subscription."""
    notifications.emit(
        session,
        organisation_id=run.organisation_id,
        kind=APPROVAL_NOTIFICATIONS[event],
        subject=f"{event.replace('.', ' ').replace('_', '-')}: apply {run.id}",
        data={"event": event, "run": run.id, "requested_by": run.requested_by, **payload},
        user=run.requested_by,
    )


# --- holding an apply ----------------------------------------------------------------------


def hold_if_covered(
    session: Session, *, actor: Actor, plugins: Plugins, org: Organisation, run: Run
) -> ApprovalRequest | None:
    """Hold a new apply that a policy covers, with its plan (in the caller's transaction)."""
    if run.kind is not RunKind.apply or not _has_policies(session, org):
        return None
    plan = plan_of(session, plugins, run, pinned_of(run))
    covering = _covering(session, org, plan)
    if not covering:
        return None
    hours = min(policy.expires_hours for policy in covering)
    request = ApprovalRequest(
        run_id=run.id,
        organisation_id=org.id,
        requester_id=actor.user_id,
        digest=digest_of(plan),
        plan=plan,
        requirements=[
            {"policy": p.name, "approvals_required": p.approvals_required, "roles": p.roles}
            for p in covering
        ],
        expires_at=utcnow() + timedelta(hours=hours),
    )
    run.status = RunStatus.pending_approval
    session.add(request)
    detail = {
        "requirements": request.requirements,
        "expires_at": request.expires_at.isoformat(),
        "requester_id": str(actor.user_id) if actor.user_id else None,
    }
    _record(session, actor, org, run, "approval.request", request, detail)
    notify(session, event="approval.requested", run=run, payload={"digest": request.digest})
    return request


def _has_policies(session: Session, org: Organisation) -> bool:
    query = select(ApprovalPolicy.id).where(ApprovalPolicy.organisation_id == org.id)
    return session.exec(query.limit(1)).first() is not None


def _covering(session: Session, org: Organisation, plan: dict[str, Any]) -> list[ApprovalPolicy]:
    """The policies that cover some host of the plan with a module it would get there."""
    policies = session.exec(select(ApprovalPolicy).where(ApprovalPolicy.organisation_id == org.id))
    hosts = [
        HostRow(n, g) for (n,), g in rendering.hosts_with_groups(session, organisation_id=org.id)
    ]
    parents = rendering.group_parents(session, organisation_id=org.id)
    modules_on = {name: set(host["settings"]) for name, host in plan["hosts"].items()}
    covering = []
    for policy in policies:
        targets = [("host", h) for h in policy.hosts] + [("group", g) for g in policy.groups]
        scope = reached(hosts, parents, targets) if targets else set(modules_on)
        if any(
            modules and (not policy.modules or not modules.isdisjoint(policy.modules))
            for name, modules in modules_on.items()
            if name in scope
        ):
            covering.append(policy)
    return sorted(covering, key=lambda p: p.name)


# --- deciding ------------------------------------------------------------------------------


def decide(
    *,
    session: Session,
    actor: Actor,
    plugins: Plugins,
    organisation: str,
    run_id: uuid.UUID,
    data: ApprovalDecide | Fields,
) -> Run:
    """Approve or refuse a held apply; the last approval needed releases it (queued: the
    caller submits it), a refusal ends it."""
    org, run, request = _held(session, organisation, run_id, actor)
    decision = parse(ApprovalDecide, data)
    role = _approver_role(actor, org, request)
    if decision.digest is not None and decision.digest != request.digest:
        raise Conflict(f"the plan is {request.digest}, not the {decision.digest} you reviewed")
    if decision.decision == "refuse" and not decision.comment:
        raise InvalidInput("say why", errors={"comment": "a refusal needs a comment"})
    _refuse_second_decision(session, run, actor)
    if _expire_if_due(session, org, run, request):
        raise Conflict(
            f"the approval of run {run.id} expired at {request.expires_at:%Y-%m-%d %H:%M} UTC"
        )
    approval = Approval(
        run_id=run.id,
        organisation_id=org.id,
        approver_id=found(actor.user_id, "the approver"),
        approver=actor.name,
        role=role,
        decision=decision.decision,
        comment=decision.comment,
        digest=request.digest,
    )
    session.add(approval)
    detail = {
        "approver_id": str(approval.approver_id),
        "role": str(role),
        "comment": approval.comment,
    }
    _record(session, actor, org, run, f"approval.{decision.decision}", request, detail)
    if decision.decision == "refuse":
        _end(
            run,
            request,
            RunStatus.refused,
            RequestState.refused,
            f"refused by {actor.name}: {approval.comment}",
        )
        notify(session, event="approval.refused", run=run, payload={"by": actor.name})
    elif _satisfied(session, request, approval):
        _release_checked(session, plugins, org, run, request)
    commit(session, conflict="you have already decided on this run")
    return run


def _held(
    session: Session, organisation: str, run_id: uuid.UUID, actor: Actor
) -> tuple[Organisation, Run, ApprovalRequest]:
    """The held run, locked (two last approvals must not both miss the count)."""
    org = organisation_by_name(session, name=organisation)
    authorize(actor, Action.run_read, org.id)
    run = session.exec(select(Run).where(Run.id == run_id).with_for_update()).first()
    if run is None or run.organisation_id != org.id:
        raise NotFound(f"no run {run_id} in {org.name}")
    request = session.get(ApprovalRequest, run.id)
    if request is None or run.status is not RunStatus.pending_approval:
        raise Conflict(f"run {run.id} is not awaiting approval ({run.status})")
    return org, run, request


def _approver_role(actor: Actor, org: Organisation, request: ApprovalRequest) -> Role:
    if actor.user_id is None:
        raise PermissionDenied("approvals are given by people: sign in (or use --as USER)")
    role = actor.role_in(org.id)
    allowed = {r for req in request.requirements for r in req["roles"]}
    if role is None or str(role) not in allowed:
        raise PermissionDenied(
            f"{actor.name} may not approve this apply: it needs "
            f"{' or '.join(sorted(allowed))}, not {role or 'no role'}"
        )
    if actor.user_id == request.requester_id:
        raise PermissionDenied("you asked for this apply: someone else must approve it")
    return role


def _refuse_second_decision(session: Session, run: Run, actor: Actor) -> None:
    earlier = session.exec(
        select(Approval.decision).where(
            Approval.run_id == run.id, Approval.approver_id == actor.user_id
        )
    ).first()
    if earlier is not None:
        raise Conflict(f"{actor.name} has already decided on this run ({earlier})")


def _satisfied(session: Session, request: ApprovalRequest, latest: Approval) -> bool:
    """Whether every covering policy has its k distinct approvers of the plan's digest."""
    rows = list(
        session.exec(
            select(Approval).where(
                Approval.run_id == request.run_id,
                Approval.decision == "approve",
                Approval.digest == request.digest,
            )
        )
    )
    by_person = {a.approver_id: str(a.role) for a in [*rows, latest]}
    return all(
        sum(1 for role in by_person.values() if role in req["roles"]) >= req["approvals_required"]
        for req in request.requirements
    )


def _release_checked(
    session: Session, plugins: Plugins, org: Organisation, run: Run, request: ApprovalRequest
) -> None:
    """Release the run if its plan is still the one approved, else void the approvals."""
    reason = _changed(session, plugins, run, request)
    if reason is not None:
        _void(session, org, run, request, reason)
        return
    run.status, request.state, request.released_at = (
        RunStatus.queued,
        RequestState.released,
        utcnow(),
    )
    approvers = sorted(
        a.approver
        for a in session.exec(
            select(Approval).where(Approval.run_id == run.id, Approval.decision == "approve")
        )
    )
    _record(
        session,
        system_actor("approvals"),
        org,
        run,
        "approval.release",
        request,
        {"approvers": approvers},
    )
    notify(session, event="approval.granted", run=run, payload={"approvers": approvers})


def _changed(
    session: Session, plugins: Plugins | None, run: Run, request: ApprovalRequest
) -> dict[str, Any] | None:
    """None if the plan is the one approved, else what changed and the digest now."""
    if plugins is None:
        return {"changes": ["the approved plan could not be checked"], "digest": None}
    try:
        plan = plan_of(session, plugins, run, current_pins(session, run))
    except InfracmsError as exc:
        return {"changes": [f"the plan cannot be made again: {exc}"], "digest": None}
    digest = digest_of(plan)
    if digest == request.digest:
        return None
    return {"changes": changes(request.plan, plan), "digest": digest}


def _void(
    session: Session, org: Organisation, run: Run, request: ApprovalRequest, reason: dict[str, Any]
) -> None:
    text = (
        "the approved plan changed (" + "; ".join(reason["changes"]) + "): the approvals are void"
    )
    _end(run, request, RunStatus.refused, RequestState.void, text)
    _record(
        session,
        system_actor("approvals"),
        org,
        run,
        "approval.void",
        request,
        {"now": reason["digest"], "changes": reason["changes"]},
    )
    notify(session, event="approval.void", run=run, payload={"changes": reason["changes"]})


def _end(
    run: Run, request: ApprovalRequest, status: RunStatus, state: RequestState, why: str
) -> None:
    run.status, run.finished_at, run.error = status, utcnow(), why
    request.state, request.reason = state, why


def _record(
    session: Session,
    actor: Actor,
    org: Organisation,
    run: Run,
    action: str,
    request: ApprovalRequest,
    detail: dict[str, Any],
) -> None:
    audit.record(
        session,
        actor=actor,
        action=action,
        subject=f"run:{org.name}/{run.id}",
        organisation_id=org.id,
        payload={"run": str(run.id), "digest": request.digest, **detail},
    )


def check_before_claim(session: Session, run: Run, plugins: Plugins | None) -> bool:
    """Whether a queued apply may start: an approved one only with the plan it was
    approved for (else its approvals are void and it ends refused, in the caller's
    transaction)."""
    request = session.get(ApprovalRequest, run.id)
    if request is None or request.break_glass_by is not None:
        return True
    if request.state is not RequestState.released:
        org = found(session.get(Organisation, run.organisation_id), "the run's organisation")
        _end(run, request, RunStatus.refused, request.state, "the apply was never approved")
        _record(
            session,
            system_actor("approvals"),
            org,
            run,
            "approval.void",
            request,
            {"changes": ["not approved"]},
        )
        return False
    reason = _changed(session, plugins, run, request)
    if reason is None:
        return True
    org = found(session.get(Organisation, run.organisation_id), "the run's organisation")
    _void(session, org, run, request, reason)
    return False


def approved_plan(session: Session, run: Run) -> dict[str, str]:
    """{"plan_digest": …} for a released apply's start entry (nothing for other runs), so
    the log ties what ran to what was approved."""
    request = session.get(ApprovalRequest, run.id)
    if request is None or request.state is not RequestState.released:
        return {}
    return {"plan_digest": request.digest}


# --- break-glass and expiry -----------------------------------------------------------------


def break_glass(
    *,
    session: Session,
    actor: Actor,
    organisation: str,
    run_id: uuid.UUID,
    data: BreakGlass | Fields,
) -> Run:
    """Release a held apply without its approvals (owners only), with the reason why."""
    org, run, request = _held(session, organisation, run_id, actor)
    authorize(actor, Action.org_update, org.id)
    glass = parse(BreakGlass, data)
    run.status, request.state, request.released_at = (
        RunStatus.queued,
        RequestState.released,
        utcnow(),
    )
    request.break_glass_by, request.reason = actor.name, glass.reason
    _record(
        session,
        actor,
        org,
        run,
        "approval.break_glass",
        request,
        {"reason": glass.reason, "break_glass": True},
    )
    notify(
        session,
        event="approval.break_glass",
        run=run,
        payload={"by": actor.name, "reason": glass.reason},
    )
    commit(session)
    return run


def _expire_if_due(
    session: Session,
    org: Organisation,
    run: Run,
    request: ApprovalRequest,
    now: datetime | None = None,
) -> bool:
    if request.expires_at > (now or utcnow()):
        return False
    _end(
        run,
        request,
        RunStatus.expired,
        RequestState.expired,
        f"not approved by {request.expires_at:%Y-%m-%d %H:%M} UTC",
    )
    _record(session, system_actor("approvals"), org, run, "approval.expire", request, {})
    notify(session, event="approval.expired", run=run, payload={})
    session.commit()
    return True


def expire_due(session: Session, now: datetime | None = None) -> list[uuid.UUID]:
    """End the held applies whose approval expired (a periodic job)."""
    due = session.exec(
        select(ApprovalRequest.run_id)
        .join(Run, Run.id == ApprovalRequest.run_id)  # type: ignore[arg-type]
        .where(
            ApprovalRequest.state == RequestState.pending,
            col(ApprovalRequest.expires_at) <= (now or utcnow()),
            Run.status == RunStatus.pending_approval,  # not one cancelled meanwhile
        )
    ).all()
    ended = []
    for run_id in due:
        run = session.exec(select(Run).where(Run.id == run_id).with_for_update()).first()
        request = session.get(ApprovalRequest, run_id)
        if run is None or request is None or run.status is not RunStatus.pending_approval:
            continue
        org = found(session.get(Organisation, run.organisation_id), "the run's organisation")
        if _expire_if_due(session, org, run, request, now):
            ended.append(run_id)
    return ended


# --- reading ---------------------------------------------------------------------------------


def approval_of(
    *, session: Session, actor: Actor, organisation: str, run_id: uuid.UUID
) -> tuple[ApprovalRequest | None, list[Approval]]:
    """A run's approval request (None if it was never held) and its decisions, oldest first."""
    org = organisation_by_name(session, name=organisation)
    authorize(actor, Action.run_read, org.id)
    run = session.get(Run, run_id)
    if run is None or run.organisation_id != org.id:
        raise NotFound(f"no run {run_id} in {org.name}")
    request = session.get(ApprovalRequest, run.id)
    decisions = list(
        session.exec(select(Approval).where(Approval.run_id == run.id).order_by(col(Approval.at)))
    )
    return request, decisions


def may_decide(actor: Actor, org_id: uuid.UUID, request: ApprovalRequest) -> bool:
    """Whether `actor` could approve or refuse this request (for the pages)."""
    role = actor.role_in(org_id)
    allowed = {r for req in request.requirements for r in req["roles"]}
    return (
        actor.user_id is not None
        and role is not None
        and str(role) in allowed
        and actor.user_id != request.requester_id
    )
