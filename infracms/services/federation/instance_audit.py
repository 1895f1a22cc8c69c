"""What names a provided service instance: its audit subject, cross-reference, operations.

Both nodes' entries about one instance carry the same ``cross_reference`` (client,
instance id, offering, plan, operation, the nonce of the signed request), so an auditor
can match the provider's log against the requester's. An operation id says its kind:
``provision-…``, ``update-…`` or ``deprovision-…``.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlmodel import Session

from infracms.models.federation import ServiceInstance
from infracms.models.organisation import Organisation
from infracms.services.common import found
from infracms.services.context import Actor, system_actor


def subject(session: Session, *, instance: ServiceInstance) -> str:
    """The audit subject of an instance: ``service-instance:<org>/<id>``."""
    org = session.get(Organisation, instance.organisation_id)
    return f"service-instance:{org.name if org else '?'}/{instance.id}"


def cross_reference(instance: ServiceInstance) -> dict[str, Any]:
    """What both sides' audit entries carry to find each other."""
    return {
        "client": instance.client,
        "instance_id": instance.instance_id,
        "offering": instance.offering_id,
        "plan": instance.plan_id,
        "operation": instance.operation,
        "request_nonce": instance.request_nonce,
    }


def caller_system(row: ServiceInstance) -> Actor:
    """The node acting on a caller's behalf (the caller has no role in the organisation)."""
    return system_actor(f"broker:{row.client}")


def organisation_name(session: Session, *, row: ServiceInstance) -> str:
    """The name of the organisation providing an instance."""
    org = session.get(Organisation, row.organisation_id)
    org = found(org, "the organisation")
    return org.name


def new_operation(kind: str) -> str:
    """A new OSB operation id of a kind (``provision``, ``update``, ``deprovision``)."""
    return f"{kind}-{uuid.uuid4().hex}"


def operation_kind(row: ServiceInstance) -> str:
    """Which kind of operation the instance's last one is."""
    return row.operation.partition("-")[0]
