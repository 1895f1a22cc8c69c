"""The pages speak a person's language, not the API's: refusals name what may not be
done in words, field errors are sentences, error pages have plain headings; the API keeps
its precise problem documents."""

from __future__ import annotations

import html

import pytest
from sqlalchemy import Engine

from infracms.config import Settings
from infracms.models import Role
from infracms.services.authz import ACTION_WORDS, Action
from infracms.web.errors import plain_words
from tests.web.conftest import Site
from tests.web.test_inventory_pages import GOOD_HOST, field_errors
from tests.web.test_people_pages import make_org, signed_in

API_WORDS = ("user.list", "is for node administrators", "Forbidden", "Input should be")


@pytest.fixture
def clinic(admin: Site, engine: Engine) -> str:
    make_org(engine, "clinic")
    return "clinic"


def test_every_action_has_words() -> None:
    assert set(ACTION_WORDS) == set(Action)


def test_a_member_opening_the_accounts_page_is_told_in_words(
    clinic: str, other_site: Site, engine: Engine, settings: Settings
) -> None:
    viewer = signed_in(other_site, engine, settings, "vera", clinic=Role.viewer)
    page = viewer.get("/users")
    assert page.status_code == 403
    text = html.unescape(page.text)
    assert "<h1>Not allowed</h1>" in text
    assert "Only node administrators may see the node's accounts" in text
    assert "is for node administrators" not in text and "Forbidden" not in text
    problem = viewer.client.get("/api/v1/users").json()  # the API: its title and the code
    assert problem["title"] == "Forbidden" and "(user.list)" in problem["detail"]


def test_a_viewer_is_told_what_their_role_may_not_do(
    clinic: str, other_site: Site, engine: Engine, settings: Settings
) -> None:
    viewer = signed_in(other_site, engine, settings, "vera", clinic=Role.viewer)
    text = html.unescape(viewer.get("/orgs/clinic/hosts/new").text)
    assert "The viewer role may not change where hosts are reached" in text


def test_a_host_form_with_wrong_values_says_so_in_sentences(clinic: str, admin: Site) -> None:
    refused = admin.post("/orgs/clinic/hosts/new", {**GOOD_HOST, "ssh_port": "twenty-two"})
    assert refused.status_code == 422
    assert field_errors(refused.text)["ssh_port"] == "must be a whole number"
    far = admin.post("/orgs/clinic/hosts/new", {**GOOD_HOST, "ssh_port": "70000"})
    assert field_errors(far.text)["ssh_port"] == "must be at most 65535"
    assert not any(words in refused.text + far.text for words in API_WORDS)
    problem = admin.client.post(
        "/api/v1/orgs/clinic/hosts",
        json={"name": "web-9", "address": "x", "ssh_port": "ab"},
        headers={"x-csrf-token": admin.csrf},
    ).json()
    assert "Input should be a valid integer" in str(problem)  # the API stays precise


def test_a_link_with_a_wrong_value_is_a_plain_page(clinic: str, admin: Site) -> None:
    page = admin.get("/orgs/clinic?sort=password")
    assert page.status_code == 400
    text = html.unescape(page.text)
    assert "This link is not right" in text and "(sort)" in text
    assert "Bad request" not in text


@pytest.mark.parametrize(
    ("pydantic", "plain"),
    [
        ("Field required", "must be filled in"),
        ("Extra inputs are not permitted", "is not something this form takes"),
        ("Input should be a valid integer, unable to parse string", "must be a whole number"),
        ("Input should be greater than or equal to 1", "must be at least 1"),
        ("String should have at least 1 character", "must not be empty"),
        ("String should have at most 63 characters", "must have at most 63 characters"),
        ("Input should be 'pinned' or 'missing'", "must be 'pinned' or 'missing'"),
        ("is not a valid IP address or host name", "is not a valid IP address or host name"),
    ],
)
def test_pydantic_messages_are_said_as_a_form_says_them(pydantic: str, plain: str) -> None:
    assert plain_words(pydantic) == plain
