"""The API documentation at /docs renders in real Chromium, offline (Swagger UI from the
fastapi-offline package), under the app's strict Content-Security-Policy, and the UI
links to it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.sync_api import ConsoleMessage, Page, expect

pytestmark = pytest.mark.e2e

SCREENSHOT = Path("/tmp/infracms-docs.png")


def test_docs_render_every_operation_without_a_csp_violation(page: Page, base_url: str) -> None:
    problems: list[str] = []
    page.on("console", lambda message: _note(message, problems))
    page.on("pageerror", lambda error: problems.append(str(error)))
    outside: list[str] = []
    page.on(
        "request",
        lambda request: (
            outside.append(request.url)
            if not request.url.startswith(base_url) and not request.url.startswith("data:")
            else None
        ),
    )

    page.goto(f"{base_url}/login")
    page.get_by_role("link", name="API documentation").click()
    expect(page).to_have_url(f"{base_url}/docs")
    expect(page.get_by_role("heading", name=re.compile(r"^infracms"))).to_be_visible()
    hosts = page.locator(
        ".opblock-summary-path", has_text=re.compile(r"^/api/v1/orgs/\{org\}/hosts$")
    )
    expect(hosts.first).to_be_visible()
    assert page.locator(".opblock").count() >= 50, "Swagger UI rendered few operations"
    page.locator(".opblock-summary", has=hosts.first).first.click()
    expect(page.get_by_text("A page of the organisation's hosts, narrowed by name")).to_be_visible()
    page.screenshot(path=str(SCREENSHOT), full_page=False)
    assert problems == [], f"the browser reported errors (a CSP violation?): {problems}"
    assert outside == [], f"the docs page reached outside the node: {outside}"


def _note(message: ConsoleMessage, problems: list[str]) -> None:
    if message.type == "error" or "Content Security Policy" in message.text:
        problems.append(f"{message.text} ({message.location.get('url')})")
