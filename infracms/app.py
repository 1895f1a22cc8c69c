"""The web application: ``create_app(settings)`` builds it; nothing happens at import."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from infracms import __version__, api, web
from infracms.api import audit, broker, metrics, openapi, peer, problems, runs, witness
from infracms.config import Settings
from infracms.db import admission_places, make_engine
from infracms.middleware import AdmissionMiddleware, BodyTooLarge, GuardMiddleware
from infracms.plugins import Plugins
from infracms.web.docs import install_docs


def create_app(settings: Settings, plugins: Plugins | None = None) -> FastAPI:
    """A FastAPI app serving the API under /api/v1 and the web pages under /."""
    app = FastAPI(
        title="infracms",
        version=__version__,
        description="A self-hosted, federated content management system for infrastructure.",
        docs_url=None,  # served by install_docs, offline and under the CSP
        redoc_url=None,
        openapi_url="/openapi.json",
    )
    app.state.settings = settings
    app.state.engine = make_engine(settings)
    app.state.plugins = plugins or Plugins.load()
    problems.install(app)
    openapi.document(app)
    app.add_exception_handler(BodyTooLarge, _body_too_large)
    app.include_router(api.build_router())
    app.include_router(peer.router)
    broker.install(app)
    app.include_router(witness.router)
    app.include_router(metrics.router)
    audit.install_integrator(app)
    runs.install_executor(app)
    web.install(app)
    install_docs(app)
    app.add_api_route("/healthz", _healthz, methods=["GET"], include_in_schema=False)
    places = admission_places(app.state.engine)
    if places is not None:  # inside the guard (refusals need no place), outside the rest
        app.add_middleware(AdmissionMiddleware, places=places, exempt=frozenset({"/healthz"}))
    app.add_middleware(GuardMiddleware, max_body_bytes=settings.max_body_bytes)
    return app


def app_from_environment() -> FastAPI:
    """The app for the settings in the environment (uvicorn's factory, for --workers)."""
    from infracms.config import get_settings

    return create_app(get_settings())


def _healthz(request: Request) -> JSONResponse:
    """Up, and whether the audit log's self check holds (503 "degraded" while it fails)."""
    from infracms.services.audit import health

    body = {**health(engine=request.app.state.engine), "version": __version__}
    return JSONResponse(body, status_code=200 if body["status"] == "ok" else 503)


async def _body_too_large(request: Request, exc: Exception) -> JSONResponse:
    return problems.problem_response(
        {
            "type": "about:blank",
            "title": "Payload too large",
            "status": 413,
            "detail": "the body is over the configured limit",
        }
    )
