"""/docs: the API's documentation (Swagger UI), offline and under the app's strict CSP.

Swagger UI's own files come from the ``fastapi-offline`` package (its ``static/``
folder, served at /docs/assets); the page is ours, and so is its start-up script
(/static/docs.js): no CDN, no inline script, so the CSP needs no exception.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

ASSETS = "/docs/assets"

PAGE = """<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>{title} API · infracms</title>
  <link rel="stylesheet" href="{assets}/swagger-ui.css">
  <link rel="icon" href="{assets}/favicon.png" type="image/png">
  <script src="{assets}/swagger-ui-bundle.js" defer></script>
  <script src="/static/docs.js" defer></script>
</head>
<body>
  <p><a href="/">Back to infracms</a></p>
  <div id="swagger-ui" data-openapi-url="{openapi}"></div>
</body>
</html>
"""


def swagger_assets() -> Path:
    """Where the fastapi-offline package keeps Swagger UI's files."""
    return Path(str(files("fastapi_offline").joinpath("static")))


def install_docs(app: FastAPI) -> None:
    """Serve /docs from the package's assets and our page (the app's own docs are off)."""
    app.mount(ASSETS, StaticFiles(directory=swagger_assets()), name="docs-assets")
    page = PAGE.format(title=app.title, assets=ASSETS, openapi=app.openapi_url)

    async def docs() -> HTMLResponse:
        """The API documentation."""
        return HTMLResponse(page)

    app.add_api_route("/docs", docs, methods=["GET"], include_in_schema=False)
