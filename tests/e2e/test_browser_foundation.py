"""The foundation in real headless Chromium: log in, add an organisation and a host,
see a field error beside its field, log out."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from playwright.sync_api import ConsoleMessage, Page, expect

from tests.e2e.conftest import ADMIN_PASSWORD

pytestmark = pytest.mark.e2e

# Where the browser tests leave their screenshots (never in the repository).
SCREENSHOTS = Path(os.environ.get("INFRACMS_SCREENSHOTS", "/tmp"))
DOCUMENT_STATUS = "Failed to load resource: the server responded with a status of"


def test_log_in_add_a_host_see_a_field_error_and_log_out(page: Page, base_url: str) -> None:
    problems: list[str] = []
    page.on("console", lambda message: _note_error(message, problems))
    page.on("pageerror", lambda error: problems.append(str(error)))
    page.set_viewport_size({"width": 1280, "height": 900})

    page.goto(f"{base_url}/")
    expect(page).to_have_url(re.compile(r"/login$"))
    page.get_by_label("User name").fill("admin")
    page.get_by_label("Password").fill(ADMIN_PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(f"{base_url}/")
    expect(page.get_by_role("heading", name="Dashboard")).to_be_visible()

    page.get_by_role("link", name="Organisations", exact=True).click()
    page.get_by_label("Short name").fill("north-dental")
    page.get_by_label("Title").fill("North Dental Clinic")
    page.get_by_role("button", name="Create organisation").click()
    expect(page).to_have_url(f"{base_url}/orgs/north-dental")
    expect(page.get_by_role("heading", name="North Dental Clinic")).to_be_visible()

    page.get_by_role("link", name="Add host").click()
    page.get_by_label("Name", exact=True).fill("web-1")
    page.get_by_label("Address").fill("198.51.100.10")
    page.get_by_label("Variables").fill("ntp_server: ntp.example.org\n")
    page.get_by_role("button", name="Add host").click()
    expect(page).to_have_url(f"{base_url}/orgs/north-dental/hosts/web-1?notice=host-created")
    expect(page.get_by_role("status")).to_have_text("Host added.")

    page.goto(f"{base_url}/orgs/north-dental/hosts/new")
    page.get_by_label("Name", exact=True).fill("web-2")
    page.get_by_label("Address").fill("999.1.1.1")
    page.get_by_role("button", name="Add host").click()
    error = page.locator("#error-address")
    expect(error).to_be_visible()
    expect(error).to_contain_text("'999.1.1.1' is not a valid IP address")
    field = page.locator(".field", has=page.locator("#address"))
    expect(field.locator(".field-error")).to_have_id("error-address")
    expect(page.locator("#address")).to_have_value("999.1.1.1")
    expect(page.locator("#address")).to_have_attribute("aria-invalid", "true")
    expect(page.locator(".error-summary")).to_be_focused()
    page.screenshot(path=str(SCREENSHOTS / "infracms-host-error.png"), full_page=True)

    page.goto(f"{base_url}/orgs/north-dental")
    expect(page.get_by_role("link", name="web-1")).to_be_visible()
    page.screenshot(path=str(SCREENSHOTS / "infracms-org.png"), full_page=True)
    page.goto(f"{base_url}/")
    page.screenshot(path=str(SCREENSHOTS / "infracms-dashboard.png"), full_page=True)

    page.get_by_role("button", name="Log out").click()
    expect(page).to_have_url(f"{base_url}/login")
    expect(page.get_by_role("heading", name="Log in")).to_be_visible()
    page.goto(f"{base_url}/orgs/north-dental")
    expect(page).to_have_url(re.compile(r"/login\?next=%2Forgs%2Fnorth-dental$"))
    assert problems == [], f"the browser reported errors (a CSP violation?): {problems}"


def _note_error(message: ConsoleMessage, problems: list[str]) -> None:
    """Console errors (CSP violations among them); a page's deliberate HTTP status is none."""
    page_status = message.text.startswith(DOCUMENT_STATUS) and "/static/" not in str(
        message.location.get("url", "")
    )
    if message.type == "error" and not page_status:
        problems.append(f"{message.text} ({message.location.get('url')})")
