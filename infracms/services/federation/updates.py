"""Updating a provided instance: another plan of its offering, or other parameters.

``PATCH /v2/service_instances/:id`` (OSB v2.17). The parameters sent replace those of
the same name, the others are kept, and together they must fit the (new) plan's JSON
Schema. A plan change needs the plan in the instance's offering, still published, and
an offering whose plans may be changed (``federation.broker.plan_updateable``, as the
catalog says). The module's offering (``updated_settings``) makes the instance's new settings
from its current ones; when they differ they are saved as a new revision of the
instance's definition (audited like every revision) and applied to the pool by a run,
which ``last_operation`` follows. An instance awaiting approval, or whose provision or
update is still applying, refuses another change (ConcurrencyError), but the same update
sent again gets the same operation; a change that changes nothing is done at once.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from sqlmodel import Session

from federation.broker import plan_updateable
from federation.models.osb import UpdateRequest
from infracms.errors import NotFound
from infracms.keys import Keyring
from infracms.models.federation import InstanceStatus, PublishedOffering, ServiceInstance
from infracms.models.organisation import Organisation
from infracms.plugins import Plugins
from infracms.services import audit, definitions, runs
from infracms.services.common import found
from infracms.services.federation import service_hooks, service_secrets, usage
from infracms.services.federation.broker_errors import (
    AsyncRequired,
    BrokerBadRequest,
    ConcurrencyError,
    Gone,
    MaintenanceInfoConflict,
    UnknownInstance,
    UnsupportedChange,
)
from infracms.services.federation.instance_audit import (
    caller_system,
    cross_reference,
    new_operation,
    operation_kind,
    organisation_name,
    subject,
)
from infracms.services.federation.instances import IN_PROGRESS, instance_of, progress
from infracms.services.federation.offerings import plan_of, wire_offering
from infracms.services.federation.provisioning import (
    BrokerCaller,
    check_capacity,
    check_parameters,
)

ENDED = (InstanceStatus.ended, InstanceStatus.declined, InstanceStatus.deprovisioning)


@dataclass(frozen=True)
class Updated:
    """What an update did: the instance, a run to submit if any, and whether it goes on
    (202 with the operation) or is done (200)."""

    instance: ServiceInstance
    run_id: uuid.UUID | None
    pending: bool


def update_instance(
    *,
    session: Session,
    plugins: Plugins,
    keyring: Keyring,
    caller: BrokerCaller,
    instance_id: str,
    request: UpdateRequest,
    accepts_incomplete: bool,
) -> Updated:
    """``PATCH /v2/service_instances/:id``: change the plan or the parameters."""
    if not accepts_incomplete:
        raise AsyncRequired("an update applies a run: send accepts_incomplete=true")
    row = _instance(session, caller, instance_id)
    if request.service_id != row.offering_id:
        raise BrokerBadRequest(
            f"instance {instance_id} is of service {row.offering_id}, not {request.service_id}"
        )
    if request.maintenance_info is not None:
        raise MaintenanceInfoConflict("this broker's plans have no maintenance_info")
    publication = session.get(PublishedOffering, row.publication_id)
    publication = found(publication, "the offering")
    plan = _plan(publication, row, request.plan_id)
    parameters = {**row.parameters, **(request.parameters or {})}
    unchanged = plan["id"] == row.plan_id and parameters == row.parameters
    if progress(session, row=row, node="")[0] is IN_PROGRESS:
        if unchanged and operation_kind(row) == "update":
            return Updated(row, None, pending=True)  # sent again: the same operation
        raise ConcurrencyError(f"instance {instance_id} is still being {_doing(row)}")
    if unchanged:
        return Updated(row, None, pending=False)
    check_parameters(plan, parameters)
    if plan["id"] != row.plan_id:
        check_capacity(session, plan=plan)
    generated = service_hooks.updated_settings(
        session, plugins=plugins, row=row, plan=plan, parameters=parameters
    )
    run_id = _record(session, plugins, keyring, caller, row, plan, parameters, generated)
    return Updated(row, run_id, pending=run_id is not None)


def _instance(session: Session, caller: BrokerCaller, instance_id: str) -> ServiceInstance:
    try:
        row = instance_of(session, caller=caller, instance_id=instance_id)
    except NotFound as exc:
        raise UnknownInstance(f"no service instance {instance_id}") from exc
    if row.status in ENDED:
        raise Gone(f"service instance {instance_id} is {row.status}")
    return row


def _plan(
    publication: PublishedOffering, row: ServiceInstance, plan_id: str | None
) -> dict[str, Any]:
    """The plan the instance is to have: its own, or another of its offering."""
    if plan_id is None or plan_id == row.plan_id:
        return plan_of(publication, row.plan_id) or {"id": row.plan_id, "plan": row.plan_id}
    plan = plan_of(publication, plan_id)
    if plan is None:
        raise BrokerBadRequest(f"service {row.offering_id} has no plan {plan_id!r}")
    if publication.withdrawn_at is not None:
        raise UnsupportedChange(f"service {row.offering_id} is withdrawn: its plan stays")
    if not plan_updateable(wire_offering(publication, {}), row.plan_id):
        raise UnsupportedChange(f"the plans of service {row.offering_id} cannot be changed")
    return plan


def _doing(row: ServiceInstance) -> str:
    return {"provision": "provisioned", "update": "updated"}.get(operation_kind(row), "changed")


def _record(
    session: Session,
    plugins: Plugins,
    keyring: Keyring,
    caller: BrokerCaller,
    row: ServiceInstance,
    plan: dict[str, Any],
    parameters: dict[str, Any],
    generated: service_secrets.InstanceSettings,
) -> uuid.UUID | None:
    """Store the change, audited, with its revision and run when the settings change."""
    previous = {"plan": row.plan_id, "parameters": row.parameters}
    current = service_secrets.published_settings(session, row=row)
    org = session.get(Organisation, row.organisation_id)
    org = found(org, "the organisation")
    if plan["id"] != row.plan_id:
        usage.end(session, instance=row)
    row.plan_id, row.parameters = plan["id"], parameters
    row.operation, row.run_id = new_operation("update"), None
    if previous["plan"] != row.plan_id:
        usage.start(session, instance=row)
    session.add(row)
    if generated.secrets:
        service_secrets.store_secrets(
            session,
            keyring=keyring,
            actor=caller_system(row),
            organisation=org,
            generated=generated,
            why=f"generated for service instance {row.instance_id} ({row.client})",
            pool=_pool(session, row),
        )
    audit.record(
        session,
        actor=caller.actor,
        action="service.update",
        subject=subject(session, instance=row),
        organisation_id=row.organisation_id,
        payload={
            **cross_reference(row),
            "parameters": parameters,
            "previous": previous,
            "nonce": caller.nonce,
        },
    )
    if generated.settings == current:
        session.commit()
        return None
    return _apply(session, plugins, row, generated.settings)


def _apply(
    session: Session, plugins: Plugins, row: ServiceInstance, settings: dict[str, Any]
) -> uuid.UUID:
    """Save the new settings as a revision and queue the run that applies them (commits)."""
    org_name = organisation_name(session, row=row)
    definitions.add_revision(
        session,
        actor=caller_system(row),
        plugins=plugins,
        organisation=org_name,
        name=row.definition or "",
        data={
            "settings": settings,
            "message": f"service instance {row.instance_id} updated by {row.client}"[:500],
        },
    )
    run = runs.create_run(  # commits the update, the revision and the run together
        session=session,
        actor=caller_system(row),
        plugins=plugins,
        organisation=org_name,
        data={"kind": "apply", "definitions": [row.definition]},
    )
    row.run_id = run.id
    session.add(row)
    session.commit()
    return run.id


def _pool(session: Session, row: ServiceInstance) -> uuid.UUID:
    """The group the instance's definition targets: its generated credentials' scope."""
    publication = session.get(PublishedOffering, row.publication_id)
    publication = found(publication, "the offering")
    return publication.group_id
