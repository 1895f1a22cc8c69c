"""Server-rendered pages (Jinja2): thin, calling ``services/`` like the API does."""

from __future__ import annotations

from fastapi import FastAPI


def install(app: FastAPI) -> None:
    """Mount the pages and static files on `app`."""
