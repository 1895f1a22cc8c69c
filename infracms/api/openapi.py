"""The OpenAPI document says which error answers each operation can give.

FastAPI lists only the success answer and a 422 in its own shape; the API answers every
error as an RFC 9457 problem document (``api/problems.py``) and the peer routes (``/v2``,
``/federation/v1``) in the OSB shape (``api/peer.py``). ``document(app)`` adds those
answers to each operation, by what the operation can meet:

- 401 and 403 when it needs a signed-in user or a token;
- 404 when it names something (path or query parameters, a body);
- 409 and 503 (audit log unavailable) when it changes state;
- 400, 413, 415 when it takes a body (unparseable, too large, not JSON);
- 422 when it takes any input;
- 502, 503, 504 on the routes that talk to a peer (``federation`` tag).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import iter_route_contexts

from infracms.api.deps import get_actor, get_actor_alone
from infracms.api.problems import PROBLEM_JSON

PROBLEM = {
    "type": "object",
    "description": "An RFC 9457 problem document",
    "required": ["type", "title", "status"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer", "minimum": 400, "maximum": 599},
        "detail": {"type": "string"},
        "instance": {"type": "string"},
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["field", "message"],
                "properties": {"field": {"type": "string"}, "message": {"type": "string"}},
            },
        },
    },
}
OSB_ERROR = {
    "type": "object",
    "description": "An Open Service Broker error body",
    "properties": {"error": {"type": "string"}, "description": {"type": "string"}},
}
TITLES = {
    400: "The body does not parse",
    401: "Authentication required",
    403: "Forbidden",
    404: "Not found (or not visible to you)",
    409: "Conflict with the current state",
    410: "Gone",
    412: "Precondition failed (broker API version)",
    413: "Payload too large",
    415: "Unsupported media type",
    422: "Invalid input",
    502: "The peer's answer was not usable",
    503: "Unavailable (the audit log, or the peer)",
    504: "The peer did not answer in time",
}
UNSAFE = frozenset({"post", "put", "patch", "delete"})
PEER_STATUSES = (400, 401, 403, 404, 409, 410, 412, 422)


def document(app: FastAPI) -> None:
    """Make `app.openapi()` declare each operation's error answers."""
    build: Callable[[], dict[str, Any]] = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = build()
        schemas = schema.setdefault("components", {}).setdefault("schemas", {})
        schemas["Problem"], schemas["OsbError"] = PROBLEM, OSB_ERROR
        schemas.pop("HTTPValidationError", None)
        schemas.pop("ValidationError", None)
        authed = _authenticated_operations(app)
        for path, operations in schema.get("paths", {}).items():
            for method, operation in operations.items():
                _declare(path, method, operation, (path, method) in authed)
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def _declare(path: str, method: str, operation: dict[str, Any], authed: bool) -> None:
    responses = operation.setdefault("responses", {})
    if not path.startswith("/api/"):
        for status in PEER_STATUSES:
            responses[str(status)] = _answer(status, "application/json", "OsbError")
        return
    for status in _statuses(method, operation, authed):
        responses[str(status)] = _answer(status, PROBLEM_JSON, "Problem")


def _statuses(method: str, operation: dict[str, Any], authed: bool) -> list[int]:
    has_body = "requestBody" in operation or method in ("post", "put", "patch")
    has_input = has_body or bool(operation.get("parameters"))
    statuses = [401, 403] if authed else []
    statuses += [404, 422] if has_input else []
    statuses += [409, 503] if method in UNSAFE else []
    statuses += [400, 413, 415] if has_body else []
    if "federation" in operation.get("tags", []):
        statuses += [502, 503, 504]
    return sorted(set(statuses))


def _answer(status: int, media_type: str, schema: str) -> dict[str, Any]:
    return {
        "description": TITLES.get(status, "Error"),
        "content": {media_type: {"schema": {"$ref": f"#/components/schemas/{schema}"}}},
    }


def _authenticated_operations(app: FastAPI) -> set[tuple[str, str]]:
    found = set()
    for route in iter_route_contexts(app.routes):
        dependant = getattr(route, "dependant", None)
        if dependant is not None and _needs_actor(dependant):
            found |= {(str(route.path_format), method.lower()) for method in route.methods or ()}
    return found


def _needs_actor(dependant: Dependant) -> bool:
    if dependant.call in (get_actor, get_actor_alone):
        return True
    return any(_needs_actor(sub) for sub in dependant.dependencies)
