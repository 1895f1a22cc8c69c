"""Provided service instances after the request: progress, bindings, deprovisioning.

``last_operation`` reports the instance's last operation (provision, update or
deprovision: ``instance_audit.operation_kind``) from the instance and its run: awaiting
approval, applying, succeeded, or failed (declined, or the run failed). A binding hands
the requester the connection details the module's offering makes (its
``connection_details``, see ``service_hooks``), sealed at rest with a context per
binding; they never enter an audit payload. Deprovisioning closes the usage record,
drops the bindings, deletes the credentials generated for the instance, and starts the
run that removes it from its hosts (``removals``); the instance ends when that run
succeeded.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import BaseModel
from sqlmodel import Session, col, select

from federation.encoding import canonical_json
from federation.models.osb import LastOperationResponse, LastOperationState
from infracms.errors import NotFound
from infracms.keys import Keyring
from infracms.models.base import utcnow
from infracms.models.federation import (
    InstanceStatus,
    PublishedOffering,
    ServiceBinding,
    ServiceInstance,
)
from infracms.models.run import Run, RunStatus
from infracms.plugins import Plugins
from infracms.services import audit
from infracms.services.authz import Action, authorize
from infracms.services.common import organisation_by_name
from infracms.services.context import Actor
from infracms.services.federation import removals, service_hooks, service_secrets, usage
from infracms.services.federation.broker_errors import (
    AsyncRequired,
    BrokerBadRequest,
    ConcurrencyError,
    Gone,
    InstanceConflict,
)
from infracms.services.federation.instance_audit import (
    caller_system,
    cross_reference,
    new_operation,
    operation_kind,
    subject,
)
from infracms.services.federation.offerings import plan_of
from infracms.services.federation.provisioning import BrokerCaller

IN_PROGRESS, SUCCEEDED, FAILED = (
    LastOperationState.IN_PROGRESS,
    LastOperationState.SUCCEEDED,
    LastOperationState.FAILED,
)


class InstancePublic(BaseModel):
    """A provided instance (a provision request) as the provider's pages and API show it."""

    id: uuid.UUID
    instance_id: str
    client: str
    offering_id: str
    plan_id: str
    parameters: dict[str, Any]
    context: dict[str, Any]
    status: InstanceStatus
    state: LastOperationState
    description: str
    definition: str | None
    run_id: uuid.UUID | None
    decided_by: str | None
    decided_at: datetime | None
    reason: str | None
    created_at: datetime
    ended_at: datetime | None


def instance_of(session: Session, *, caller: BrokerCaller, instance_id: str) -> ServiceInstance:
    """A caller's instance by its OSB id, or 404."""
    row = session.exec(
        select(ServiceInstance).where(
            ServiceInstance.client == caller.label, ServiceInstance.instance_id == instance_id
        )
    ).first()
    if row is None:
        raise NotFound(f"no service instance {instance_id}")
    return row


def last_operation(
    session: Session, *, row: ServiceInstance, node: str, operation: str | None = None
) -> LastOperationResponse:
    """What ``GET .../last_operation`` answers for an instance (ending it once removed).

    Only the instance's last operation is reported: an older one is a bad request.
    """
    if operation is not None and operation != row.operation:
        raise BrokerBadRequest(
            f"operation {operation!r} is not the last operation of instance "
            f"{row.instance_id} ({row.operation})"
        )
    removals.settle(session, row=row)
    state, description = progress(session, row=row, node=node)
    usable = True if state is FAILED and operation_kind(row) == "update" else None
    return LastOperationResponse(
        state=state, description=description, instance_usable=usable, update_repeatable=usable
    )


def progress(
    session: Session, *, row: ServiceInstance, node: str
) -> tuple[LastOperationState, str]:
    """The OSB state of an instance's last operation, and words for it."""
    if row.status is InstanceStatus.pending:
        return IN_PROGRESS, f"awaiting approval by {node}"
    if row.status is InstanceStatus.declined:
        return FAILED, f"declined by {node}: {row.reason or 'no reason given'}"
    run = session.get(Run, row.run_id) if row.run_id else None
    if row.status is InstanceStatus.ended:
        return SUCCEEDED, "deprovisioned" + (f": {row.reason}" if row.reason else "")
    if run is None:
        if row.status is InstanceStatus.deprovisioning:
            return SUCCEEDED, "deprovisioned"
        if operation_kind(row) == "update":
            return SUCCEEDED, "updated: the settings stay as they were, nothing to apply"
        return IN_PROGRESS, "approved: starting the run"
    doing = {"deprovision": "removing", "update": "updating"}.get(operation_kind(row), "applying")
    if not run.status.finished:  # awaiting approval, queued or running
        return IN_PROGRESS, f"{doing}: run {run.id} is {run.status}"
    if run.status is RunStatus.succeeded:
        return SUCCEEDED, f"run {run.id} succeeded"
    return FAILED, f"run {run.id} {run.status}: {(run.error or 'see the run')[:300]}"


