"""The inputs that gave a 500 (issue 12) are a clear 4xx, and nothing is written: null
for a field an update may only leave out, integers beyond 64 bits, numbers that are not
finite, free-form JSON too deep or too large, NUL in text, a malformed invitation token;
405 answers name the allowed methods; the OpenAPI document says all of it."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from infracms.config import Settings
from infracms.errors import InvalidInput
from infracms.models import Host, HostGroup
from infracms.models.validators import JSON_MAX_DEPTH
from infracms.web.forms import parse_variables
from tests.conftest import ADMIN_PASSWORD
from tests.helpers import audit_size, count, sign_in

HOSTS = "/api/v1/orgs/clinic/hosts"
GROUPS = "/api/v1/orgs/clinic/groups"
HUGE = 2**63


@pytest.fixture
def admin(client: TestClient, engine: Engine, settings: Settings) -> Iterator[TestClient]:
    """Signed in as the admin; organisation `clinic` with group `g1` and host `web1`."""
    sign_in(client, engine, settings, "admin", ADMIN_PASSWORD)
    assert client.post("/api/v1/orgs", json={"name": "clinic"}).status_code == 201
    assert client.post(GROUPS, json={"name": "g1"}).status_code == 201
    host = {"name": "web1", "address": "198.51.100.5", "groups": ["g1"]}
    assert client.post(HOSTS, json=host).status_code == 201
    yield client


def refused(client: TestClient, engine: Engine, method: str, url: str, **kwargs: object) -> dict:
    """Send a request that must be refused with a 4xx problem and change nothing."""
    before = audit_size(engine), count(engine, Host), count(engine, HostGroup)
    response = client.request(method, url, **kwargs)  # type: ignore[arg-type]
    assert 400 <= response.status_code < 500, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert (audit_size(engine), count(engine, Host), count(engine, HostGroup)) == before
    body: dict = response.json()
    return body


@pytest.mark.parametrize(
    ("url", "field"),
    [
        (f"{GROUPS}/g1", "description"),
        (f"{GROUPS}/g1", "variables"),
        (f"{HOSTS}/web1", "address"),
        (f"{HOSTS}/web1", "ssh_port"),
        (f"{HOSTS}/web1", "ssh_user"),
        (f"{HOSTS}/web1", "variables"),
        (f"{HOSTS}/web1", "groups"),
        ("/api/v1/orgs/clinic", "title"),
    ],
)
def test_null_for_a_field_that_may_only_be_left_out_is_422(
    admin: TestClient, engine: Engine, url: str, field: str
) -> None:
    body = refused(admin, engine, "PATCH", url, json={field: None})
    assert body["status"] == 422
    assert body["errors"] == [
        {"field": field, "message": "cannot be null: leave the field out to keep it"}
    ]
    assert admin.get(f"{HOSTS}/web1").json()["variables"] == {}


@pytest.mark.parametrize(
    ("url", "headers"),
    [
        (f"{HOSTS}?offset={HUGE}", {}),
        (f"/api/v1/orgs/clinic/runs?offset={HUGE}", {}),
        (f"/api/v1/audit/entries?offset={HUGE}", {}),
        (f"/api/v1/audit/entries?end={HUGE}", {}),
        (f"/api/v1/audit/entries/{HUGE}", {}),
        (f"/api/v1/orgs/clinic/runs/{uuid.UUID(int=1)}/stream", {"last-event-id": str(HUGE)}),
    ],
)
def test_integers_beyond_64_bits_are_422(
    admin: TestClient, engine: Engine, url: str, headers: dict[str, str]
) -> None:
    assert refused(admin, engine, "GET", url, headers=headers)["status"] == 422


@pytest.mark.parametrize(
    "raw",
    [
        '{"variables": {"a": 1e400}}',
        '{"variables": {"a": NaN}}',
        '{"variables": {"a": -Infinity}}',
        '{"variables": {"a": 9223372036854775808}}',
        '{"variables": {"a": "x\\u0000y"}}',
        '{"variables": {"a": ' + "[" * (JSON_MAX_DEPTH + 2) + "]" * (JSON_MAX_DEPTH + 2) + "}}",
        '{"variables": {"a": ' + "[" * 5000 + "]" * 5000 + "}}",
        '{"variables": {"a": ' + "9" * 5000 + "}}",
        '{"description": "x\\u0000y"}',
    ],
)
def test_unbounded_json_is_refused(admin: TestClient, engine: Engine, raw: str) -> None:
    headers = {"content-type": "application/json"}
    for url in (f"{GROUPS}/g1", f"{HOSTS}/web1"):
        if "description" in raw and "hosts" in url:
            continue
        refused(admin, engine, "PATCH", url, content=raw, headers=headers)


def test_nul_in_a_title_or_a_name_is_422(admin: TestClient, engine: Engine) -> None:
    refused(admin, engine, "PATCH", "/api/v1/orgs/clinic", json={"title": "a\x00b"})
    refused(admin, engine, "POST", GROUPS, json={"name": "g\x002"})


def test_a_malformed_invitation_token_is_422_not_a_gateway_error(
    admin: TestClient, engine: Engine
) -> None:
    for token in ("inv1.abc.def", "x" * 20, "inv1.e30.AAAA"):
        body = refused(admin, engine, "POST", "/api/v1/peers/accept", json={"token": token})
        assert body["status"] == 422
        assert body["errors"][0]["field"] == "token"


def test_405_names_every_method_of_the_resource(admin: TestClient) -> None:
    response = admin.put(f"{HOSTS}/web1")
    assert response.status_code == 405
    assert response.headers["allow"] == "DELETE, GET, PATCH"
    assert admin.request("TRACE", "/api/v1/peers/accept").headers["allow"] == "POST"


def test_the_web_variables_form_refuses_what_the_api_refuses() -> None:
    for source in ("a: " + "[" * 5000 + "]" * 5000, "a: " + "9" * 5000, "a: .inf", "a: 1.0e+400"):
        with pytest.raises(InvalidInput) as caught:
            parse_variables(source)
        assert set(caught.value.errors) == {"variables"}


def test_the_openapi_document_declares_bounds_and_problems(client: TestClient) -> None:
    document = client.get("/openapi.json").json()
    patch = document["paths"]["/api/v1/orgs/{org}/hosts/{name}"]["patch"]
    declared = set(patch["responses"])
    assert {"401", "403", "404", "409", "413", "415", "422"} <= declared
    problem = patch["responses"]["422"]["content"]["application/problem+json"]["schema"]
    assert problem == {"$ref": "#/components/schemas/Problem"}
    update = document["components"]["schemas"]["HostUpdate"]["properties"]
    assert "anyOf" not in update["address"], "null is refused, so the schema must not allow it"
    offset = next(
        p
        for p in document["paths"]["/api/v1/orgs/{org}/hosts"]["get"]["parameters"]
        if p["name"] == "offset"
    )
    assert offset["schema"]["maximum"] == HUGE - 1
    create = document["components"]["schemas"]["GroupCreate"]["properties"]
    assert "pattern" in create["name"] and create["description"]["pattern"] == "^[^\\x00]*$"
