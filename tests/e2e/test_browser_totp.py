"""Two-factor sign-in in real headless Chromium: enrol on the account page (QR code and
key, a first code, ten recovery codes shown once), log out, then sign in with the
password and a code."""

from __future__ import annotations

import re
import time

import pyotp
import pytest
from playwright.sync_api import Page, expect

from tests.e2e.conftest import ADMIN_PASSWORD
from tests.e2e.test_browser_foundation import SCREENSHOTS, _note_error

pytestmark = pytest.mark.e2e


def test_enrol_totp_then_sign_in_with_a_code(page: Page, base_url: str) -> None:
    problems: list[str] = []
    page.on("console", lambda message: _note_error(message, problems))
    page.on("pageerror", lambda error: problems.append(str(error)))
    page.goto(f"{base_url}/login")
    page.get_by_label("User name").fill("admin")
    page.get_by_label("Password").fill(ADMIN_PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(f"{base_url}/")

    page.goto(f"{base_url}/account")
    page.get_by_role("button", name="Set up two-factor sign-in").click()
    expect(page.locator("figure.qr svg")).to_be_visible()
    secret = page.locator("#totp-secret").inner_text()
    assert re.fullmatch(r"[A-Z2-7]{32}", secret), secret
    clock = pyotp.TOTP(secret)
    page.get_by_label("Code from the app").fill(clock.now())
    page.get_by_role("button", name="Turn on").click()
    expect(page.locator("#recovery-codes li")).to_have_count(10)
    page.screenshot(path=str(SCREENSHOTS / "infracms-totp-enrolled.png"), full_page=True)
    page.goto(f"{base_url}/account")
    expect(page.locator("#recovery-codes")).to_have_count(0)  # shown once
    expect(page.get_by_text("10 recovery codes left")).to_be_visible()

    page.get_by_role("button", name="Log out").click()
    page.get_by_label("User name").fill("admin")
    page.get_by_label("Password").fill(ADMIN_PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(re.compile(r"/login/code\?next=%2F$"))
    expect(page.get_by_role("heading", name="Enter your code")).to_be_visible()
    page.goto(f"{base_url}/")  # half signed in: nothing opens
    expect(page).to_have_url(re.compile(r"/login$"))
    page.go_back()
    # the enrolment used this step's code: the next step's (a device 30 s fast) is new
    page.get_by_label("Code").fill(clock.at(time.time() + 30))
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(f"{base_url}/")
    expect(page.get_by_role("heading", name="Dashboard")).to_be_visible()
    assert problems == [], f"the browser reported errors (a CSP violation?): {problems}"