def bind(
    *,
    session: Session,
    keyring: Keyring,
    caller: BrokerCaller,
    instance_id: str,
    binding_id: str,
    plugins: Plugins,
    service_id: str | None = None,
    plan_id: str | None = None,
) -> tuple[bool, dict[str, Any]]:
    """Hand the caller its connection details: (created, credentials)."""
    row = instance_of(session, caller=caller, instance_id=instance_id)
    check_request_ids(session, row=row, service_id=service_id, plan_id=plan_id)
    if (
        progress(session, row=row, node="")[0] is not SUCCEEDED
        or row.status is not InstanceStatus.provisioning
    ):
        raise ConcurrencyError(f"instance {instance_id} is not ready to bind")
    existing = _binding(session, row, binding_id)
    if existing is not None:
        if existing.deleted_at is not None:
            raise InstanceConflict(f"binding {binding_id} was deleted")
        return False, _open(keyring, existing)
    binding = ServiceBinding(instance_id=row.id, binding_id=binding_id, sealed="")
    credentials = service_hooks.connection_details(
        session, keyring=keyring, plugins=plugins, row=row
    )
    binding.sealed = keyring.seal(canonical_json(credentials).decode(), context=_context(binding))
    session.add(binding)
    audit.record(
        session,
        actor=caller.actor,
        action="service.bind",
        subject=subject(session, instance=row),
        organisation_id=row.organisation_id,
        payload={**cross_reference(row), "binding_id": binding_id, "nonce": caller.nonce},
    )
    session.commit()
    return True, credentials


def binding_credentials(
    *, session: Session, keyring: Keyring, caller: BrokerCaller, instance_id: str, binding_id: str
) -> dict[str, Any]:
    """``GET .../service_bindings/:id``: the same details again."""
    row = instance_of(session, caller=caller, instance_id=instance_id)
    binding = _binding(session, row, binding_id)
    if binding is None or binding.deleted_at is not None:
        raise NotFound(f"no binding {binding_id}")
    return _open(keyring, binding)


def unbind(*, session: Session, caller: BrokerCaller, instance_id: str, binding_id: str) -> None:
    """Drop a binding; Gone if there is none."""
    row = instance_of(session, caller=caller, instance_id=instance_id)
    binding = _binding(session, row, binding_id)
    if binding is None or binding.deleted_at is not None:
        raise Gone(f"no binding {binding_id}")
    binding.deleted_at, binding.sealed = utcnow(), ""
    session.add(binding)
    audit.record(
        session,
        actor=caller.actor,
        action="service.unbind",
        subject=subject(session, instance=row),
        organisation_id=row.organisation_id,
        payload={**cross_reference(row), "binding_id": binding_id, "nonce": caller.nonce},
    )
    session.commit()


@dataclass(frozen=True)
class Deprovisioned:
    """What a deprovision did: the instance, a run to submit if any, and whether it goes
    on (202 with the operation) or is done (200)."""

    instance: ServiceInstance
    run_id: uuid.UUID | None
    pending: bool


def deprovision(
    *,
    session: Session,
    plugins: Plugins,
    caller: BrokerCaller,
    instance_id: str,
    service_id: str | None = None,
    plan_id: str | None = None,
    accepts_incomplete: bool = True,
) -> Deprovisioned:
    """End an instance: close its usage, drop its bindings and generated credentials, and
    start the run that removes it from its hosts. Asked again while that run goes on, the
    same operation; after it failed, another run. Deprovisioning is asynchronous, like
    provisioning and updates: without `accepts_incomplete` it is refused (422
    AsyncRequired) before anything changes."""
    try:
        row = instance_of(session, caller=caller, instance_id=instance_id)
    except NotFound as exc:
        raise Gone(f"no service instance {instance_id}") from exc
    check_request_ids(session, row=row, service_id=service_id, plan_id=plan_id)
    if not accepts_incomplete:
        raise AsyncRequired(f"removing {instance_id} is asynchronous: send accepts_incomplete=true")
    if row.status is InstanceStatus.deprovisioning:
        return _again(session, plugins, row, instance_id)
    if row.status in (InstanceStatus.ended, InstanceStatus.declined):
        raise Gone(f"service instance {instance_id} is already gone")
    if (
        row.status is InstanceStatus.provisioning
        and progress(session, row=row, node="")[0] is IN_PROGRESS
    ):
        raise ConcurrencyError(f"instance {instance_id} is still being provisioned or updated")
    _record_deprovision(session, caller, row)
    if row.definition is None:  # never approved: nothing was created
        row.status, row.ended_at = InstanceStatus.ended, utcnow()
        session.add(row)
        session.commit()
        return Deprovisioned(row, None, pending=False)
    session.commit()  # the deprovisioning stands, whatever its removal does
    run_id = removals.start(session, plugins=plugins, row=row)
    return Deprovisioned(row, run_id, pending=run_id is not None)


