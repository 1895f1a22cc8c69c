"""Changing a service requested from a peer (b.test asks a.test, two apps in one process):
through the API (PATCH) and the service page's form; the provider applies the change
with a new revision and run, then the service is bound again; refusals name the field;
a peer that fails to answer or answers badly is a gateway problem (503, 504, 502), and
nothing changes here."""

from __future__ import annotations

import html
import json
import threading
import uuid
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import Engine
from sqlmodel import col, select

from infracms.config import Settings
from infracms.db import session_scope
from infracms.models import AuditEntry, Role
from infracms.models.federation import (
    ConsumerService,
    ConsumerStatus,
    InstanceStatus,
    ServiceBinding,
    ServiceInstance,
    UsageRecord,
)
from infracms.plugins import Plugins
from infracms.services.federation import consumer
from infracms.services.federation.node import FederationContext
from tests.helpers import ADMIN
from tests.web.conftest import Site
from tests.web.federation.conftest import PROVIDER, Node, ask, finish, offer, provided
from tests.web.federation.test_service_pages import DATABASE, SERVICES, password_of
from tests.web.test_people_pages import signed_in

API = "/api/v1/orgs/clinic/services"
SMALL, LARGE = f"{DATABASE}.small", f"{DATABASE}.large"


def patch(site: Site, service: uuid.UUID, body: dict[str, Any]) -> httpx.Response:
    """PATCH the service through the API, signed in as `site`'s user."""
    return site.client.patch(f"{API}/{service}", json=body, headers={"x-csrf-token": site.csrf})


def api_post(site: Site, url: str) -> httpx.Response:
    return site.client.post(url, headers={"x-csrf-token": site.csrf})


def consumer_row(engine: Engine, service: uuid.UUID) -> ConsumerService:
    with session_scope(engine) as session:
        row = session.get(ConsumerService, service)
        assert row is not None
        return row


def provider_row(node: Node, service: uuid.UUID) -> ServiceInstance:
    with session_scope(node.engine) as session:
        return session.exec(
            select(ServiceInstance).where(ServiceInstance.instance_id == str(service))
        ).one()


def actions(engine: Engine) -> list[tuple[str, dict[str, Any]]]:
    with session_scope(engine) as session:
        rows = session.exec(select(AuditEntry).order_by(col(AuditEntry.index))).all()
    return [(row.action, json.loads(row.payload)) for row in rows]


def bindings(node: Node) -> list[ServiceBinding]:
    with session_scope(node.engine) as session:
        return list(session.exec(select(ServiceBinding).order_by(col(ServiceBinding.created_at))))


