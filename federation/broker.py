"""Open Service Broker API v2 helpers: catalog mapping, paths, headers (PROTOCOL.md section 6).

A node serves OSB at ``/v2``; peers and OSB platforms call it. The federated catalog
maps onto ``GET /v2/catalog`` one to one: an offering is a service, a plan a plan. An
instance may move to another plan of its offering when its plan says
``plan_updateable`` (``plan_updateable``); the provider may still refuse a particular
move (422).
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any
from urllib.parse import quote

from pydantic import JsonValue

from federation.errors import MalformedMessage, UnsupportedVersion
from federation.models.catalog import Catalog, Offering, Plan
from federation.models.osb import (
    MIN_BROKER_API_VERSION,
    OSBCatalog,
    OSBPlan,
    OSBService,
    SchemaParameters,
    Schemas,
    ServiceInstanceSchemas,
)

API_VERSION_HEADER = "X-Broker-API-Version"
ORIGINATING_IDENTITY_HEADER = "X-Broker-API-Originating-Identity"
REQUEST_IDENTITY_HEADER = "X-Broker-API-Request-Identity"
_COST_UNITS = {
    "hour": "Hourly",
    "day": "Daily",
    "month": "Monthly",
    "year": "Yearly",
    "once": "Once",
}


def osb_catalog(catalog: Catalog) -> OSBCatalog:
    """The ``GET /v2/catalog`` body for a node's catalog."""
    return OSBCatalog(
        services=tuple(_service(catalog.node, offering) for offering in catalog.offerings)
    )


def _service(node: str, offering: Offering) -> OSBService:
    metadata: dict[str, JsonValue] = {
        "displayName": offering.name,
        "kind": offering.kind,
        "provider": node,
    }
    if offering.module is not None:
        metadata["module"] = offering.module
    return OSBService(
        id=offering.id,
        name=offering.id,
        description=offering.description or offering.name,
        tags=offering.tags,
        bindable=offering.bindable,
        instances_retrievable=True,
        bindings_retrievable=True,
        plan_updateable=any(plan.plan_updateable for plan in offering.plans),
        metadata=metadata,
        plans=tuple(_plan(plan, offering.bindable) for plan in offering.plans),
    )


def _plan(plan: Plan, bindable: bool) -> OSBPlan:
    metadata: dict[str, JsonValue] = {"displayName": plan.name}
    if plan.region is not None:
        metadata["region"] = plan.region
    if plan.capacity is not None:
        metadata["capacity"] = plan.capacity
    if plan.price is not None:
        metadata["price"] = plan.price.to_json_value()
        metadata["costs"] = [
            {
                "amount": {plan.price.currency.lower(): float(plan.price.amount)},
                "unit": _COST_UNITS[plan.price.unit],
            }
        ]
    create = SchemaParameters(parameters=plan.parameters)
    update = SchemaParameters(parameters=update_schema(plan.parameters))
    return OSBPlan(
        id=plan.id,
        name=plan.id,
        description=plan.description or plan.name,
        free=plan.is_free,
        bindable=bindable,
        plan_updateable=plan.plan_updateable,
        metadata=metadata,
        schemas=Schemas(service_instance=ServiceInstanceSchemas(create=create, update=update)),
    )


def plan_updateable(offering: Offering, plan_id: str) -> bool:
    """Whether an instance on plan `plan_id` may move to another plan of `offering`."""
    plan = next((plan for plan in offering.plans if plan.id == plan_id), None)
    return plan is not None and bool(plan.plan_updateable) and len(offering.plans) > 1


def update_schema(parameters: dict[str, JsonValue]) -> dict[str, JsonValue]:
    """The schema of an update's parameters: the plan's, with nothing required, since an
    update sends only what changes (the provider checks the whole against the plan's)."""
    return {key: value for key, value in parameters.items() if key != "required"}


def check_api_version(value: str | None) -> tuple[int, int]:
    """Parse ``X-Broker-API-Version``; refuse a missing, foreign or too old one (answer 412)."""
    if value is None:
        raise UnsupportedVersion(f"request has no {API_VERSION_HEADER} header")
    major, dot, minor = value.strip().partition(".")
    if not (dot and major.isdigit() and minor.isdigit()):
        raise UnsupportedVersion(f"{API_VERSION_HEADER} is {value!r}, expected MAJOR.MINOR")
    version = (int(major), int(minor))
    if version[0] != MIN_BROKER_API_VERSION[0] or version < MIN_BROKER_API_VERSION:
        want = ".".join(map(str, MIN_BROKER_API_VERSION))
        raise UnsupportedVersion(f"{API_VERSION_HEADER} is {value}, expected 2.x at least {want}")
    return version


def originating_identity(platform: str, value: dict[str, Any]) -> str:
    """The ``X-Broker-API-Originating-Identity`` value: platform, space, base64 of JSON."""
    encoded = base64.b64encode(json.dumps(value, separators=(",", ":")).encode()).decode()
    return f"{platform} {encoded}"


def parse_originating_identity(header: str) -> tuple[str, dict[str, Any]]:
    """The platform and identity object of an ``X-Broker-API-Originating-Identity`` value."""
    platform, _, encoded = header.strip().partition(" ")
    try:
        value = json.loads(base64.b64decode(encoded, validate=True))
    except (binascii.Error, ValueError) as exc:
        raise MalformedMessage(f"{ORIGINATING_IDENTITY_HEADER} is not base64 JSON: {exc}") from exc
    if not platform or not isinstance(value, dict):
        raise MalformedMessage(
            f"{ORIGINATING_IDENTITY_HEADER} must be '<platform> <base64 JSON object>'"
        )
    return platform, value


def instance_path(instance_id: str) -> str:
    """``/v2/service_instances/:instance_id``."""
    return f"/v2/service_instances/{quote(instance_id, safe='')}"


def binding_path(instance_id: str, binding_id: str) -> str:
    """``/v2/service_instances/:instance_id/service_bindings/:binding_id``."""
    return f"{instance_path(instance_id)}/service_bindings/{quote(binding_id, safe='')}"
