"""Server-rendered pages (Jinja2): thin, calling ``services/`` like the API does."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from infracms.web import errors, pages
from infracms.web.templating import make_templates

STATIC_DIR = Path(__file__).parent / "static"


def install(app: FastAPI) -> None:
    """Mount the pages and static files on `app` (after the API's problem handlers)."""
    app.state.web_templates = make_templates()
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    app.include_router(pages.build_router())
    errors.install(app)
