"""The page routers, one module per part of the site."""

from __future__ import annotations

from fastapi import APIRouter

from infracms.web.pages import (
    credentials,
    groups,
    home,
    hosts,
    login,
    members,
    modules,
    orgs,
    tokens,
    users,
)


def build_router() -> APIRouter:
    """All page routes (none in the OpenAPI schema)."""
    router = APIRouter(include_in_schema=False)
    for module in (
        login,
        home,
        orgs,
        hosts,
        groups,
        credentials,
        members,
        users,
        tokens,
        modules,
    ):
        router.include_router(module.router)
    return router
