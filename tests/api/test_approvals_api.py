"""The approvals API: policies, a held apply approved by two people through their tokens,
the field errors and the refusals a caller gets."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlmodel import select

from infracms.db import session_scope
from infracms.models import ApprovalPolicy, Membership, User
from infracms.services import auth
from tests.helpers import audit_size, count
from tests.services.test_approvals import clinic, plugins

__all__ = ["clinic", "plugins"]


def token_of(engine: Engine, username: str, org: str = "clinic") -> str:
    with session_scope(engine, write=True) as session:
        user = session.exec(select(User).where(User.username == username)).one()
        mine = list(session.exec(select(Membership).where(Membership.user_id == user.id)))
        role = mine[0].role
        issued = auth.issue_token(
            session=session,
            actor=auth.user_actor(user, {m.organisation_id: m.role for m in mine}),
            data={"name": "t", "organisation": org, "role": role},
        )
        return issued.token


def as_(client: TestClient, engine: Engine, username: str, org: str = "clinic") -> TestClient:
    client.cookies.clear()
    client.headers["authorization"] = f"Bearer {token_of(engine, username, org)}"
    return client


@pytest.fixture
def api(client: TestClient, clinic: Engine) -> TestClient:
    return client


def test_two_approvals_through_the_api_release_a_held_apply(
    api: TestClient, clinic: Engine
) -> None:
    policy = {"name": "production", "groups": ["prod"], "approvals_required": 2}
    assert (
        as_(api, clinic, "olga")
        .post("/api/v1/orgs/clinic/approval-policies", json=policy)
        .status_code
        == 200
    )
    created = as_(api, clinic, "oscar").post(
        "/api/v1/orgs/clinic/runs", json={"kind": "apply", "hosts": ["web1"]}
    )
    assert created.status_code == 202 and created.json()["status"] == "pending_approval"
    run = created.json()["id"]
    url = f"/api/v1/orgs/clinic/runs/{run}/approvals"
    shown = as_(api, clinic, "olga").get(url).json()["request"]
    digest = shown["digest"]
    assert shown["plan"]["hosts"]["web1"]["settings"]["motd"]["message"] == "a"
    mine = as_(api, clinic, "oscar").post(url, json={"decision": "approve"})
    assert mine.status_code == 403 and "someone else" in mine.json()["detail"]
    first = as_(api, clinic, "olga").post(url, json={"decision": "approve", "digest": digest})
    assert first.status_code == 200 and first.json()["status"] == "pending_approval"
    stale = as_(api, clinic, "otto").post(url, json={"decision": "approve", "digest": "0" * 64})
    assert stale.status_code == 409
    second = as_(api, clinic, "otto").post(url, json={"decision": "approve", "digest": digest})
    assert second.status_code == 200 and second.json()["status"] in ("queued", "running", "failed")
    decisions = as_(api, clinic, "vera").get(url).json()["decisions"]
    assert [(d["approver"].split(" ")[0], d["digest"]) for d in decisions] == [
        ("olga", digest),
        ("otto", digest),
    ]


@pytest.mark.security
def test_a_viewer_and_another_organisations_owner_are_refused(
    api: TestClient, clinic: Engine
) -> None:
    as_(api, clinic, "olga").post(
        "/api/v1/orgs/clinic/approval-policies",
        json={"name": "production", "groups": ["prod"], "approvals_required": 1},
    )
    run = (
        as_(api, clinic, "oscar")
        .post("/api/v1/orgs/clinic/runs", json={"kind": "apply", "hosts": ["web1"]})
        .json()["id"]
    )
    body = {"decision": "approve"}
    assert (
        as_(api, clinic, "vera")
        .post(f"/api/v1/orgs/clinic/runs/{run}/approvals", json=body)
        .status_code
        == 403
    )
    bob = as_(api, clinic, "bob", "other")
    assert bob.post(f"/api/v1/orgs/other/runs/{run}/approvals", json=body).status_code == 404
    assert (
        bob.post(
            f"/api/v1/orgs/other/runs/{run}/break-glass", json={"reason": "x" * 20}
        ).status_code
        == 404
    )


def test_bad_policy_input_is_refused_with_field_errors_and_nothing_saved(
    api: TestClient,
    clinic: Engine,
) -> None:
    olga = as_(api, clinic, "olga")
    before = audit_size(clinic)
    for body, field in (
        ({"name": "p", "approvals_required": 9}, "approvals_required"),
        ({"name": "p", "roles": ["viewer"]}, "roles"),
        ({"name": "p", "groups": ["nope"]}, "groups"),
        ({"name": "p", "expires_hours": 0}, "expires_hours"),
    ):
        response = olga.post("/api/v1/orgs/clinic/approval-policies", json=body)
        assert response.status_code == 422, response.text
        assert field in response.text, response.text
    assert audit_size(clinic) == before and count(clinic, ApprovalPolicy) == 0
