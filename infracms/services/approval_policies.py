"""Approval policies: which applies of an organisation need approval, how many and from whom.

Set by owners (``org.update``); a policy that asks more approvals than the organisation has
members of its roles is refused on ``approvals_required``, and named hosts and groups
must exist (a typo would leave hosts unguarded). Each change is an audit entry with the
policy before and after. Applies already held keep the needs they were held with.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Any

from sqlalchemy import func
from sqlmodel import Session, col, select

from infracms.errors import InvalidInput, NotFound
from infracms.models.approval import ApprovalPolicy, ApprovalPolicyCreate
from infracms.models.base import utcnow
from infracms.models.host import Host
from infracms.models.organisation import Organisation
from infracms.models.user import Membership, Role, User
from infracms.services import audit, rendering
from infracms.services.authz import Action, authorize
from infracms.services.common import Fields, commit, organisation_by_name, parse
from infracms.services.context import Actor


def set_policy(
    *, session: Session, actor: Actor, organisation: str, data: ApprovalPolicyCreate | Fields
) -> ApprovalPolicy:
    """Create a policy, or replace the one of that name (owners only)."""
    org = organisation_by_name(session, name=organisation)
    authorize(actor, Action.org_update, org.id)
    policy_in = parse(ApprovalPolicyCreate, data)
    _check_targets(session, org, policy_in)
    eligible = _eligible_count(session, org.id, policy_in.roles)
    if policy_in.approvals_required > eligible:
        raise InvalidInput(
            "not enough approvers",
            errors={
                "approvals_required": f"{policy_in.approvals_required} approvals asked, but "
                f"only {eligible} member(s) have the role(s) {', '.join(policy_in.roles)}"
            },
        )
    policy = session.exec(
        select(ApprovalPolicy).where(
            ApprovalPolicy.organisation_id == org.id, ApprovalPolicy.name == policy_in.name
        )
    ).first()
    before = _policy_fields(policy) if policy else {}
    policy = policy or ApprovalPolicy(organisation_id=org.id, name=policy_in.name)
    for key, value in policy_in.model_dump(exclude={"name"}).items():
        setattr(policy, key, [str(v) for v in value] if isinstance(value, list) else value)
    policy.updated_at = utcnow()
    session.add(policy)
    audit.record(
        session,
        actor=actor,
        action="approval_policy.set",
        subject=f"approval_policy:{org.name}/{policy.name}",
        organisation_id=org.id,
        payload={"before": before, "after": _policy_fields(policy)},
    )
    commit(session, conflict=f"a policy called {policy.name} was just set: try again")
    return policy


def _policy_fields(policy: ApprovalPolicy) -> dict[str, Any]:
    return {
        "hosts": list(policy.hosts),
        "groups": list(policy.groups),
        "modules": list(policy.modules),
        "approvals_required": policy.approvals_required,
        "roles": list(policy.roles),
        "expires_hours": policy.expires_hours,
    }


def _check_targets(session: Session, org: Organisation, policy: ApprovalPolicyCreate) -> None:
    """Named hosts and groups must exist (a typo would leave hosts unguarded)."""
    hosts = set(session.exec(select(Host.name).where(Host.organisation_id == org.id)))
    groups = set(rendering.group_parents(session, organisation_id=org.id))
    errors = {}
    if set(policy.hosts) - hosts:
        errors["hosts"] = f"no such hosts: {', '.join(sorted(set(policy.hosts) - hosts))}"
    if set(policy.groups) - groups:
        errors["groups"] = f"no such groups: {', '.join(sorted(set(policy.groups) - groups))}"
    if errors:
        raise InvalidInput("unknown hosts or groups", errors=errors)


def _eligible_count(session: Session, organisation_id: uuid.UUID, roles: Iterable[Role]) -> int:
    """How many active members hold one of `roles`."""
    query = (
        select(func.count())
        .select_from(Membership)
        .join(User, User.id == Membership.user_id)  # type: ignore[arg-type]
        .where(
            Membership.organisation_id == organisation_id,
            col(Membership.role).in_(list(roles)),
            col(User.is_active).is_(True),
        )
    )
    return int(session.exec(query).one())


def list_policies(*, session: Session, actor: Actor, organisation: str) -> list[ApprovalPolicy]:
    """The organisation's policies, by name."""
    org = organisation_by_name(session, name=organisation)
    authorize(actor, Action.org_read, org.id)
    return list(
        session.exec(
            select(ApprovalPolicy)
            .where(ApprovalPolicy.organisation_id == org.id)
            .order_by(col(ApprovalPolicy.name))
        )
    )


def delete_policy(*, session: Session, actor: Actor, organisation: str, name: str) -> None:
    """Remove a policy (owners only); applies already held keep what they asked for."""
    org = organisation_by_name(session, name=organisation)
    authorize(actor, Action.org_update, org.id)
    policy = session.exec(
        select(ApprovalPolicy).where(
            ApprovalPolicy.organisation_id == org.id, ApprovalPolicy.name == name
        )
    ).first()
    if policy is None:
        raise NotFound(f"no approval policy called {name!r} in {org.name}")
    session.delete(policy)
    audit.record(
        session,
        actor=actor,
        action="approval_policy.delete",
        subject=f"approval_policy:{org.name}/{name}",
        organisation_id=org.id,
        payload={"before": _policy_fields(policy)},
    )
    commit(session)
