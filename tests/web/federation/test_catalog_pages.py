"""The federated catalog: every peer's offerings with who offers them, searched and
filtered; a plan's request form generated from its parameters schema, with field errors
and nothing sent until it is right, then a request that lands pending at the provider."""

from __future__ import annotations

import re

from sqlalchemy import Engine
from sqlmodel import select

from infracms.config import Settings
from infracms.db import session_scope
from infracms.models import Role
from infracms.models.federation import ConsumerService, ServiceInstance
from tests.helpers import count
from tests.web.conftest import Site
from tests.web.federation.conftest import LARGE, OFFERING, PROVIDER, SMALL, Node
from tests.web.test_definition_pages import field_errors
from tests.web.test_people_pages import signed_in

PLAN_URL = f"/catalog/{PROVIDER}/{OFFERING}/{SMALL}"
GOOD = {
    "organisation": "clinic",
    "parameters.site": "blog",
    "parameters.disk_gb": "2",
    "parameters.php": "8.3",
    "parameters.aliases": "blog.example\nwww.blog.example\n",
}


def plans_listed(page: str) -> list[str]:
    """The plan ids the catalog page links to, in order."""
    return re.findall(rf'href="/catalog/{re.escape(PROVIDER)}/{OFFERING}/([^"]+)"', page)


def test_the_catalog_lists_each_peers_offerings_with_who_offers_them(
    admin: Site, peered: Node
) -> None:
    page = admin.get("/catalog")
    assert page.status_code == 200
    assert "Hosted web space" in page.text
    assert f"Offered by <strong>{PROVIDER}</strong>" in page.text
    assert "4.50 EUR a month" in page.text and "30 EUR a month" in page.text
    assert "eu-west" in page.text and "eu-north" in page.text
    assert plans_listed(page.text) == [SMALL, LARGE]
    assert '<a href="/catalog" aria-current="page">Catalog</a>' in page.text


def test_filters_narrow_the_plans(admin: Site, peered: Node) -> None:
    cases = {
        "text=web+space": [SMALL, LARGE],
        "text=database": [],
        "kind=web": [SMALL, LARGE],
        "kind=storage": [],
        "region=eu-north": [LARGE],
        "min_capacity=5": [SMALL],
        "max_price=10&currency=EUR": [SMALL],
        "max_price=10&currency=USD": [],
        f"peer={PROVIDER}": [SMALL, LARGE],
        "peer=nobody.example": [],
    }
    for query, expected in cases.items():
        page = admin.get(f"/catalog?{query}")
        assert page.status_code == 200, query
        assert plans_listed(page.text) == expected, query
    assert "Nothing matches" in admin.get("/catalog?text=database").text


def test_a_filter_that_is_not_a_number_is_shown_beside_its_field(admin: Site, peered: Node) -> None:
    page = admin.get("/catalog?min_capacity=many&max_price=cheap")
    assert page.status_code == 422
    errors = field_errors(page.text)
    assert set(errors) == {"min_capacity", "max_price"}
    assert 'value="many"' in page.text


def test_an_empty_catalog_tells_the_admin_where_to_peer(admin: Site) -> None:
    admin.post("/orgs", {"name": "clinic", "title": ""})
    page = admin.get("/catalog").text
    assert "No offerings yet" in page and 'href="/peers"' in page


def test_the_catalog_is_for_members_of_an_organisation(
    other_site: Site, engine: Engine, settings: Settings, peered: Node
) -> None:
    loner = signed_in(other_site, engine, settings, "lone")
    assert loner.get("/catalog").status_code == 403


def test_a_viewer_browses_but_is_not_offered_to_request(
    other_site: Site, engine: Engine, settings: Settings, peered: Node
) -> None:
    viewer = signed_in(other_site, engine, settings, "vera", clinic=Role.viewer)
    page = viewer.get("/catalog").text
    assert "Hosted web space" in page and ">Details<span" in page and ">Request<span" not in page


def test_the_request_form_is_generated_from_the_plans_schema(admin: Site, peered: Node) -> None:
    page = admin.get(PLAN_URL)
    assert page.status_code == 200
    text = page.text
    assert 'id="parameters.site"' in text and "small letters, digits and dashes" in text
    assert 'name="parameters.disk_gb" type="number"' in text and 'value="1"' in text
    assert 'max="5"' in text and 'max="50"' not in text
    assert '<option value="none" selected>none</option>' in text
    assert 'name="parameters.backups" checked' in text
    assert '<textarea id="parameters.aliases"' in text
    assert '<option value="clinic" selected>clinic</option>' in text  # the only one


def test_a_refused_request_shows_each_error_beside_its_field_and_sends_nothing(
    admin: Site, engine: Engine, peered: Node
) -> None:
    bad = {**GOOD, "organisation": "", "parameters.site": "", "parameters.disk_gb": "9"}
    page = admin.post(PLAN_URL, bad)
    assert page.status_code == 422
    assert field_errors(page.text) == {
        "organisation": "choose the organisation that gets the service",
        "parameters.site": "is required",
        "parameters.disk_gb": "must be at most 5",
    }
    assert 'name="parameters.aliases"' in page.text and "www.blog.example" in page.text
    page = admin.post(PLAN_URL, {**GOOD, "parameters.site": "Blog!", "parameters.disk_gb": "x"})
    errors = field_errors(page.text)
    assert errors["parameters.site"].startswith("must match the pattern")
    assert errors["parameters.disk_gb"] == "must be a whole number, not 'x'"
    assert count(engine, ConsumerService) == 0
    assert count(peered.engine, ServiceInstance) == 0


def test_a_request_is_sent_typed_and_lands_pending_at_the_provider(
    admin: Site, engine: Engine, peered: Node
) -> None:
    response = admin.post(PLAN_URL, GOOD)
    assert response.status_code == 303
    location = response.headers["location"]
    assert re.fullmatch(r"/orgs/clinic/services/[0-9a-f-]{36}\?notice=service-requested", location)
    page = admin.get(location).text
    assert "Service requested" in page and "in progress" in page
    with session_scope(peered.engine) as session:
        (instance,) = session.exec(select(ServiceInstance)).all()
    assert instance.status.value == "pending" and instance.plan_id == SMALL
    assert instance.parameters == {
        "site": "blog",
        "disk_gb": 2,
        "php": "8.3",
        "backups": False,
        "aliases": ["blog.example", "www.blog.example"],
    }
    assert instance.context["organization_name"] == "clinic"


def test_only_owners_and_operators_request(
    other_site: Site, engine: Engine, settings: Settings, peered: Node
) -> None:
    editor = signed_in(other_site, engine, settings, "eddie", clinic=Role.editor)
    page = editor.get(PLAN_URL).text
    assert "Owners and operators of an organisation may request" in page
    assert editor.post(PLAN_URL, GOOD).status_code == 403
    assert count(engine, ConsumerService) == 0


def test_a_request_needs_the_csrf_token(admin: Site, engine: Engine, peered: Node) -> None:
    assert admin.post(PLAN_URL, GOOD, csrf="").status_code == 403
    assert admin.post(PLAN_URL, GOOD, csrf="forged").status_code == 403
    assert count(engine, ConsumerService) == 0


def test_an_unknown_plan_is_not_found(admin: Site, peered: Node) -> None:
    assert admin.get(f"/catalog/{PROVIDER}/{OFFERING}/nope").status_code == 404
    assert admin.get(f"/catalog/nobody.example/{OFFERING}/{SMALL}").status_code == 404
