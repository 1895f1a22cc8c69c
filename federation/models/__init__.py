"""Versioned wire models of the federation protocol (pydantic v2).

Every top-level document carries ``format: "infracms.<kind>.v<N>"``; a document of
another major version is refused with ``UnsupportedVersion``. Unknown members are
ignored, so minor additions stay compatible. ``load(Model, data, what)`` parses and
wraps validation errors in ``MalformedMessage``.
"""

from federation.models.base import WireModel, load
from federation.models.catalog import Catalog, Offering, Plan, Price
from federation.models.osb import (
    BROKER_API_VERSION,
    BindRequest,
    BindResponse,
    DeprovisionResponse,
    InfracmsContext,
    LastOperationResponse,
    LastOperationState,
    OSBCatalog,
    OSBError,
    OSBErrorCode,
    OSBPlan,
    OSBService,
    ProvisionRequest,
    ProvisionResponse,
    ServiceInstance,
    UpdateRequest,
    UpdateResponse,
)
from federation.models.peering import (
    DetachedSignature,
    Invitation,
    KeyRotation,
    NodeIdentity,
    PeeringAcceptance,
    PeeringRequest,
)

__all__ = [
    "BROKER_API_VERSION",
    "BindRequest",
    "BindResponse",
    "Catalog",
    "DeprovisionResponse",
    "DetachedSignature",
    "InfracmsContext",
    "Invitation",
    "KeyRotation",
    "LastOperationResponse",
    "LastOperationState",
    "NodeIdentity",
    "OSBCatalog",
    "OSBError",
    "OSBErrorCode",
    "OSBPlan",
    "OSBService",
    "Offering",
    "PeeringAcceptance",
    "PeeringRequest",
    "Plan",
    "Price",
    "ProvisionRequest",
    "ProvisionResponse",
    "ServiceInstance",
    "UpdateRequest",
    "UpdateResponse",
    "WireModel",
    "load",
]
