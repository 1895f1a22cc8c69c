"""Provision requests with consent (provider side of the Open Service Broker API).

A request from a peer (signed) or an OSB platform (its credential) lands as a pending
instance in the organisation that publishes the offering, after its parameters pass
the plan's JSON Schema and the settings the module makes of them (its
offering's ``instance_settings``, see ``service_hooks``) pass the module's settings model. An
owner or operator approves or declines it, or the offering's policy approves it (listed
peers, within their quota of instances). Approval stores the secrets the module
generated as credentials and creates a definition from the offering's module on the
offering's host pool, and an apply run, in one transaction. A module that takes one
definition a host (not ``multiple``) gets the pool to itself: a request, or its approval,
is refused while another definition of that module applies to the pool's hosts (an
instance whose removal has run is settled first, so its definition no longer counts).
Updates are in ``updates``, deprovisioning in ``instances`` and ``removals``.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any, Literal

from jsonschema.exceptions import SchemaError, ValidationError
from pydantic import ValidationError as ModelError
from sqlmodel import Session, col, func, select

from federation.models.osb import InfracmsContext, ProvisionRequest
from federation.schemas import parameters_validator
from infracms.config import Settings
from infracms.errors import Conflict, InfracmsError, NotFound
from infracms.keys import Keyring
from infracms.models.base import utcnow
from infracms.models.federation import (
    ApprovalPolicy,
    InstanceStatus,
    PublishedOffering,
    ServiceInstance,
)
from infracms.models.host import HostGroup
from infracms.models.organisation import Organisation
from infracms.models.run import Run, RunStatus
from infracms.plugins import Plugins
from infracms.services import audit, definitions, notifications, runs
from infracms.services.authz import Action, authorize
from infracms.services.common import commit, found, organisation_by_name
from infracms.services.context import Actor, system_actor
from infracms.services.federation import limits, removals, service_hooks, service_secrets, usage
from infracms.services.federation.broker_errors import (
    AsyncRequired,
    BrokerBadRequest,
    InstanceConflict,
)
from infracms.services.federation.catalog import LIVE
from infracms.services.federation.instance_audit import cross_reference, new_operation, subject
from infracms.services.federation.offerings import plan_of

MAX_PENDING: int = Settings.model_fields["peer_max_pending"].default


@dataclass(frozen=True)
class BrokerCaller:
    """Who calls the broker: a verified peer, or an OSB platform with its credential."""

    kind: Literal["peer", "platform"]
    name: str
    peer_id: uuid.UUID | None = None
    nonce: str | None = None

    @property
    def label(self) -> str:
        """``peer:<name>`` or ``platform:<name>``, as instances and usage record it."""
        return f"{self.kind}:{self.name}"

    @property
    def actor(self) -> Actor:
        """The identity its changes are recorded under."""
        return Actor(kind="peer" if self.kind == "peer" else "token", id=self.name, name=self.label)


@dataclass(frozen=True)
class Provisioned:
    """What a provision (or approval) did: the instance, and a run to submit if any."""

    instance: ServiceInstance
    run_id: uuid.UUID | None
    created: bool
    ready: bool = False  # the same request again, for an instance fully provisioned (200)


def request_instance(
    *,
    session: Session,
    plugins: Plugins,
    caller: BrokerCaller,
    instance_id: str,
    request: ProvisionRequest,
    accepts_incomplete: bool,
    keyring: Keyring,
    max_pending: int = MAX_PENDING,
) -> Provisioned:
    """``PUT /v2/service_instances/:id``: record a pending request (or return the same one);
    a client with ``max_pending`` requests awaiting consent is refused (429)."""
    if not accepts_incomplete:
        raise AsyncRequired("provisioning waits for consent: send accepts_incomplete=true")
    _check_platform_guids(caller, request)
    publication, plan = _offering(session, request.service_id, request.plan_id)
    parameters = dict(request.parameters or {})
    existing = _existing(session, caller, instance_id)
    if existing is not None:
        return _same_request(session, existing, request, parameters)
    limits.check_pending(session, client=caller.label, most=max_pending)
    context = _context(caller, request)
    check_parameters(plan, parameters)
    service_hooks.instance_settings(
        session,
        plugins=plugins,
        publication=publication,
        plan=plan,
        parameters=parameters,
        prefix="svc-request-",
    )
    check_capacity(session, plan=plan)
    _check_pool(session, plugins, publication)
    instance = ServiceInstance(
        instance_id=instance_id,
        client=caller.label,
        peer_id=caller.peer_id,
        publication_id=publication.id,
        organisation_id=publication.organisation_id,
        offering_id=publication.offering_id,
        plan_id=plan["id"],
        parameters=parameters,
        context=context,
        operation=new_operation("provision"),
        request_nonce=caller.nonce,
    )
    session.add(instance)
    audit.record(
        session,
        actor=caller.actor,
        action="service.request",
        subject=subject(session, instance=instance),
        organisation_id=instance.organisation_id,
        payload={**cross_reference(instance), "parameters": parameters, "requester": context},
    )
    notifications.provision_requested(session, instance)
    commit(session, conflict=f"instance {instance_id} exists already")
    run_id = _auto_approve(session, plugins, caller, publication, instance, keyring)
    return Provisioned(instance, run_id, created=True)


def approve(
    *,
    session: Session,
    actor: Actor,
    plugins: Plugins,
    organisation: str,
    instance: uuid.UUID,
    keyring: Keyring,
) -> Provisioned:
    """Approve a pending request: create its definition and start the apply run."""
    org = organisation_by_name(session, name=organisation)
    authorize(actor, Action.provision_decide, org.id)
    row = pending_in(session, org=org, instance=instance)
    run_id = _start(session, actor, plugins, org, row, why="approved", keyring=keyring)
    return Provisioned(row, run_id, created=False)


def decline(
    *, session: Session, actor: Actor, organisation: str, instance: uuid.UUID, reason: str = ""
) -> ServiceInstance:
    """Decline a pending request; the requester's last_operation reports it failed."""
    org = organisation_by_name(session, name=organisation)
    authorize(actor, Action.provision_decide, org.id)
    row = pending_in(session, org=org, instance=instance)
    row.status, row.decided_by, row.decided_at = InstanceStatus.declined, actor.name, utcnow()
    row.reason = reason[:1000] or "declined"
    row.ended_at = row.decided_at
    session.add(row)
    audit.record(
        session,
        actor=actor,
        action="service.decline",
        subject=subject(session, instance=row),
        organisation_id=org.id,
        payload={**cross_reference(row), "reason": row.reason},
    )
    commit(session)
    return row


