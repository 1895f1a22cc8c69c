"""Errors as RFC 9457 problem documents: one handler for the whole HTTP surface.

Each ``InfracmsError`` carries its status: ``AuditUnavailable`` is 503 "Audit log
unavailable" (the change was refused because its audit entry could not be written,
and rolled back), so a broken log never reads as a 409 "already exists" or a 500.

Besides infracms' own errors, a ``federation.errors.FederationError`` that escapes a
route (a consumer action whose peer answered badly, or not at all) is a gateway
problem: 504 when the peer timed out, 503 when it could not be reached, 502 for any
other failure (an error answer, a redirect, an answer that does not verify or parse).
Nothing was changed on this node; the document names the failure and, for an error
answer, the peer's status and OSB error code. The node-to-node routes (``/v2``,
``/federation/v1``) answer peers in the OSB shape instead (``api/peer.PeerRoute``).
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import iter_route_contexts
from starlette.exceptions import HTTPException as StarletteHTTPException

from federation.errors import (
    BrokerError,
    FederationError,
    PeerAnswerError,
    PeerTimeout,
    PeerUnreachable,
)
from infracms.errors import InfracmsError

PROBLEM_JSON = "application/problem+json"
log = logging.getLogger(__name__)


def problem_response(body: dict[str, Any], headers: dict[str, str] | None = None) -> JSONResponse:
    """A problem+json response."""
    return JSONResponse(body, status_code=body["status"], media_type=PROBLEM_JSON, headers=headers)


async def _infracms_error(request: Request, exc: Exception) -> JSONResponse:
    if not isinstance(exc, InfracmsError):
        raise TypeError(f"expected {InfracmsError.__name__}, got {type(exc).__name__}")
    body = exc.problem()
    body["instance"] = request.url.path
    headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
    return problem_response(body, headers)


def federation_problem(exc: FederationError) -> dict[str, Any]:
    """The problem document of a failure talking to a peer (a gateway problem)."""
    if isinstance(exc, PeerTimeout):
        status, code, title = 504, "peer-timeout", "The peer did not answer in time"
    elif isinstance(exc, PeerUnreachable):
        status, code, title = 503, "peer-unreachable", "The peer could not be reached"
    else:
        status, code, title = 502, "peer-error", "The peer's answer was not usable"
    body: dict[str, Any] = {
        "type": f"https://infracms.org/problems/{code}",
        "title": title,
        "status": status,
        "detail": f"nothing was changed here: {type(exc).__name__}: {exc}",
        "error": type(exc).__name__,
    }
    if isinstance(exc, PeerAnswerError):
        body["peer_status"] = exc.status_code
    if isinstance(exc, BrokerError) and exc.error:
        body["peer_error"] = exc.error
    return body


async def _federation_error(request: Request, exc: Exception) -> JSONResponse:
    if not isinstance(exc, FederationError):
        raise TypeError(f"expected {FederationError.__name__}, got {type(exc).__name__}")
    body = federation_problem(exc)
    body["instance"] = request.url.path
    log.info("peer failure on %s %s: %s", request.method, request.url.path, body["detail"])
    return problem_response(body)


def _field(loc: tuple[Any, ...]) -> str:
    parts = [str(part) for part in loc if part not in ("body", "query", "path")]
    return ".".join(parts) or "body"


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    if not isinstance(exc, RequestValidationError):
        raise TypeError(f"expected {RequestValidationError.__name__}, got {type(exc).__name__}")
    errors = [
        {
            "field": _field(tuple(error["loc"])),
            "message": error["msg"].removeprefix("Value error, "),
        }
        for error in exc.errors()
    ]
    return problem_response(
        {
            "type": "https://infracms.org/problems/invalid-input",
            "title": "Invalid input",
            "status": 422,
            "detail": "the request has invalid fields",
            "errors": errors,
            "instance": request.url.path,
        }
    )


def allowed_methods(request: Request) -> str:
    """The `Allow` header of a 405: the methods of every route for this resource
    (Starlette names only those of the first route that matched the path)."""
    by_template: dict[str, set[str]] = {}
    for route in iter_route_contexts(request.app.routes):
        pattern = getattr(route, "path_regex", None)
        if pattern is not None and pattern.match(request.url.path):
            by_template.setdefault(str(route.path_format), set()).update(route.methods or ())
    # the resource at this path is the most specific template that matches: a literal
    # `/peers/accept` rather than `/peers/{name}`
    fewest = min((template.count("{") for template in by_template), default=0)
    methods = set().union(*(m for t, m in by_template.items() if t.count("{") == fewest))
    return ", ".join(sorted(methods))


def http_error_headers(request: Request, exc: StarletteHTTPException) -> dict[str, str]:
    """The headers an HTTP error answer carries (a 405's complete `Allow`)."""
    headers = dict(exc.headers or {})
    if exc.status_code == 405:
        headers["Allow"] = allowed_methods(request)
    return headers


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    if not isinstance(exc, StarletteHTTPException):
        raise TypeError(f"expected an HTTPException, got {type(exc).__name__}")
    return problem_response(
        {
            "type": "about:blank",
            "title": str(exc.detail),
            "status": exc.status_code,
            "detail": str(exc.detail),
            "instance": request.url.path,
        },
        http_error_headers(request, exc),
    )


def install(app: FastAPI) -> None:
    """Map every error to a problem document on `app`."""
    app.add_exception_handler(InfracmsError, _infracms_error)
    app.add_exception_handler(FederationError, _federation_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
