"""A host that only has a root password, bootstrapped from its page in real Chromium on a
real test host: scan, type the one-time password, see the key pinned and the node's key
installed, then plan with the node's key (the host has no credential)."""

from __future__ import annotations

import secrets

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import Engine

from infracms.sshkeys import host_key_fingerprint
from tests.e2e.test_browser_content import log_in, shoot, watched  # noqa: F401 (fixture)
from tests.e2e.test_browser_first_host import _define_base, _finished, engine, host  # noqa: F401
from tests.support.hosts import TestHost

pytestmark = [pytest.mark.e2e, pytest.mark.integration, pytest.mark.slow]


def test_a_host_with_only_a_password_is_bootstrapped_from_its_page(
    page: Page,
    base_url: str,
    engine: Engine,  # noqa: F811
    host: TestHost,  # noqa: F811
    watched: list[str],  # noqa: F811
) -> None:
    password = f"root-{secrets.token_urlsafe(12)}"
    host.run("rm -f /root/.ssh/authorized_keys", check=True)  # the password is the only way in
    host.allow_password_login(password)
    log_in(page, base_url)
    page.goto(f"{base_url}/orgs")
    page.get_by_label("Short name").fill("clinic")
    page.get_by_role("button", name="Create organisation").click()
    page.goto(f"{base_url}/orgs/clinic/hosts/new")
    page.get_by_label("Name", exact=True).fill("web-1")
    page.get_by_label("Address").fill(host.address)
    page.get_by_role("button", name="Add host").click()
    expect(page).to_have_url(f"{base_url}/orgs/clinic/hosts/web-1?notice=host-created")
    _define_base(engine)

    page.get_by_role("link", name="Scan host key").click()
    presented = host_key_fingerprint(host.host_key)
    expect(page.locator("#presented-fingerprint")).to_have_text(presented)
    page.get_by_label("One-time password", exact=True).fill(password)
    page.get_by_role("button", name="Bootstrap").click()
    expect(page.get_by_role("heading", name="Bootstrap succeeded")).to_be_visible()
    expect(page.locator("#pinned-fingerprint")).to_have_text(presented)
    assert password not in page.content()
    shoot(page, "host-bootstrapped")

    page.get_by_role("link", name="Back to web-1").click()
    page.get_by_role("button", name="Plan host web-1").click()
    assert _finished(page) == "succeeded", page.locator("main").inner_text()
