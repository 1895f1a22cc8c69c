"""Open Service Broker API v2 shapes (https://github.com/openservicebrokerapi/servicebroker, v2.17).

Field names and optionality follow the OSB spec, so any OSB platform can talk to a
node. Request bodies ignore unknown members, as the spec asks of brokers.
"""

from __future__ import annotations

import json
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BeforeValidator, Field, JsonValue, StringConstraints

from federation.limits import MAX_CONTEXT_BYTES, MAX_CONTEXT_FIELD, MAX_PARAMETERS_BYTES
from federation.models.base import NodeName, WireModel

BROKER_API_VERSION = "2.17"
"""The ``X-Broker-API-Version`` this library sends."""
MIN_BROKER_API_VERSION = (2, 13)
"""The oldest version accepted: 2.13 added ``schemas``, ``context`` and ``maintenance_info``."""
JsonObject = dict[str, JsonValue]


def _json_size(value: Any) -> int:
    return len(json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode())


def _at_most(limit: int, what: str) -> AfterValidator:
    def check(value: JsonObject) -> JsonObject:
        if _json_size(value) > limit:
            raise ValueError(f"{what} is larger than {limit} bytes as JSON")
        return value

    return AfterValidator(check)


def _length(name: str, value: Any) -> int:
    return max(len(name), len(value) if isinstance(value, str) else _json_size(value))


def _check_context(value: JsonObject) -> JsonObject:
    long = sorted(k for k, v in value.items() if _length(k, v) > MAX_CONTEXT_FIELD)
    if long:
        raise ValueError(f"context members longer than {MAX_CONTEXT_FIELD} characters: {long}")
    return value


Parameters = Annotated[JsonObject, _at_most(MAX_PARAMETERS_BYTES, "parameters")]
"""An operation's ``parameters``: at most ``MAX_PARAMETERS_BYTES`` as JSON."""
Context = Annotated[
    JsonObject, _at_most(MAX_CONTEXT_BYTES, "context"), AfterValidator(_check_context)
]
"""An OSB ``context``: small members, at most ``MAX_CONTEXT_BYTES`` as JSON."""
ContextField = Annotated[str, StringConstraints(max_length=MAX_CONTEXT_FIELD)]
"""An id in a request body (service, plan, GUID) or a member of an infracms context."""
RequiredField = Annotated[str, StringConstraints(min_length=1, max_length=MAX_CONTEXT_FIELD)]
"""An id the OSB spec says MUST be a non-empty string (a GUID, or service and plan ids)."""


class OSBErrorCode(StrEnum):
    """The ``error`` codes the OSB spec defines for error bodies."""

    ASYNC_REQUIRED = "AsyncRequired"
    CONCURRENCY_ERROR = "ConcurrencyError"
    REQUIRES_APP = "RequiresApp"
    MAINTENANCE_INFO_CONFLICT = "MaintenanceInfoConflict"


class OSBError(WireModel):
    """An OSB error body: a machine code (optional), a human description, and hints."""

    error: str | None = None
    description: str | None = None
    instance_usable: bool | None = None
    update_repeatable: bool | None = None


class MaintenanceInfo(WireModel):
    """A plan's maintenance version (semver) and what it changes."""

    version: str
    description: str | None = None


def _empty_is_absent(value: Any) -> Any:
    """``{}`` stands for no maintenance_info: some platforms' clients send it so."""
    return None if value == {} else value


RequestedMaintenanceInfo = Annotated[MaintenanceInfo | None, BeforeValidator(_empty_is_absent)]
"""A request's ``maintenance_info``: absent, ``null`` or ``{}`` mean none."""


class SchemaParameters(WireModel):
    """A JSON Schema for the ``parameters`` of one operation."""

    parameters: JsonObject


class ServiceInstanceSchemas(WireModel):
    """Schemas for creating and updating service instances."""

    create: SchemaParameters | None = None
    update: SchemaParameters | None = None


class ServiceBindingSchemas(WireModel):
    """Schemas for creating bindings."""

    create: SchemaParameters | None = None


class Schemas(WireModel):
    """The schemas of a plan."""

    service_instance: ServiceInstanceSchemas | None = None
    service_binding: ServiceBindingSchemas | None = None


