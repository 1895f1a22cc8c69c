"""A group's page lists its hosts and child groups, and hosts are put in and taken out
from there; the group tree shows how many hosts each group has."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine

from infracms.config import Settings
from infracms.db import session_scope
from infracms.models import AuditEntry, Role
from infracms.services import inventory
from tests.helpers import ADMIN, count, make_org, make_user, password_of
from tests.web.conftest import Site
from tests.web.test_inventory_pages import field_errors


@pytest.fixture
def clinic(engine: Engine) -> str:
    make_org(engine, "clinic")
    with session_scope(engine, write=True) as session:
        for group, parent in (("web", None), ("web-eu", "web")):
            inventory.create_group(
                session=session,
                actor=ADMIN,
                organisation="clinic",
                data={"name": group, "parent": parent},
            )
        for n in (1, 2, 3):
            inventory.create_host(
                session=session,
                actor=ADMIN,
                organisation="clinic",
                data={"name": f"web{n}", "address": f"198.51.100.{n}", "groups": ["web"][: n % 2]},
            )
    return "clinic"


def test_the_group_page_lists_hosts_and_children_and_adds_and_removes(
    admin: Site, engine: Engine, clinic: str
) -> None:
    page = admin.get("/orgs/clinic/groups/web").text
    assert "Hosts in this group (2)" in page
    assert 'href="/orgs/clinic/hosts/web1"' in page and 'href="/orgs/clinic/hosts/web3"' in page
    assert 'href="/orgs/clinic/groups/web-eu"' in page
    assert 'name="hosts" value="web2"' in page  # offered: not in the group yet
    assert 'name="hosts" value="web1"' not in page

    entries = count(engine, AuditEntry)
    added = admin.post("/orgs/clinic/groups/web/hosts", {"hosts": ["web2"]})
    assert added.headers["location"] == "/orgs/clinic/groups/web?notice=hosts-added"
    assert "Hosts in this group (3)" in admin.get(added.headers["location"]).text
    removed = admin.post("/orgs/clinic/groups/web/hosts/web1/remove", {})
    assert removed.status_code == 303
    with session_scope(engine) as session:
        web1 = inventory.get_host(session=session, actor=ADMIN, organisation="clinic", name="web1")
    assert web1.groups == []
    assert count(engine, AuditEntry) == entries + 2

    tree = admin.get("/orgs/clinic/groups").text
    assert "2 hosts" in tree and "0 hosts" in tree


def test_typing_an_unknown_host_is_refused_beside_the_field(admin: Site, clinic: str) -> None:
    refused = admin.post("/orgs/clinic/groups/web/hosts", {"typed": "web2, ghost"})
    assert refused.status_code == 422
    assert field_errors(refused.text) == {"hosts": "unknown host(s): ghost"}


def test_a_viewer_sees_the_hosts_but_cannot_change_them(
    other_site: Site, engine: Engine, settings: Settings, clinic: str
) -> None:
    make_user(engine, settings, "vera", clinic=Role.viewer)
    other_site.login("vera", password_of("vera"))
    page = other_site.get("/orgs/clinic/groups/web").text
    assert "web1" in page and "Add hosts" not in page and "Take out" not in page
    entries = count(engine, AuditEntry)
    assert other_site.post("/orgs/clinic/groups/web/hosts", {"hosts": ["web2"]}).status_code == 403
    assert other_site.post("/orgs/clinic/groups/web/hosts/web1/remove", {}).status_code == 403
    assert count(engine, AuditEntry) == entries