def check_parameters(plan: dict[str, Any], parameters: dict[str, Any]) -> None:
    """Refuse parameters that do not follow the plan's JSON Schema, naming each problem,
    also by field (``parameters.<name>``)."""
    schema = plan.get("parameters") or {"type": "object"}
    try:
        validator = parameters_validator(schema)
        problems = sorted(validator.iter_errors(parameters), key=lambda e: list(e.path))
    except SchemaError as exc:
        raise BrokerBadRequest(f"plan {plan['id']} has an invalid schema: {exc.message}") from exc
    if problems:
        listed = "; ".join(
            f"{'.'.join(map(str, p.path)) or 'parameters'}: {p.message}" for p in problems[:10]
        )
        errors: dict[str, str] = {}
        for problem in problems:
            errors.setdefault(_field(problem, parameters), problem.message)
        raise BrokerBadRequest(f"parameters do not fit plan {plan['id']}: {listed}", errors=errors)
    service_hooks.refuse_references(parameters)


def _field(problem: ValidationError, parameters: dict[str, Any]) -> str:
    """The parameter a schema problem is about: ``parameters.<name>``, or ``parameters``."""
    path = list(problem.absolute_path)
    if path:
        return f"parameters.{path[0]}"
    if problem.validator == "required" and isinstance(problem.validator_value, list):
        missing = [name for name in problem.validator_value if name not in parameters]
        if missing:
            return f"parameters.{missing[0]}"
    return "parameters"


