"""/api/v1/orgs/{org}/schedules and /drift: bad cron and time zones refused by field,
nothing written; a schedule added, listed with its next time, removed; host states read."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from infracms.config import Settings
from infracms.models import Schedule
from tests.conftest import ADMIN_PASSWORD
from tests.helpers import audit_size, count, sign_in

API = "/api/v1/orgs/clinic"


@pytest.fixture
def admin(client: TestClient, engine: Engine, settings: Settings) -> Iterator[TestClient]:
    sign_in(client, engine, settings, "admin", ADMIN_PASSWORD)
    assert client.post("/api/v1/orgs", json={"name": "clinic"}).status_code == 201
    yield client


@pytest.mark.parametrize(
    ("body", "field", "words"),
    [
        ({"cron": "0 3 * *"}, "cron", "five fields"),
        ({"cron": "0 3 * * 8"}, "cron", "five fields"),
        ({"time_zone": "Europe/Atlantis"}, "time_zone", "IANA"),
        ({"time_zone": "/etc/passwd"}, "time_zone", "IANA"),
        ({"mode": "yolo"}, "mode", ""),
        ({"group": "nope"}, "group", "no group"),
    ],
)
def test_bad_schedules_are_refused_with_the_field_named(
    admin: TestClient, engine: Engine, body: dict[str, object], field: str, words: str
) -> None:
    before = audit_size(engine)
    data = {"name": "nightly", "cron": "0 3 * * *", **body}
    response = admin.post(f"{API}/schedules", json=data)
    assert response.status_code == 422, response.text
    errors = {e["field"]: e["message"] for e in response.json().get("errors", [])}
    assert field in errors and words in errors[field], errors
    assert audit_size(engine) == before and count(engine, Schedule) == 0


def test_a_schedule_is_added_listed_and_removed(admin: TestClient, engine: Engine) -> None:
    data = {"name": "nightly", "cron": "30 2 * * *", "time_zone": "Europe/Paris"}
    made = admin.post(f"{API}/schedules", json=data)
    assert made.status_code == 201, made.text
    assert made.json()["next_due_at"] and made.json()["created_by"] == "admin"
    assert admin.post(f"{API}/schedules", json=data).status_code == 409
    assert [s["name"] for s in admin.get(f"{API}/schedules").json()] == ["nightly"]
    assert admin.delete(f"{API}/schedules/nightly").status_code == 204
    assert admin.get(f"{API}/schedules").json() == []
    assert admin.get(f"{API}/drift").json() == []
    assert admin.get(f"{API}/drift/ghost").status_code == 404
