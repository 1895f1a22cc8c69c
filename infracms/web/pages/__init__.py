"""The page routers, one module per part of the site."""

from __future__ import annotations

from fastapi import APIRouter

from infracms.web.pages import (
    account,
    audit,
    catalog,
    credentials,
    definition_form,
    definitions,
    drift,
    groups,
    home,
    host_keys,
    hosts,
    login,
    members,
    modules,
    notifications,
    offerings,
    orgs,
    peers,
    provision_requests,
    run,
    runs,
    services,
    tokens,
    usage,
    user_admin,
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
        host_keys,
        groups,
        credentials,
        members,
        users,
        user_admin,
        account,
        tokens,
        modules,
        definition_form,  # before `definitions`: /definitions/new is not a definition's name
        definitions,
        runs,
        run,
        drift,
        audit,
        catalog,
        peers,
        offerings,
        provision_requests,
        notifications,
        services,
        usage,
    ):
        router.include_router(module.router)
    return router