def check_request_ids(
    session: Session, *, row: ServiceInstance, service_id: str | None, plan_id: str | None
) -> None:
    """400 for a request that names another service than the instance's, or a plan its
    service does not have (any of its plans: a requester may not know of a plan change)."""
    if service_id is not None and service_id != row.offering_id:
        raise BrokerBadRequest(f"service_id {service_id!r} is not the instance's service")
    if plan_id is None:
        return
    publication = session.get(PublishedOffering, row.publication_id)
    if publication is None or plan_of(publication, plan_id) is None:
        raise BrokerBadRequest(f"service {row.offering_id} has no plan {plan_id!r}")


def _again(
    session: Session,
    plugins: Plugins,
    row: ServiceInstance,
    instance_id: str,
) -> Deprovisioned:
    """A deprovision asked again: the same operation, or a new run after a failed one."""
    if removals.settle(session, row=row):
        raise Gone(f"service instance {instance_id} is already gone")
    state, _ = progress(session, row=row, node="")
    if state is not FAILED:
        return Deprovisioned(row, None, pending=True)
    row.operation = new_operation("deprovision")
    audit.record(
        session,
        actor=caller_system(row),
        action="service.deprovision_retry",
        subject=subject(session, instance=row),
        organisation_id=row.organisation_id,
        payload={**cross_reference(row), "failed_run": str(row.run_id)},
    )
    session.add(row)
    session.commit()
    run_id = removals.retry(session, plugins=plugins, row=row)
    return Deprovisioned(row, run_id, pending=run_id is not None)


def _record_deprovision(session: Session, caller: BrokerCaller, row: ServiceInstance) -> None:
    """The deprovisioning, audited, in the caller's transaction."""
    row.operation = new_operation("deprovision")
    row.status, row.run_id = InstanceStatus.deprovisioning, None
    session.add(row)
    usage.end(session, instance=row)
    service_secrets.forget_secrets(session, actor=caller_system(row), row=row)
    for binding in session.exec(select(ServiceBinding).where(ServiceBinding.instance_id == row.id)):
        binding.deleted_at, binding.sealed = binding.deleted_at or utcnow(), ""
        session.add(binding)
    audit.record(
        session,
        actor=caller.actor,
        action="service.deprovision",
        subject=subject(session, instance=row),
        organisation_id=row.organisation_id,
        payload={**cross_reference(row), "nonce": caller.nonce},
    )


def list_requests(
    *, session: Session, actor: Actor, organisation: str, status: InstanceStatus | None = None
) -> list[InstancePublic]:
    """The provision requests and instances of an organisation (the providing side)."""
    org = organisation_by_name(session, name=organisation)
    authorize(actor, Action.provision_read, org.id)
    query = select(ServiceInstance).where(ServiceInstance.organisation_id == org.id)
    if status is not None:
        query = query.where(ServiceInstance.status == status)
    rows = session.exec(query.order_by(col(ServiceInstance.created_at).desc())).all()
    return [describe(session, row=row, node=org.name) for row in rows]


def get_request(
    *, session: Session, actor: Actor, organisation: str, instance: uuid.UUID
) -> InstancePublic:
    """One provision request or instance of an organisation."""
    org = organisation_by_name(session, name=organisation)
    authorize(actor, Action.provision_read, org.id)
    row = session.get(ServiceInstance, instance)
    if row is None or row.organisation_id != org.id:
        raise NotFound(f"no provision request {instance} in {org.name}")
    return describe(session, row=row, node=org.name)


def describe(session: Session, *, row: ServiceInstance, node: str) -> InstancePublic:
    """An instance with its OSB state."""
    state, description = progress(session, row=row, node=node)
    return InstancePublic(**row.model_dump(), state=state, description=description)


def _binding(session: Session, row: ServiceInstance, binding_id: str) -> ServiceBinding | None:
    return session.exec(
        select(ServiceBinding).where(
            ServiceBinding.instance_id == row.id, ServiceBinding.binding_id == binding_id
        )
    ).first()


def _context(binding: ServiceBinding) -> str:
    return f"service-binding:{binding.id}"


def _open(keyring: Keyring, binding: ServiceBinding) -> dict[str, Any]:
    value: dict[str, Any] = json.loads(keyring.open(binding.sealed, context=_context(binding)))
    return value
