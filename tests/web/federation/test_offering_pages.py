"""Offerings (per organisation): owners publish one of a module's declared offerings
through the form (field errors beside each plan's terms, nothing published on error),
see it listed, and withdraw it after a confirmation; others only read."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import Engine

from infracms.config import Settings
from infracms.db import session_scope
from infracms.models import Role
from infracms.models.federation import PublishedOffering
from infracms.services.federation import offerings
from tests.helpers import ADMIN, count
from tests.web.conftest import Site
from tests.web.federation.conftest import OFFERING
from tests.web.test_definition_pages import field_errors
from tests.web.test_people_pages import signed_in

NEW = "/orgs/coop/offerings/new"
FORM: dict[str, Any] = {
    "module": "webspace",
    "offering": "webspace",
    "group": "pool",
    "offering_id": "",
    "name": "",
    "description": "",
    "kind": "",
    "plan.small": "on",
    "plan.small.amount": "4.50",
    "plan.small.currency": "eur",
    "plan.small.unit": "month",
    "plan.small.capacity": "10",
    "plan.small.region": "eu-west",
    "plan.large.amount": "",
    "plan.large.currency": "",
    "plan.large.unit": "month",
    "plan.large.capacity": "",
    "plan.large.region": "",
    "policy": "auto",
    "auto_approve_peers": "b.test\nc.test\n",
    "quota": "2",
    "settings": "php: '8.2'\n",
    "bindable": "on",
}


@pytest.fixture
def coop(admin: Site) -> str:
    """Organisation `coop` with a group `pool`, web space enabled."""
    admin.post("/orgs", {"name": "coop", "title": ""})
    admin.post("/orgs/coop/groups/new", {"name": "pool", "parent": ""})
    for name in ("base", "webspace"):
        admin.post(f"/modules/{name}/availability", {"available": "yes"})
    assert admin.post("/orgs/coop/modules/webspace/enable", {}).status_code == 303
    return "coop"


def test_the_owner_chooses_a_declared_offering(admin: Site, coop: str) -> None:
    page = admin.get(NEW).text
    assert f'href="{NEW}?module=webspace&amp;offering=webspace"' in page
    assert "Hosted web space" in page and "Small: up to 5 GB; Large: up to 50 GB" in page
    assert "Managed PostgreSQL database" in page and "module not enabled" in page
    form = admin.get(f"{NEW}?module=webspace&offering=webspace").text
    assert '<option value="pool">pool</option>' in form
    assert 'id="plan.small" name="plan.small" checked' in form
    assert "Requesters fill in: site, disk_gb, php, backups, aliases." in form
    assert 'placeholder="coop-webspace"' in form


def test_publishing_shows_each_error_beside_its_field_and_publishes_nothing(
    admin: Site, engine: Engine, coop: str
) -> None:
    bad = {
        **FORM,
        "group": "",
        "plan.small.amount": "cheap",
        "plan.small.capacity": "lots",
        "quota": "-1",
    }
    page = admin.post(NEW, bad)
    assert page.status_code == 422
    assert set(field_errors(page.text)) == {"plan.small.capacity"}  # read before the service
    page = admin.post(NEW, {**bad, "plan.small.capacity": "10"})
    errors = field_errors(page.text)
    assert set(errors) == {"plan.small.amount", "quota"}
    assert errors["plan.small.amount"] == "must be an amount like 4.50 (at most 4 decimals)"
    assert 'value="cheap"' in page.text
    no_plan = {key: value for key, value in FORM.items() if key != "plan.small"}
    assert "plans" in field_errors(admin.post(NEW, no_plan).text)
    assert field_errors(admin.post(NEW, {**FORM, "group": "nowhere"}).text) == {
        "group": "no such group"
    }
    assert "settings" in field_errors(admin.post(NEW, {**FORM, "settings": "- a list"}).text)
    assert count(engine, PublishedOffering) == 0


def test_a_published_offering_is_listed_with_its_terms(
    admin: Site, engine: Engine, coop: str
) -> None:
    response = admin.post(NEW, FORM)
    assert response.status_code == 303, field_errors(response.text)
    assert response.headers["location"] == "/orgs/coop/offerings?notice=offering-published"
    page = admin.get(response.headers["location"]).text
    assert "Offering published" in page and OFFERING in page
    assert "4.50 EUR a month" in page and "10 places" in page and "eu-west" in page
    assert "automatic for b.test, c.test" in page and "up to 2 instances each" in page
    with session_scope(engine) as session:
        (published,) = offerings.list_publications(
            session=session, actor=ADMIN, organisation="coop"
        )
    assert [plan["plan"] for plan in published.plans] == ["small"]
    assert published.settings == {"php": "8.2"} and published.policy.value == "auto"
    assert published.auto_approve_peers == ["b.test", "c.test"] and published.quota == 2


def test_withdrawing_asks_first(admin: Site, engine: Engine, coop: str) -> None:
    admin.post(NEW, FORM)
    url = f"/orgs/coop/offerings/{OFFERING}/withdraw"
    assert f'action="{url}"' in admin.get(url).text
    assert admin.post(url, {}, csrf="").status_code == 403
    response = admin.post(url, {})
    assert response.headers["location"] == "/orgs/coop/offerings?notice=offering-withdrawn"
    page = admin.get(response.headers["location"]).text
    assert '<span class="pill">withdrawn</span>' in page and url not in page
    assert admin.get("/orgs/coop/offerings/nothing/withdraw").status_code == 404


@pytest.mark.parametrize("role", [Role.operator, Role.viewer])
def test_only_owners_publish(
    admin: Site, other_site: Site, engine: Engine, settings: Settings, coop: str, role: Role
) -> None:
    admin.post(NEW, FORM)
    member = signed_in(other_site, engine, settings, "morgan", coop=role)
    page = member.get("/orgs/coop/offerings").text
    assert OFFERING in page and NEW not in page and "/withdraw" not in page
    assert member.get(NEW).status_code == 403
    assert member.post(NEW, {**FORM, "offering_id": "other"}).status_code == 403
    assert member.post(f"/orgs/coop/offerings/{OFFERING}/withdraw", {}).status_code == 403
    assert count(engine, PublishedOffering) == 1