def pending_in(session: Session, *, org: Organisation, instance: uuid.UUID) -> ServiceInstance:
    """A pending request of an organisation, or NotFound / Conflict."""
    row = session.get(ServiceInstance, instance)
    if row is None or row.organisation_id != org.id:
        raise NotFound(f"no provision request {instance} in {org.name}")
    if row.status is not InstanceStatus.pending:
        raise Conflict(f"request {instance} is {row.status}, not pending")
    return row


def _start(
    session: Session,
    actor: Actor,
    plugins: Plugins,
    org: Organisation,
    row: ServiceInstance,
    *,
    why: str,
    keyring: Keyring,
) -> uuid.UUID:
    publication = session.get(PublishedOffering, row.publication_id)
    group = session.get(HostGroup, publication.group_id) if publication else None
    publication, group = found(publication, "the offering"), found(group, "the group")
    removals.settle_pool(session, publication=publication)
    holders = service_hooks.definitions_on_pool(session, plugins=plugins, publication=publication)
    if holders:
        raise Conflict(
            f"group {group.name} already has {publication.module} from {', '.join(holders)}; "
            f"{publication.module} takes one definition a host, so the instance needs the "
            "pool to itself"
        )
    plan = plan_of(publication, row.plan_id) or {"plan": row.plan_id}
    generated = service_hooks.instance_settings(
        session,
        plugins=plugins,
        publication=publication,
        plan=plan,
        parameters=row.parameters,
        prefix=service_secrets.credential_prefix(row),
    )
    name = f"svc-{row.id.hex[:12]}"
    row.status, row.definition = InstanceStatus.provisioning, name
    row.decided_by, row.decided_at = actor.name, utcnow()
    session.add(row)
    audit.record(
        session,
        actor=actor,
        action="service.approve",
        subject=subject(session, instance=row),
        organisation_id=org.id,
        payload={**cross_reference(row), "definition": name, "why": why},
    )
    usage.start(session, instance=row)
    if generated.secrets:
        service_secrets.store_secrets(
            session,
            keyring=keyring,
            actor=actor,
            organisation=org,
            generated=generated,
            why=f"generated for service instance {row.instance_id} ({row.client})",
            pool=group.id,
        )
    definitions.add_definition(
        session,
        actor=actor,
        plugins=plugins,
        organisation=org.name,
        data={
            "name": name,
            "module": publication.module,
            "target": {"group": group.name},
            "settings": generated.settings,
            "description": f"{row.offering_id} for {row.client} ({row.instance_id})"[:500],
            "message": f"service instance {row.instance_id} {why}",
        },
    )
    run = runs.create_run(  # commits the approval, the definition and the run together
        session=session,
        actor=actor,
        plugins=plugins,
        organisation=org.name,
        data={"kind": "apply", "definitions": [name]},
    )
    row.run_id = run.id
    session.add(row)
    session.commit()
    return run.id


def _auto_approve(
    session: Session,
    plugins: Plugins,
    caller: BrokerCaller,
    publication: PublishedOffering,
    instance: ServiceInstance,
    keyring: Keyring,
) -> uuid.UUID | None:
    if publication.policy is not ApprovalPolicy.auto or caller.kind != "peer":
        return None
    if caller.name not in publication.auto_approve_peers:
        return None
    live = session.exec(
        select(func.count())
        .select_from(ServiceInstance)
        .where(
            ServiceInstance.publication_id == publication.id,
            ServiceInstance.client == caller.label,
            col(ServiceInstance.status).in_((InstanceStatus.provisioning,)),
        )
    ).one()
    if live >= publication.quota:
        return None
    org = session.get(Organisation, publication.organisation_id)
    org = found(org, "the organisation")
    policy = system_actor(f"policy:{publication.offering_id}")
    try:
        return _start(
            session, policy, plugins, org, instance, why="approved by policy", keyring=keyring
        )
    except InfracmsError as exc:
        session.rollback()
        audit.record(
            session,
            actor=policy,
            action="service.auto_approve_failed",
            subject=subject(session, instance=instance),
            organisation_id=org.id,
            payload={**cross_reference(instance), "error": exc.detail[:500]},
        )
        session.commit()
        return None


