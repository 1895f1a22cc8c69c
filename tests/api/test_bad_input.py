"""Bad input gets a clear 4xx naming what was wrong, and nothing is written."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlmodel import Session

from infracms.config import Settings
from infracms.db import session_scope
from infracms.models import ApiToken, Host, Organisation
from infracms.services import auth
from tests.conftest import ADMIN_PASSWORD
from tests.helpers import audit_size, count, make_org, make_user, password_of, sign_in


@pytest.fixture
def admin(client: TestClient, engine: Engine, settings: Settings) -> Iterator[TestClient]:
    """The client signed in as the admin, with an organisation `clinic`."""
    sign_in(client, engine, settings, "admin", ADMIN_PASSWORD)
    assert client.post("/api/v1/orgs", json={"name": "clinic"}).status_code == 201
    yield client


def fields(response: object) -> dict[str, str]:
    body = response.json()  # type: ignore[attr-defined]
    return {error["field"]: error["message"] for error in body.get("errors", [])}


@pytest.mark.parametrize(
    ("body", "field", "words"),
    [
        ({"name": "web1", "address": "999.1.1.1"}, "address", "not a valid IP"),
        ({"name": "web1", "address": "bad address!"}, "address", "neither an IP"),
        ({"name": "web1", "address": ""}, "address", "at least 1 character"),
        ({"name": "web1", "address": "10.0.0.1", "ssh_port": 0}, "ssh_port", "greater than"),
        ({"name": "web1", "address": "10.0.0.1", "ssh_port": 65536}, "ssh_port", "less than"),
        ({"name": "Web 1", "address": "10.0.0.1"}, "name", "lower-case"),
        ({"name": "web1", "address": "10.0.0.1", "ssh_user": "Root;"}, "ssh_user", "login name"),
        ({"name": "web1", "address": "10.0.0.1", "host_key": "nonsense"}, "host_key", "not an SSH"),
        (
            {"name": "web1", "address": "10.0.0.1", "variables": {"ansible_host": 1}},
            "variables",
            "reserved",
        ),
        ({"name": "web1", "address": "10.0.0.1", "groups": ["nope"]}, "groups", "unknown group"),
        ({"name": "web1", "address": "10.0.0.1", "credential": "nope"}, "credential", "no such"),
        ({"address": "10.0.0.1"}, "name", "required"),
    ],
)
def test_bad_host_is_refused_with_the_field_named(
    admin: TestClient, engine: Engine, body: dict[str, object], field: str, words: str
) -> None:
    before = audit_size(engine), count(engine, Host)
    response = admin.post("/api/v1/orgs/clinic/hosts", json=body)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert words in fields(response).get(field, ""), fields(response)
    assert (audit_size(engine), count(engine, Host)) == before


def test_duplicate_names_conflict(admin: TestClient, engine: Engine) -> None:
    host = {"name": "web1", "address": "10.0.0.1"}
    assert admin.post("/api/v1/orgs/clinic/hosts", json=host).status_code == 201
    before = audit_size(engine), count(engine, Host)
    response = admin.post("/api/v1/orgs/clinic/hosts", json=host)
    assert response.status_code == 409
    assert fields(response) == {"name": "is already taken"}
    assert admin.post("/api/v1/orgs", json={"name": "clinic"}).status_code == 409
    assert (audit_size(engine), count(engine, Host)) == before


def test_same_host_name_in_another_organisation_is_fine(admin: TestClient) -> None:
    assert admin.post("/api/v1/orgs", json={"name": "school"}).status_code == 201
    host = {"name": "web1", "address": "10.0.0.1"}
    assert admin.post("/api/v1/orgs/clinic/hosts", json=host).status_code == 201
    assert admin.post("/api/v1/orgs/school/hosts", json=host).status_code == 201


def test_unknown_organisation_is_404(admin: TestClient, engine: Engine) -> None:
    before = audit_size(engine)
    response = admin.post("/api/v1/orgs/nowhere/hosts", json={"name": "a", "address": "10.0.0.1"})
    assert response.status_code == 404
    assert "nowhere" in response.json()["detail"]
    assert admin.get("/api/v1/orgs/nowhere/hosts").status_code == 404
    assert audit_size(engine) == before


def test_oversized_body_is_413(admin: TestClient, engine: Engine, settings: Settings) -> None:
    before = audit_size(engine), count(engine, Host)
    padding = "x" * (settings.max_body_bytes + 10)
    response = admin.post(
        "/api/v1/orgs/clinic/hosts",
        json={"name": "big", "address": "10.0.0.1", "variables": {"pad": padding}},
    )
    assert response.status_code == 413
    assert (audit_size(engine), count(engine, Host)) == before


def test_streamed_oversized_body_is_refused(
    admin: TestClient, engine: Engine, settings: Settings
) -> None:
    before = count(engine, Host)

    def chunks() -> Iterator[bytes]:
        yield b'{"name": "big", "address": "10.0.0.1", "variables": {"pad": "'
        for _ in range(settings.max_body_bytes // 65536 + 2):
            yield b"x" * 65536
        yield b'"}}'

    response = admin.post(
        "/api/v1/orgs/clinic/hosts", content=chunks(), headers={"content-type": "application/json"}
    )
    assert response.status_code == 413
    assert count(engine, Host) == before


def test_wrong_content_type_is_415(admin: TestClient, engine: Engine) -> None:
    before = audit_size(engine)
    response = admin.post(
        "/api/v1/orgs/clinic/hosts",
        content="name=web1&address=10.0.0.1",
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert response.status_code == 415
    assert "application/json" in response.json()["detail"]
    assert audit_size(engine) == before


def test_malformed_json_is_422(admin: TestClient) -> None:
    response = admin.post(
        "/api/v1/orgs/clinic/hosts",
        content="{not json",
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 422


def test_bad_page_parameters(admin: TestClient) -> None:
    assert admin.get("/api/v1/orgs/clinic/hosts?limit=0").status_code == 422
    assert admin.get("/api/v1/orgs/clinic/hosts?limit=100000").status_code == 422
    assert admin.get("/api/v1/orgs/clinic/hosts?offset=-1").status_code == 422


def test_missing_or_wrong_csrf_is_refused(admin: TestClient, engine: Engine) -> None:
    before = audit_size(engine), count(engine, Organisation)
    token = admin.headers.pop("x-csrf-token")
    assert admin.post("/api/v1/orgs", json={"name": "nocsrf"}).status_code == 403
    admin.headers["x-csrf-token"] = token + "x"
    response = admin.post("/api/v1/orgs", json={"name": "badcsrf"})
    assert response.status_code == 403
    assert "CSRF" in response.json()["detail"]
    assert (audit_size(engine), count(engine, Organisation)) == before


def _bearer(client: TestClient, token: str) -> TestClient:
    client.cookies.clear()
    client.headers.pop("x-csrf-token", None)
    client.headers["authorization"] = f"Bearer {token}"
    return client


def test_wrong_expired_and_revoked_tokens_are_refused(
    client: TestClient, engine: Engine, settings: Settings
) -> None:
    make_org(engine, "clinic")
    make_user(engine, settings, "olga", clinic="owner")
    sign_in(client, engine, settings, "olga", password_of("olga"))
    issued = client.post(
        "/api/v1/tokens", json={"name": "ci", "role": "operator", "organisation": "clinic"}
    ).json()
    token_id = issued["id"]
    revoked = client.post(
        "/api/v1/tokens", json={"name": "old", "role": "viewer", "organisation": "clinic"}
    ).json()
    assert client.delete(f"/api/v1/tokens/{revoked['id']}").status_code == 200
    with session_scope(engine, write=True) as session:
        row = session.get(ApiToken, __import__("uuid").UUID(token_id))
        assert row is not None
        expired = auth.issue_token(
            session=session,
            actor=auth.session_info(
                session=session, raw_token=client.cookies["infracms_session"]
            ).actor,  # type: ignore[union-attr]
            data={
                "name": "soon",
                "role": "viewer",
                "organisation": "clinic",
                "expires_at": datetime.now(UTC) + timedelta(seconds=1),
            },
        )
    with Session(engine) as session:
        row = session.get(ApiToken, expired.id)
        assert row is not None
        row.expires_at = datetime.now(UTC) - timedelta(seconds=1)
        session.add(row)
        session.commit()
    before = audit_size(engine), count(engine, Host)
    host = {"name": "web1", "address": "10.0.0.1"}
    cases = {
        "icms_wrong": "unknown API token",
        revoked["token"]: "revoked",
        expired.token: "expired",
    }
    for token, words in cases.items():
        response = _bearer(client, token).post("/api/v1/orgs/clinic/hosts", json=host)
        assert response.status_code == 401, token
        assert words in response.json()["detail"]
    assert (audit_size(engine), count(engine, Host)) == before
    assert (
        _bearer(client, issued["token"]).post("/api/v1/orgs/clinic/hosts", json=host).status_code
        == 201
    )


def test_token_cannot_exceed_its_owner(
    client: TestClient, engine: Engine, settings: Settings
) -> None:
    make_org(engine, "clinic")
    make_org(engine, "school")
    make_user(engine, settings, "eddie", clinic="editor")
    sign_in(client, engine, settings, "eddie", password_of("eddie"))
    response = client.post(
        "/api/v1/tokens", json={"name": "x", "role": "owner", "organisation": "clinic"}
    )
    assert response.status_code == 422
    assert "role" in fields(response)
    response = client.post(
        "/api/v1/tokens", json={"name": "x", "role": "viewer", "organisation": "school"}
    )
    assert response.status_code == 403


def test_token_is_scoped_to_its_organisation_and_role(
    client: TestClient, engine: Engine, settings: Settings
) -> None:
    make_org(engine, "clinic")
    make_org(engine, "school")
    make_user(engine, settings, "olga", clinic="owner", school="owner")
    sign_in(client, engine, settings, "olga", password_of("olga"))
    token = client.post(
        "/api/v1/tokens", json={"name": "ro", "role": "viewer", "organisation": "clinic"}
    ).json()["token"]
    client = _bearer(client, token)
    assert client.get("/api/v1/orgs/clinic/hosts").status_code == 200
    # an organisation the token does not reach is not visible: 404, as if it did not exist
    assert client.get("/api/v1/orgs/school/hosts").status_code == 404
    assert (
        client.post(
            "/api/v1/orgs/clinic/hosts", json={"name": "a", "address": "10.0.0.1"}
        ).status_code
        == 403
    )


def test_no_credentials_is_401(client: TestClient, engine: Engine) -> None:
    response = client.get("/api/v1/orgs")
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
