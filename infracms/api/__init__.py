"""The REST API under /api/v1: thin routers over ``services/``."""

from __future__ import annotations

from fastapi import APIRouter, Depends

from infracms.api import (
    approvals,
    audit,
    federation,
    inventory,
    modules,
    notifications,
    organisations,
    people,
    runs,
    schedules,
    secret_grants,
    witness,
)
from infracms.api.query import single_query_values


def build_router() -> APIRouter:
    """All /api/v1 routes."""
    router = APIRouter(prefix="/api/v1", dependencies=[Depends(single_query_values)])
    router.include_router(organisations.router)
    router.include_router(inventory.router)
    router.include_router(people.router)
    router.include_router(modules.router)
    router.include_router(audit.router)
    router.include_router(runs.router)
    router.include_router(approvals.router)
    router.include_router(schedules.router)
    router.include_router(federation.router)
    router.include_router(witness.api_router)
    router.include_router(secret_grants.router)
    router.include_router(notifications.router)
    return router
