"""The modules pages: admins make modules available, owners enable and disable them, with
the dependency chain or the definitions in the way named; everyone else only reads."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import Engine
from sqlmodel import select

from infracms.config import Settings
from infracms.db import session_scope
from infracms.models import AuditEntry, Role
from infracms.models.definition import AvailableModule, EnabledModule
from infracms.plugins import Plugins
from infracms.services import definitions, inventory
from tests.helpers import ADMIN, count, make_org
from tests.services.test_modules import FAKES
from tests.web.conftest import Site
from tests.web.test_people_pages import signed_in

BROKEN = "tests.web.no_such_plugin"


@pytest.fixture
def plugins() -> Plugins:
    """The services tests' fake modules (a dependency chain, a cycle…), and one that fails."""
    return Plugins.load(builtins=(*FAKES, BROKEN), entry_points=False)


@pytest.fixture
def clinic(admin: Site, engine: Engine) -> str:
    make_org(engine, "clinic")
    for name in ("base", "site", "top", "motd"):
        response = admin.post(f"/modules/{name}/availability", {"available": "yes"})
        assert response.status_code == 303, response.text
    refused = admin.post("/modules/haunted/availability", {"available": "yes"})
    assert refused.status_code == 422 and "haunted → ghost: not installed" in refused.text
    with session_scope(engine, write=True) as session:  # as a node from before that check
        session.add(AvailableModule(name="haunted"))
        session.commit()
    return "clinic"


def enabled(engine: Engine) -> set[str]:
    with session_scope(engine) as session:
        return set(session.exec(select(EnabledModule.name)).all())


def row_of(html: str, name: str) -> str:
    """The table row of one module."""
    found = re.search(rf'<tr id="module-{name}">(.*?)</tr>', html, re.S)
    assert found, f"no row for {name}"
    return found.group(1)


def test_the_admin_makes_a_module_available_and_sees_skipped_plugins(
    admin: Site, engine: Engine
) -> None:
    page = admin.get("/modules").text
    assert "not available" in row_of(page, "motd")
    assert BROKEN in page and "cannot be imported" in page, "skipped plugins are listed"
    response = admin.post("/modules/motd/availability", {"available": "yes"})
    assert response.status_code == 303
    assert response.headers["location"] == "/modules?notice=module-available#module-motd"
    page = admin.get(response.headers["location"]).text
    assert "The module is available to organisations now." in page
    assert "Withdraw" in row_of(page, "motd")
    assert "Withdraw" in row_of(page, "base"), "motd requires base: made available with it"
    assert count(engine, AvailableModule) == 2


def test_an_owner_enables_a_module_with_what_it_requires(
    clinic: str, other_site: Site, engine: Engine, settings: Settings
) -> None:
    owner = signed_in(other_site, engine, settings, "olga", clinic=Role.owner)
    page = owner.get("/orgs/clinic/modules").text
    assert "Enable" in row_of(page, "site")
    assert "tag-missing" in row_of(page, "site"), "site needs base, not enabled yet"
    response = owner.post("/orgs/clinic/modules/site/enable", {})
    assert response.status_code == 303
    assert enabled(engine) == {"base", "site"}
    page = owner.get("/orgs/clinic/modules?notice=module-enabled").text
    assert "Module enabled" in page
    assert "Disable" in row_of(page, "base") and "Needed by site." in row_of(page, "base")
    assert "BROKEN" not in page and BROKEN not in page, "skipped plugins are for admins"


def test_a_broken_dependency_chain_is_named_and_nothing_is_enabled(
    clinic: str, admin: Site, engine: Engine
) -> None:
    withdraw = admin.post("/modules/base/availability", {"available": "no"})
    assert withdraw.status_code == 409 and "required by" in withdraw.text
    with session_scope(engine, write=True) as session:  # as a node from before that check
        session.delete(session.get(AvailableModule, "base"))
        session.commit()
    before = count(engine, AuditEntry)
    response = admin.post("/orgs/clinic/modules/top/enable", {})
    assert response.status_code == 422
    assert "Could not change top" in response.text
    assert "top → site → base: not made available by the node admin" in response.text
    missing = admin.post("/orgs/clinic/modules/haunted/enable", {})
    assert "haunted → ghost: not installed" in missing.text
    assert enabled(engine) == set()
    assert count(engine, AuditEntry) == before


def test_disabling_is_refused_while_a_definition_or_a_module_uses_it(
    clinic: str, admin: Site, engine: Engine, plugins: Plugins
) -> None:
    admin.post("/orgs/clinic/modules/site/enable", {})
    with session_scope(engine, write=True) as session:
        inventory.create_host(
            session=session,
            actor=ADMIN,
            organisation="clinic",
            data={"name": "web-1", "address": "198.51.100.1"},
        )
        definitions.create_definition(
            session=session,
            actor=ADMIN,
            plugins=plugins,
            organisation="clinic",
            data={"name": "web-site", "module": "site", "target": {"host": "web-1"}},
        )
    used = admin.post("/orgs/clinic/modules/site/disable", {})
    assert used.status_code == 409
    assert "Module &#39;site&#39; is used by definitions: web-site." in used.text
    needed = admin.post("/orgs/clinic/modules/base/disable", {})
    assert "required by enabled modules: site" in needed.text
    assert enabled(engine) == {"base", "site"}


def test_viewers_and_auditors_see_no_buttons_and_cannot_post(
    clinic: str, other_site: Site, engine: Engine, settings: Settings
) -> None:
    viewer = signed_in(other_site, engine, settings, "vera", clinic=Role.viewer)
    page = viewer.get("/orgs/clinic/modules").text
    assert "/enable" not in page and "/disable" not in page
    assert "Make available" not in viewer.get("/modules").text
    assert viewer.post("/orgs/clinic/modules/base/enable", {}).status_code == 403
    assert viewer.post("/modules/motd/availability", {"available": "yes"}).status_code == 403
    assert enabled(engine) == set()
