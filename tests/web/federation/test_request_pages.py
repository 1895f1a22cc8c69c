"""Provision requests (the providing organisation): pending, approved and declined, with
the requesting peer and organisation and the parameters; owners and operators approve
(the run starts, linked) or decline with a reason; others only read."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from infracms.db import session_scope
from infracms.models import Role
from infracms.models.federation import InstanceStatus, ServiceInstance, UsageRecord
from tests.helpers import count
from tests.web.conftest import Site
from tests.web.federation.conftest import CONSUMER, PROVIDER, Node, ask, provided
from tests.web.test_people_pages import signed_in

REQUESTS = "/orgs/coop/requests"


@pytest.fixture
def pending(app: FastAPI, engine: Engine, peered: Node) -> uuid.UUID:
    """One pending request at a.test, from b.test's clinic."""
    ask(app, engine)
    return provided(peered)


@pytest.fixture
def provider_member(peered: Node) -> Iterator[TestClient]:
    """A second browser on a.test."""
    client = TestClient(peered.app, base_url=f"https://{PROVIDER}")
    yield client
    client.close()


def member(peered: Node, client: TestClient, name: str, role: Role) -> Site:
    """A user of a.test with `role` in coop, signed in."""
    return signed_in(Site(client), peered.engine, peered.settings, name, coop=role)


def test_pending_requests_show_who_asks_for_what(peered: Node, pending: uuid.UUID) -> None:
    page = peered.admin.get(REQUESTS).text
    assert f'id="request-{pending}"' in page
    assert f"<strong>{CONSUMER}</strong>" in page
    assert "for clinic, asked by test-admin" in page
    assert "site:</span> blog" in page and "disk_gb:</span> 3" in page
    assert 'pill-warn">pending' in page and '>Pending <span class="count">1</span>' in page
    assert "No requests here." in peered.admin.get(f"{REQUESTS}?status=declined").text
    assert peered.admin.get(f"{REQUESTS}?status=nonsense").status_code == 400


def test_approving_starts_the_run_and_links_to_it(peered: Node, pending: uuid.UUID) -> None:
    detail = peered.admin.get(f"{REQUESTS}/{pending}").text
    assert "Approve and provision" in detail and "Decline request" in detail
    response = peered.admin.post(f"{REQUESTS}/{pending}/approve", {})
    assert response.headers["location"] == f"{REQUESTS}/{pending}?notice=request-approved"
    (run_id,) = peered.executor.submitted
    page = peered.admin.get(response.headers["location"]).text
    assert "Request approved" in page and 'pill-running">provisioning' in page
    assert f'href="/orgs/coop/runs/{run_id}" id="run-link"' in page
    assert re.search(r'href="/orgs/coop/definitions/svc-[0-9a-f]{12}"', page)
    assert "Approve and provision" not in page
    assert peered.admin.get(f"/orgs/coop/runs/{run_id}").status_code == 200
    assert count(peered.engine, UsageRecord) == 1
    again = peered.admin.post(f"{REQUESTS}/{pending}/approve", {})
    assert again.status_code == 409 and "Could not approve the request" in again.text


def test_declining_records_the_reason_for_the_requester(
    app: FastAPI, engine: Engine, peered: Node, pending: uuid.UUID
) -> None:
    response = peered.admin.post(f"{REQUESTS}/{pending}/decline", {"reason": "pool is full"})
    assert response.headers["location"] == f"{REQUESTS}/{pending}?notice=request-declined"
    page = peered.admin.get(response.headers["location"]).text
    assert 'pill-bad">declined' in page and "“pool is full”" in page
    assert peered.executor.submitted == []
    listed = peered.admin.get(f"{REQUESTS}?status=declined").text
    assert f'id="request-{pending}"' in listed


@pytest.mark.parametrize("role", [Role.editor, Role.viewer])
def test_only_owners_and_operators_decide(
    peered: Node, pending: uuid.UUID, provider_member: TestClient, role: Role
) -> None:
    reader = member(peered, provider_member, "rita", role)
    page = reader.get(f"{REQUESTS}/{pending}").text
    assert "blog" in page and "Approve and provision" not in page and "<textarea" not in page
    assert "An owner or operator of coop approves or declines it." in page
    assert reader.post(f"{REQUESTS}/{pending}/approve", {}).status_code == 403
    assert reader.post(f"{REQUESTS}/{pending}/decline", {"reason": "no"}).status_code == 403
    with session_scope(peered.engine) as session:
        row = session.get(ServiceInstance, pending)
        assert row is not None and row.status is InstanceStatus.pending


def test_an_operator_approves(
    peered: Node, pending: uuid.UUID, provider_member: TestClient
) -> None:
    operator = member(peered, provider_member, "otto", Role.operator)
    assert operator.post(f"{REQUESTS}/{pending}/approve", {}, csrf="").status_code == 403
    assert peered.executor.submitted == []
    assert operator.post(f"{REQUESTS}/{pending}/approve", {}).status_code == 303
    assert len(peered.executor.submitted) == 1


def test_another_organisations_request_is_not_found(peered: Node, pending: uuid.UUID) -> None:
    peered.admin.post("/orgs", {"name": "other", "title": ""})
    assert peered.admin.get(f"/orgs/other/requests/{pending}").status_code == 404
    assert peered.admin.post(f"/orgs/other/requests/{pending}/approve", {}).status_code == 404
