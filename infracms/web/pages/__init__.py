"""The page routers, one module per part of the site."""

from __future__ import annotations

from fastapi import APIRouter

from infracms.web.pages import (
    audit,
    credentials,
    definition_form,
    definitions,
    groups,
    home,
    hosts,
    login,
    members,
    modules,
    orgs,
    run,
    runs,
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
        definition_form,  # before `definitions`: /definitions/new is not a definition's name
        definitions,
        runs,
        run,
        audit,
    ):
        router.include_router(module.router)
    return router