def problem_of(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    return body


@pytest.fixture
def requested(admin: Site, peered: Node, plugins: Plugins) -> uuid.UUID:
    """clinic's request for a database at a.test, through the catalog's form."""
    offer(peered, plugins, "postgresql", "managed-postgresql", "dbpool")
    admin.post("/peers/sync", {})
    url = f"/catalog/{PROVIDER}/{DATABASE}/{SMALL}"
    response = admin.post(url, {"organisation": "clinic", "parameters.database": "blog"})
    assert response.status_code == 303, response.text
    return uuid.UUID(response.headers["location"].split("/services/")[1].split("?")[0])


@pytest.fixture
def ready(admin: Site, peered: Node, requested: uuid.UUID) -> uuid.UUID:
    """The database approved at a.test, its run succeeded, and b.test told (bound)."""
    instance = provider_row(peered, requested)
    assert peered.admin.post(f"/orgs/coop/requests/{instance.id}/approve", {}).status_code == 303
    finish(peered, peered.executor.submitted[-1])
    assert admin.post(f"{SERVICES}/{requested}/refresh", {}).status_code == 303
    return requested


# --- through the API ----------------------------------------------------------------------


def test_an_update_is_applied_by_the_provider_then_bound_again(
    app: FastAPI, admin: Site, engine: Engine, peered: Node, ready: uuid.UUID
) -> None:
    password = password_of(app, engine, ready)
    [old] = bindings(peered)
    runs_before = len(peered.executor.submitted)
    answer = patch(admin, ready, {"parameters": {"allowed_networks": ["10.1.0.0/24"]}})
    assert answer.status_code == 200, answer.text
    shown = answer.json()
    assert shown["status"] == "updating" and shown["operation"].startswith("update-")
    assert shown["parameters"] == {"database": "blog", "allowed_networks": ["10.1.0.0/24"]}
    instance = provider_row(peered, ready)
    assert instance.parameters == shown["parameters"]
    assert instance.operation == shown["operation"]
    assert len(peered.executor.submitted) == runs_before + 1
    assert instance.run_id == peered.executor.submitted[-1]
    # while the provider applies it, the service says so and keeps its details
    refreshed = api_post(admin, f"{API}/{ready}/refresh").json()
    assert refreshed["status"] == "updating" and refreshed["has_credentials"]
    assert "updating: run" in refreshed["description"]
    finish(peered, peered.executor.submitted[-1])
    refreshed = api_post(admin, f"{API}/{ready}/refresh").json()
    assert refreshed["status"] == "succeeded" and refreshed["has_credentials"], refreshed
    # bound again: a new binding on the provider, the old one dropped; the same password
    old_gone, new = bindings(peered)
    assert old_gone.id == old.id and old_gone.deleted_at is not None and new.deleted_at is None
    assert consumer_row(engine, ready).binding_id == new.binding_id
    assert password_of(app, engine, ready) == password
    consumer = [a for a, p in actions(engine) if p.get("instance_id") == str(ready)]
    assert consumer[-2:] == ["service.update", "service.succeeded"], consumer
    provider = [a for a, p in actions(peered.engine) if p.get("instance_id") == str(ready)]
    assert {"service.update", "service.unbind"} <= set(provider)
    assert provider.count("service.bind") == 2


def test_a_plan_change_with_nothing_to_apply_is_done_at_once(
    admin: Site, engine: Engine, peered: Node, ready: uuid.UUID
) -> None:
    runs_before = len(peered.executor.submitted)
    answer = patch(admin, ready, {"plan_id": LARGE})
    assert answer.status_code == 200, answer.text
    shown = answer.json()
    assert (shown["status"], shown["plan_id"], shown["has_credentials"]) == (
        "succeeded",
        LARGE,
        True,
    )
    assert len(peered.executor.submitted) == runs_before  # no setting changed: no run
    assert provider_row(peered, ready).plan_id == LARGE
    with session_scope(peered.engine) as session:
        usage = session.exec(select(UsageRecord).order_by(col(UsageRecord.started_at))).all()
    assert [(u.plan_id, u.ended_at is None) for u in usage] == [(SMALL, False), (LARGE, True)]


@pytest.mark.parametrize(
    ("body", "status", "field", "words"),
    [
        ({"plan_id": "coop-managed-postgresql.huge"}, 422, "plan_id", "has no plan"),
        (
            {"parameters": {"allowed_networks": "10.0.0.0/8"}},
            400,
            "parameters.allowed_networks",
            "not of type",
        ),
        ({"parameters": {"database": "blog"}}, 422, "parameters", "the same as now"),
    ],
)
def test_refused_changes_name_the_field_and_reach_no_peer(
    admin: Site,
    peered: Node,
    ready: uuid.UUID,
    body: dict[str, Any],
    status: int,
    field: str,
    words: str,
) -> None:
    before = len(actions(peered.engine))
    problem = problem_of(patch(admin, ready, body), status)
    errors = {error["field"]: error["message"] for error in problem.get("errors", [])}
    assert words in errors.get(field, ""), problem
    assert len(actions(peered.engine)) == before


def test_an_offering_whose_plans_may_not_change_refuses_a_plan_change(
    app: FastAPI, admin: Site, engine: Engine, peered: Node
) -> None:
    service = ask(app, engine)
    assert (
        peered.admin.post(f"/orgs/coop/requests/{provided(peered)}/approve", {}).status_code == 303
    )
    finish(peered, peered.executor.submitted[-1])
    assert api_post(admin, f"{API}/{service}/refresh").json()["status"] == "succeeded"
    problem = problem_of(patch(admin, service, {"plan_id": "coop-webspace.large"}), 422)
    assert problem["errors"] == [
        {"field": "plan_id", "message": "a.test lets no instance of coop-webspace change its plan"}
    ]
    # its parameters may change: webspace has no update hook, so they are merged over its
    # settings
    answer = patch(admin, service, {"parameters": {"disk_gb": 4}})
    assert answer.status_code == 200, answer.text
    assert provider_row(peered, service).parameters["disk_gb"] == 4


@pytest.mark.parametrize("role", [Role.viewer, Role.editor])
def test_only_owners_and_operators_change_a_service(
    other_site: Site, engine: Engine, settings: Settings, ready: uuid.UUID, role: Role
) -> None:
    reader = signed_in(other_site, engine, settings, "rita", clinic=role)
    assert problem_of(patch(reader, ready, {"plan_id": LARGE}), 403)
    page = reader.get(f"{SERVICES}/{ready}").text
    assert "Change plan or parameters" not in page
    assert reader.post(f"{SERVICES}/{ready}/update", {"plan_id": LARGE}).status_code == 403
    assert consumer_row(engine, ready).plan_id == SMALL


# --- a peer that fails: gateway problems --------------------------------------------------


def test_an_unreachable_peer_is_503_and_nothing_changes(
    admin: Site, engine: Engine, peered: Node, ready: uuid.UUID
) -> None:
    peered.network.clients.pop(PROVIDER)
    problem = problem_of(patch(admin, ready, {"plan_id": LARGE}), 503)
    assert problem["type"] == "https://infracms.org/problems/peer-unreachable"
    assert problem["error"] == "PeerUnreachable" and "nothing was changed" in problem["detail"]
    assert problem["instance"] == f"{API}/{ready}"
    row = consumer_row(engine, ready)
    assert (row.status, row.plan_id, row.sealed is not None) == (
        ConsumerStatus.succeeded,
        SMALL,
        True,
    )
    failed = [p for a, p in actions(engine) if a == "service.update_failed"]
    assert len(failed) == 1 and "PeerUnreachable" in failed[0]["error"]
    problem = problem_of(api_post(admin, f"{API}/{ready}/deprovision"), 503)
    assert problem["error"] == "PeerUnreachable"
    assert consumer_row(engine, ready).status is ConsumerStatus.succeeded


def test_a_peer_that_times_out_is_504(app: FastAPI, admin: Site, ready: uuid.UUID) -> None:
    def slow(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("no answer", request=request)

    app.state.federation_transport = httpx.MockTransport(slow)
    problem = problem_of(patch(admin, ready, {"plan_id": LARGE}), 504)
    assert problem["type"] == "https://infracms.org/problems/peer-timeout"
    assert problem["error"] == "PeerTimeout"


def test_a_peer_that_refuses_is_502_with_its_answer(
    admin: Site, engine: Engine, peered: Node, requested: uuid.UUID
) -> None:
    # the provider still awaits approval; this node is made to think otherwise
    with session_scope(engine, write=True) as session:
        row = session.get(ConsumerService, requested)
        assert row is not None
        row.status = ConsumerStatus.succeeded
        session.add(row)
        session.commit()
    problem = problem_of(patch(admin, requested, {"parameters": {"allowed_networks": []}}), 502)
    assert problem["type"] == "https://infracms.org/problems/peer-error"
    assert (problem["error"], problem["peer_status"], problem["peer_error"]) == (
        "BrokerError",
        422,
        "ConcurrencyError",
    )
    assert "still being provisioned" in problem["detail"]
    assert provider_row(peered, requested).status is InstanceStatus.pending


# --- the service page ---------------------------------------------------------------------


def test_the_page_changes_plan_and_parameters_with_a_form(
    admin: Site, engine: Engine, peered: Node, ready: uuid.UUID
) -> None:
    page = html.unescape(admin.get(f"{SERVICES}/{ready}").text)
    assert "Change plan or parameters" in page
    assert f'<option value="{LARGE}"' in page and f'<option value="{SMALL}" selected' in page
    assert 'name="parameters.database"' in page and 'value="blog"' in page
    refused = admin.post(
        f"{SERVICES}/{ready}/update",
        {"plan_id": SMALL, "parameters.database": "blog", "parameters.allowed_networks": "x" * 50},
    )
    assert refused.status_code == 422, refused.text
    shown = html.unescape(refused.text)
    assert "There is a problem" in shown and "must be at most 43 characters long" in shown
    assert 'value="blog"' in shown  # the form keeps what was typed
    response = admin.post(
        f"{SERVICES}/{ready}/update",
        {
            "plan_id": SMALL,
            "parameters.database": "blog",
            "parameters.allowed_networks": "10.7.0.0/24",
        },
    )
    assert response.status_code == 303, response.text
    assert response.headers["location"] == f"{SERVICES}/{ready}?notice=service-updating"
    page = html.unescape(admin.get(response.headers["location"]).text)
    assert 'pill-running">updating' in page and "Change asked" in page
    assert "Change plan or parameters" not in page  # not while the change applies
    assert provider_row(peered, ready).parameters["allowed_networks"] == ["10.7.0.0/24"]


def test_a_refused_change_on_the_page_says_why(admin: Site, peered: Node, ready: uuid.UUID) -> None:
    peered.network.clients.pop(PROVIDER)
    response = admin.post(
        f"{SERVICES}/{ready}/update", {"plan_id": LARGE, "parameters.database": "blog"}
    )
    assert response.status_code == 502, response.text
    text = html.unescape(response.text)
    assert "The peer did not do it: PATCH https://a.test/v2/service_instances/" in text
    assert "no node at a.test" in text and 'value="blog"' in text


def test_a_module_with_nothing_to_remove_ends_at_once(
    app: FastAPI, admin: Site, engine: Engine, peered: Node, plugins: Plugins
) -> None:
    service = ask(app, engine)
    assert (
        peered.admin.post(f"/orgs/coop/requests/{provided(peered)}/approve", {}).status_code == 303
    )
    finish(peered, peered.executor.submitted[-1])
    runs_before = len(peered.executor.submitted)
    shown = api_post(admin, f"{API}/{service}/deprovision").json()
    assert shown["status"] == "ended"
    assert len(peered.executor.submitted) == runs_before
    ended = provider_row(peered, service)
    assert ended.status is InstanceStatus.ended and "has nothing to remove" in (ended.reason or "")


# --- two followers at once ------------------------------------------------------------------


def test_two_followers_at_once_bind_once_and_audit_once(
    app: FastAPI, engine: Engine, peered: Node, requested: uuid.UUID
) -> None:
    """Refresh and the periodic job may ask the provider at the same moment: both see the
    service succeeded, one binds, and the change is written and audited once."""
    instance = provider_row(peered, requested)
    assert peered.admin.post(f"/orgs/coop/requests/{instance.id}/approve", {}).status_code == 303
    finish(peered, peered.executor.submitted[-1])
    both_asked = threading.Barrier(2, timeout=20)
    route = peered.network.transport()

    def together(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/last_operation"):
            both_asked.wait()  # neither follower goes on before the other has its answer
        return route.handle_request(request)

    ctx = FederationContext.load(app.state.settings, transport=httpx.MockTransport(together))
    failures: list[BaseException] = []

    def follower() -> None:
        try:
            with session_scope(engine, write=True) as session:
                consumer.refresh_service(
                    session=session, actor=ADMIN, ctx=ctx, organisation="clinic", service=requested
                )
        except BaseException as exc:  # reported below, with the thread's traceback lost
            failures.append(exc)

    threads = [threading.Thread(target=follower) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert failures == [] and not any(t.is_alive() for t in threads), failures
    [binding] = bindings(peered)
    row = consumer_row(engine, requested)
    assert (row.status, row.binding_id, row.sealed is not None) == (
        ConsumerStatus.succeeded,
        binding.binding_id,
        True,
    )
    succeeded = [p for a, p in actions(engine) if a == "service.succeeded"]
    assert [p["binding_id"] for p in succeeded] == [binding.binding_id]
