"""The audit pages: who reads which entries, an entry's proof, checkpoints, the key.
Nothing on them changes anything."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import Engine

from infracms.config import Settings
from infracms.db import session_scope
from infracms.models import AuditEntry, Role
from infracms.services import audit
from tests.helpers import ADMIN, count, make_org
from tests.web.conftest import Site
from tests.web.test_inventory_pages import GOOD_HOST
from tests.web.test_people_pages import signed_in


@pytest.fixture
def two_orgs(admin: Site, engine: Engine, settings: Settings) -> None:
    """clinic and bakery, each with a host; the log integrated and signed."""
    make_org(engine, "clinic")
    make_org(engine, "bakery")
    admin.post("/orgs/clinic/hosts/new", GOOD_HOST)
    admin.post("/orgs/bakery/hosts/new", {**GOOD_HOST, "name": "oven-1"})
    audit.sign_checkpoint(engine=engine, settings=settings)


@pytest.fixture
def auditor(two_orgs: None, other_site: Site, engine: Engine, settings: Settings) -> Site:
    return signed_in(other_site, engine, settings, "aude", clinic=Role.auditor)


def indexes(page: str) -> list[int]:
    """The entry numbers listed on a page of the log."""
    return [int(n) for n in re.findall(r'<a href="/audit/entries/(\d+)">', page)]


def index_of(engine: Engine, subject: str) -> int:
    """The number of the first entry about `subject`."""
    with session_scope(engine) as session:
        return audit.list_entries(session=session, actor=ADMIN, subject=subject).items[0].index


def test_an_auditor_reads_only_the_entries_of_their_organisation(
    auditor: Site, engine: Engine, settings: Settings
) -> None:
    page = auditor.get("/audit").text
    assert "host:clinic/web-1" in page and "host:bakery/oven-1" not in page
    assert "user:admin" not in page, "node-level entries are for admins"
    assert '<option value="clinic">clinic</option>' in page and "bakery" not in page
    oven = index_of(engine, "host:bakery/oven-1")
    assert auditor.get(f"/audit/entries/{oven}").status_code == 404  # as a missing one
    assert auditor.get("/audit?organisation=bakery").status_code == 403
    assert 'href="/audit?organisation=clinic">Audit log</a>' in auditor.get("/orgs/clinic").text


def test_an_entry_shows_its_payload_leaf_hash_and_verified_proof(
    auditor: Site, engine: Engine, settings: Settings
) -> None:
    web = index_of(engine, "host:clinic/web-1")
    page = auditor.get(f"/audit/entries/{web}").text
    assert "host.create" in page and "&#34;address&#34;: &#34;198.51.100.10&#34;" in page
    assert "{&#34;after&#34;:{&#34;address&#34;:&#34;198.51.100.10&#34;" in page, "compact, sorted"
    assert re.search(r"<dt>Leaf hash</dt><dd><code>[A-Za-z0-9+/]{43}=</code>", page)
    assert '<span class="pill pill-ok">matches</span>' in page
    assert '<span class="pill pill-ok">signature valid</span>' in page
    assert '<span class="pill pill-ok">verifies</span>' in page
    assert f"GET /api/v1/audit/proof/inclusion?index={web}" in page


def test_filters_match_exactly_or_by_prefix_and_pages_go_back_in_time(
    admin: Site, two_orgs: None
) -> None:
    hosts = admin.get("/audit?action=host.*").text
    assert "host:clinic/web-1" in hosts and "host:bakery/oven-1" in hosts
    assert "org.create" not in hosts
    assert "No entry matches these filters." in admin.get("/audit?action=host").text
    everything = indexes(admin.get("/audit").text)
    assert everything == sorted(everything, reverse=True), "newest first"
    bakery = admin.get("/audit?organisation=bakery&actor=admin").text
    assert "host:bakery/oven-1" in bakery and "host:clinic/web-1" not in bakery


def test_checkpoints_and_the_key_are_shown_with_how_to_verify(
    auditor: Site, settings: Settings
) -> None:
    checkpoints = auditor.get("/audit/checkpoints").text
    assert '<span class="pill pill-ok">valid</span>' in checkpoints
    key = audit.verifier_key(settings)
    verify = auditor.get("/audit/verify").text
    assert f'value="{key}"' in verify
    assert f"infracms audit verify {settings.node_name}-audit.jsonl --key {key}" in verify
    assert 'href="/api/v1/audit/export"' not in verify, "the export is for node admins"
    # auditors are told to keep their own checkpoint, and how
    assert f"--key {key} --trusted {settings.node_name}-checkpoints.txt" in verify
    assert f"infracms audit checkpoint &gt;&gt; {settings.node_name}-checkpoints.txt" in verify
    assert 'href="/api/v1/audit/checkpoint" download=' in verify
    assert "/api/v1/audit/checkpoint &gt;&gt;" in verify


def test_nothing_on_the_audit_pages_changes_anything(
    auditor: Site, engine: Engine, settings: Settings
) -> None:
    web = index_of(engine, "host:clinic/web-1")
    before = count(engine, AuditEntry)
    for url in ("/audit", f"/audit/entries/{web}", "/audit/checkpoints", "/audit/verify"):
        page = auditor.get(url)
        assert page.status_code == 200, url
        assert 'method="post"' not in page.text.replace('method="post" action="/logout"', ""), url
    assert count(engine, AuditEntry) == before


def test_a_viewer_is_told_they_may_read_no_entries(
    two_orgs: None, other_site: Site, engine: Engine, settings: Settings
) -> None:
    viewer = signed_in(other_site, engine, settings, "vera", clinic=Role.viewer)
    page = viewer.get("/audit").text
    assert "No entries you may read" in page and indexes(page) == []
    assert "Audit log</a>" not in viewer.get("/orgs/clinic").text
    assert viewer.get("/audit/verify").status_code == 200, "the key is public"


def test_the_new_parts_of_the_site_are_in_the_navigation(admin: Site) -> None:
    nav = admin.get("/").text.split("</nav>", 1)[0]
    for href in ("/modules", "/definitions", "/runs", "/audit"):
        assert f'href="{href}"' in nav, href