def _offering(
    session: Session, service_id: str, plan_id: str
) -> tuple[PublishedOffering, dict[str, Any]]:
    publication = session.exec(
        select(PublishedOffering).where(
            PublishedOffering.offering_id == service_id,
            col(PublishedOffering.withdrawn_at).is_(None),
        )
    ).first()
    if publication is None:
        raise BrokerBadRequest(f"no service {service_id!r} in this broker's catalog")
    plan = plan_of(publication, plan_id)
    if plan is None:
        raise BrokerBadRequest(f"service {service_id} has no plan {plan_id!r}")
    return publication, plan


def _existing(session: Session, caller: BrokerCaller, instance_id: str) -> ServiceInstance | None:
    return session.exec(
        select(ServiceInstance).where(
            ServiceInstance.client == caller.label, ServiceInstance.instance_id == instance_id
        )
    ).first()


def _same_request(
    session: Session,
    existing: ServiceInstance,
    request: ProvisionRequest,
    parameters: dict[str, Any],
) -> Provisioned:
    same = (
        existing.offering_id == request.service_id
        and existing.plan_id == request.plan_id
        and existing.parameters == parameters
        and existing.status not in (InstanceStatus.ended, InstanceStatus.declined)
    )
    if not same:
        raise InstanceConflict(f"instance {existing.instance_id} exists with other attributes")
    run = session.get(Run, existing.run_id) if existing.run_id else None
    ready = existing.status is InstanceStatus.provisioning and (
        run is not None and run.status is RunStatus.succeeded
    )
    return Provisioned(existing, None, created=False, ready=ready)


def _check_platform_guids(caller: BrokerCaller, request: ProvisionRequest) -> None:
    """An OSB platform MUST send both GUIDs (OSB v2.17); a peer names its organisation in
    the infracms context instead (PROTOCOL.md 6.1)."""
    if caller.kind == "peer":
        return
    missing = [
        name for name in ("organization_guid", "space_guid") if getattr(request, name) is None
    ]
    if missing:
        raise BrokerBadRequest(
            f"{' and '.join(missing)} required: a platform names where the instance belongs"
        )


def _context(caller: BrokerCaller, request: ProvisionRequest) -> dict[str, Any]:
    raw = dict(request.context or {})
    if caller.kind == "peer":
        try:
            context = InfracmsContext.model_validate(raw)
        except ModelError as exc:
            raise BrokerBadRequest(f"context is not an infracms context: {exc}") from exc
        if context.node != caller.name:
            raise BrokerBadRequest(
                f"context names node {context.node}, the signer is {caller.name}"
            )
        return context.to_json_value()
    organisation = raw.get("organization") or request.organization_guid or "unknown"
    return {**raw, "organization": str(organisation)}


def check_capacity(session: Session, *, plan: dict[str, Any]) -> None:
    """Refuse a plan with no capacity left."""
    capacity = plan.get("capacity")
    if capacity is None:
        return
    live = session.exec(
        select(func.count())
        .select_from(ServiceInstance)
        .where(ServiceInstance.plan_id == plan["id"], col(ServiceInstance.status).in_(LIVE))
    ).one()
    if live >= capacity:
        raise BrokerBadRequest(f"plan {plan['id']} has no capacity left ({capacity} in use)")


def _check_pool(session: Session, plugins: Plugins, publication: PublishedOffering) -> None:
    """Refuse a request that could not be applied: the module already holds the pool."""
    removals.settle_pool(session, publication=publication)
    holders = service_hooks.definitions_on_pool(session, plugins=plugins, publication=publication)
    if holders:
        raise BrokerBadRequest(
            f"service {publication.offering_id} has no room: its hosts already run "
            f"{publication.module} ({', '.join(holders)})"
        )