class OSBPlan(WireModel):
    """A plan in ``GET /v2/catalog``."""

    id: str
    name: str
    description: str
    metadata: JsonObject | None = None
    free: bool = True
    bindable: bool | None = None
    plan_updateable: bool | None = None
    schemas: Schemas | None = None
    maximum_polling_duration: int | None = None
    maintenance_info: MaintenanceInfo | None = None


class OSBService(WireModel):
    """A service offering in ``GET /v2/catalog``."""

    id: str
    name: str
    description: str
    tags: tuple[str, ...] = ()
    requires: tuple[str, ...] = ()
    bindable: bool
    instances_retrievable: bool | None = None
    bindings_retrievable: bool | None = None
    allow_context_updates: bool | None = None
    metadata: JsonObject | None = None
    plan_updateable: bool | None = None
    plans: Annotated[tuple[OSBPlan, ...], Field(min_length=1)]


class OSBCatalog(WireModel):
    """The body of ``GET /v2/catalog``."""

    services: tuple[OSBService, ...] = ()


class InfracmsContext(WireModel):
    """The OSB ``context`` an infracms node sends: which peer and organisation asks."""

    platform: Literal["infracms"] = "infracms"
    node: NodeName
    organization: ContextField
    organization_name: ContextField | None = None
    requested_by: ContextField | None = None


class ProvisionRequest(WireModel):
    """Body of ``PUT /v2/service_instances/:instance_id``."""

    service_id: ContextField
    plan_id: ContextField
    context: Context | None = None
    organization_guid: RequiredField | None = None
    space_guid: RequiredField | None = None
    parameters: Parameters | None = None
    maintenance_info: RequestedMaintenanceInfo = None


class ProvisionResponse(WireModel):
    """Answer to a provision: 201/200 done, 202 pending with ``operation``."""

    dashboard_url: str | None = None
    operation: str | None = None
    metadata: JsonObject | None = None


class UpdateRequest(WireModel):
    """Body of ``PATCH /v2/service_instances/:instance_id``."""

    service_id: ContextField
    plan_id: ContextField | None = None
    context: Context | None = None
    parameters: Parameters | None = None
    previous_values: Parameters | None = None
    maintenance_info: RequestedMaintenanceInfo = None


class UpdateResponse(WireModel):
    """Answer to an update: 200 done, 202 pending with ``operation``."""

    dashboard_url: str | None = None
    operation: str | None = None


class LastOperationState(StrEnum):
    """The states ``last_operation`` reports."""

    IN_PROGRESS = "in progress"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


class LastOperationResponse(WireModel):
    """Body of ``GET .../last_operation``."""

    state: LastOperationState
    description: str | None = None
    instance_usable: bool | None = None
    update_repeatable: bool | None = None


class ServiceInstance(WireModel):
    """Body of ``GET /v2/service_instances/:instance_id``."""

    service_id: str | None = None
    plan_id: str | None = None
    dashboard_url: str | None = None
    parameters: JsonObject | None = None
    maintenance_info: MaintenanceInfo | None = None
    metadata: JsonObject | None = None


class BindRequest(WireModel):
    """Body of ``PUT /v2/service_instances/:instance_id/service_bindings/:binding_id``."""

    service_id: RequiredField
    plan_id: RequiredField
    context: Context | None = None
    bind_resource: Parameters | None = None
    parameters: Parameters | None = None
    app_guid: ContextField | None = None


class BindResponse(WireModel):
    """Answer to a bind: the connection details in ``credentials`` (secret, never logged)."""

    credentials: JsonObject | None = Field(default=None, repr=False)
    syslog_drain_url: str | None = None
    route_service_url: str | None = None
    volume_mounts: tuple[JsonObject, ...] | None = None
    endpoints: tuple[JsonObject, ...] | None = None
    metadata: JsonObject | None = None
    operation: str | None = None


class DeleteQuery(WireModel):
    """The query of a deprovision or unbind: ``service_id`` and ``plan_id`` are required."""

    service_id: RequiredField
    plan_id: RequiredField


class DeprovisionResponse(WireModel):
    """Answer to a deprovision or unbind: 200 ``{}`` done, 202 pending with ``operation``."""

    operation: str | None = None
