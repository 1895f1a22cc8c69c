"""A host without a pinned key: its page says why it cannot be planned or applied yet
and links to Scan, instead of leaving the buttons out."""

from __future__ import annotations

import pytest
from fastapi import FastAPI
from sqlalchemy import Engine

from tests.helpers import make_org
from tests.web.conftest import Site
from tests.web.test_inventory_pages import GOOD_HOST

KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl"


def test_an_unpinned_host_shows_disabled_run_buttons_with_the_reason_and_scan(
    admin: Site, engine: Engine
) -> None:
    make_org(engine, "clinic")
    assert admin.post("/orgs/clinic/hosts/new", GOOD_HOST).status_code == 303
    page = admin.get("/orgs/clinic/hosts/web-1").text
    assert (
        '<button type="button" class="button" disabled aria-describedby="run-blocked">Plan' in page
    )
    assert "No host key is pinned yet: runs cannot reach the host." in page
    assert '<a href="/orgs/clinic/hosts/web-1/scan">Scan its key</a>' in page
    assert ">Scan host key</a>" in page


def test_a_pinned_host_without_definitions_says_so_and_offers_replace_key(
    admin: Site, engine: Engine
) -> None:
    make_org(engine, "clinic")
    made = admin.post("/orgs/clinic/hosts/new", {**GOOD_HOST, "host_key": KEY})
    assert made.status_code == 303, made.text
    page = admin.get("/orgs/clinic/hosts/web-1").text
    assert "No published definition reaches this host." in page
    assert ">Replace key…</a>" in page
    assert 'href="/orgs/clinic/hosts/web-1/scan">scan it and replace the key</a>' in page


@pytest.fixture
def node_target(app: FastAPI) -> None:
    """Let hosts be at this machine's own addresses (a closed local port to scan)."""
    app.state.settings = app.state.settings.model_copy(update={"allow_node_target": True})


def test_a_scan_that_finds_nothing_says_so_on_the_page(
    node_target: None, admin: Site, engine: Engine
) -> None:
    make_org(engine, "clinic")
    closed = {**GOOD_HOST, "address": "127.0.0.1", "ssh_port": "9"}  # nothing listens there
    made = admin.post("/orgs/clinic/hosts/new", closed)
    assert made.status_code == 303, made.text
    page = admin.get("/orgs/clinic/hosts/web-1/scan")
    assert page.status_code == 422
    assert "othing listens on port 9 of 127.0.0.1 (connection refused)" in page.text
    assert "Pin " not in page.text
