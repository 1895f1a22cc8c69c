"""/docs is our page: Swagger UI's files from the fastapi-offline package, our start-up
script, no inline script and no other origin, under the app's unchanged CSP."""

from __future__ import annotations

import re

from tests.web.conftest import Site


def test_docs_page_uses_only_same_origin_files_and_no_inline_script(site: Site) -> None:
    page = site.get("/docs")
    assert page.status_code == 200
    assert "script-src 'self';" in page.headers["content-security-policy"]
    scripts = re.findall(r"<script([^>]*)>(.*?)</script>", page.text, re.S)
    assert [body.strip() for _, body in scripts] == ["", ""], "an inline script"
    sources = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert sources and all(s.startswith("/") for s in sources), sources
    for source in sources:
        if source != "/":  # "Back to infracms"
            assert site.get(source).status_code == 200, source
    assert (
        site.get("/docs/assets/swagger-ui-bundle.js")
        .headers["content-type"]
        .startswith(("application/javascript", "text/javascript"))
    )


def test_every_page_links_to_the_api_docs(admin: Site) -> None:
    assert '<a href="/docs">API documentation</a>' in admin.get("/").text
    assert admin.get("/redoc").status_code == 404
