"""Federation in real headless Chromium, between two served nodes: a.test's owner publishes
an offering through the form; the nodes peer through the Peers pages (an invitation
made on one, pasted on the other); b.test syncs, searches and filters the catalog,
requests a plan (a field error first); a.test approves the request and follows the run."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect
from sqlalchemy import Engine

from infracms.config import Settings
from infracms.db import make_engine, session_scope
from infracms.plugins import Plugins
from infracms.services import inventory, modules, organisations
from infracms.services.federation import offerings
from tests.e2e.conftest import ADMIN_PASSWORD, init_node
from tests.e2e.test_browser_content import WIDE, shoot
from tests.e2e.test_browser_foundation import _note_error
from tests.helpers import ADMIN
from tests.support.server import live_server

pytestmark = pytest.mark.e2e

DATABASE = "coop-managed-postgresql"


@dataclass
class Served:
    """A node served by `infracms serve`: its URL and a way into its database."""

    url: str
    engine: Engine


def _settings(root: Path, name: str) -> Settings:
    return Settings(
        data_dir=root / name,
        node_name=name,
        argon2_time_cost=1,
        argon2_memory_kib=1024,
        admin_password=ADMIN_PASSWORD,
    )


@pytest.fixture
def nodes(tmp_path: Path) -> Iterator[tuple[Served, Served]]:
    """a.test (the provider) and b.test, initialised and served on loopback."""
    provider, consumer = _settings(tmp_path, "a.test"), _settings(tmp_path, "b.test")
    for settings in (provider, consumer):
        init_node(settings)
    engines = [make_engine(provider), make_engine(consumer)]
    try:
        with live_server(provider) as a_url, live_server(consumer) as b_url:
            yield Served(a_url, engines[0]), Served(b_url, engines[1])
    finally:
        for engine in engines:
            engine.dispose()


def provider_setup(engine: Engine) -> None:
    """`coop` with two pools, postgresql and backup enabled; backup already published."""
    plugins = Plugins.load()
    with session_scope(engine, write=True) as session:
        organisations.create_organisation(session=session, actor=ADMIN, data={"name": "coop"})
    with session_scope(engine, write=True) as session:
        scope = {"session": session, "actor": ADMIN, "organisation": "coop"}
        for number, group in enumerate(("db-pool", "backup-pool"), start=1):
            inventory.create_group(**scope, data={"name": group})
            host = {"name": f"h{number}", "address": f"198.51.100.{number}", "groups": [group]}
            inventory.create_host(**scope, data=host)
        for name in ("base", "postgresql", "backup"):
            modules.set_available(
                session=session, actor=ADMIN, plugins=plugins, name=name, available=True
            )
        for name in ("postgresql", "backup"):
            modules.enable_module(**scope, plugins=plugins, name=name)
        terms = {"price": {"amount": "3", "currency": "EUR", "unit": "month"}, "region": "eu-west"}
        offerings.publish_offering(
            **scope,
            plugins=plugins,
            data={
                "module": "backup",
                "offering": "offsite-backup",
                "group": "backup-pool",
                "plans": [{"name": "small", **terms}],
            },
        )


def consumer_setup(engine: Engine) -> None:
    with session_scope(engine, write=True) as session:
        organisations.create_organisation(session=session, actor=ADMIN, data={"name": "clinic"})


def watch(page: Page, problems: list[str]) -> Page:
    page.on("console", lambda message: _note_error(message, problems))
    page.on("pageerror", lambda error: problems.append(str(error)))
    page.set_viewport_size(WIDE)
    return page


def nav(page: Page, name: str) -> None:
    """Follow a link of the top navigation."""
    page.get_by_role("navigation", name="Main").get_by_role("link", name=name).click()


def log_in(page: Page, url: str) -> None:
    page.goto(f"{url}/login")
    page.get_by_label("User name").fill("admin")
    page.get_by_label("Password").fill(ADMIN_PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(f"{url}/")


def publish_database(a: Page, url: str) -> None:
    a.goto(f"{url}/orgs/coop/offerings")
    a.get_by_role("link", name="Publish an offering").click()
    a.get_by_role("link", name="Managed PostgreSQL database").click()
    a.get_by_label("Host pool").select_option("db-pool")
    small = a.locator("fieldset.plan-terms").nth(0)
    small.get_by_label("Price").fill("12")
    small.get_by_label("Currency").fill("EUR")
    small.get_by_label("Capacity").fill("5")
    small.get_by_label("Region").fill("eu-west")
    large = a.locator("fieldset.plan-terms").nth(1)
    large.get_by_label("Price").fill("40")
    large.get_by_label("Currency").fill("EUR")
    large.get_by_label("Region").fill("eu-north")
    shoot(a, "offering-form")
    a.get_by_role("button", name="Publish offering").click()
    expect(a.get_by_role("status")).to_contain_text("Offering published")
    expect(a.locator(f"#offering-{DATABASE}")).to_contain_text("12 EUR a month")
    shoot(a, "offerings")


def invitation(a: Page, url: str) -> str:
    a.goto(f"{url}/peers")
    a.get_by_role("button", name="Create invitation").click()
    token = a.locator("#invitation-token").input_value()
    assert len(token) > 40
    shoot(a, "peer-invitation")
    return token


def test_publish_peer_search_request_and_approve(
    page: Page, browser: Browser, nodes: tuple[Served, Served]
) -> None:
    provider, consumer = nodes
    provider_setup(provider.engine)
    consumer_setup(consumer.engine)
    problems: list[str] = []
    a = watch(page, problems)
    context = browser.new_context()
    b = watch(context.new_page(), problems)
    try:
        log_in(a, provider.url)
        publish_database(a, provider.url)
        token = invitation(a, provider.url)

        log_in(b, consumer.url)
        nav(b, "Peers")
        b.get_by_label("Invitation token").fill(token)
        b.get_by_role("button", name="Accept invitation").click()
        expect(b.get_by_role("status")).to_contain_text("Invitation accepted")
        expect(b.get_by_role("heading", name="a.test")).to_be_visible()
        shoot(b, "peer")
        nav(b, "Peers")
        b.get_by_role("button", name="Sync catalogs now").click()
        expect(b.locator(".sync-results")).to_contain_text("updated")
        shoot(b, "peers")

        nav(b, "Catalog")
        expect(b.locator("article.offering")).to_have_count(2)
        shoot(b, "catalog")
        b.get_by_role("searchbox", name="Search").fill("database")
        b.get_by_role("button", name="Search").click()
        expect(b.locator("article.offering")).to_have_count(1)
        expect(b.locator("table.plans tbody tr")).to_have_count(2)
        b.get_by_label("Region").select_option("eu-north")
        b.get_by_role("button", name="Search").click()
        expect(b.locator("table.plans tbody tr")).to_have_count(1)
        expect(b.locator("#catalog-count")).to_contain_text("1 offering matches")
        shoot(b, "catalog-filtered")
        b.get_by_role("link", name=re.compile(r"^Request Large")).click()
        expect(b.get_by_label("For")).to_have_value("clinic")
        b.get_by_role("button", name="Send request").click()
        expect(b.locator('[id="error-parameters.database"]')).to_contain_text("is required")
        expect(b.locator(".error-summary")).to_be_focused()
        shoot(b, "catalog-request-error")
        b.get_by_label("Database").fill("blog")
        b.get_by_role("button", name="Send request").click()
        expect(b).to_have_url(re.compile(r"/orgs/clinic/services/[0-9a-f-]{36}\?notice="))
        expect(b.get_by_role("status")).to_contain_text("Service requested")
        shoot(b, "service")

        a.goto(f"{provider.url}/orgs/coop")
        a.get_by_role("link", name="Requests").click()
        expect(a.locator("table.requests")).to_contain_text("b.test")
        expect(a.locator("table.requests")).to_contain_text("for clinic")
        shoot(a, "requests")
        a.get_by_role("link", name=re.compile(r"^Review")).click()
        shoot(a, "request")
        a.get_by_role("button", name="Approve and provision").click()
        expect(a.get_by_role("status")).to_contain_text("Request approved")
        shoot(a, "request-approved")
        a.locator("#run-link").click()
        expect(a).to_have_url(re.compile(r"/orgs/coop/runs/[0-9a-f-]{36}$"))
        expect(a.get_by_role("heading", level=1)).to_contain_text("pply")
        nav(a, "Peers")
        a.get_by_role("navigation", name="Peering").get_by_role("link", name="Usage").click()
        expect(a.locator("table.usage")).to_contain_text("peer:b.test")
        shoot(a, "usage")

        b.reload()
        b.get_by_role("button", name="Refresh").click()
        expect(b.get_by_role("status")).to_contain_text("Status asked")
        b.get_by_role("navigation", name="clinic").get_by_role("link", name="Services").click()
        expect(b.locator("table.services")).to_contain_text("Managed PostgreSQL database")
        shoot(b, "services")
    finally:
        context.close()
    assert problems == [], f"the browser reported errors (a CSP violation?): {problems}"
