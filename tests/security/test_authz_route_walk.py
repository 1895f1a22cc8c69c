"""Authorise before anything else: an owner of one organisation walks EVERY route of the
API (as `app.routes` lists them) against another organisation's objects, then again once
that organisation is gone. Each route that names an object answers 403 or 404, and the
very same answer whether the object exists or not, so nothing is learnt (not even that a
run is in a state that forbids a rerun); no route answers with a 5xx, and nothing the
attacker sends is written.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.routing import iter_route_contexts
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from infracms.app import create_app
from infracms.config import Settings
from infracms.db import session_scope
from infracms.keys import load_keyring
from infracms.models import Run
from infracms.models.run import RunKind, RunStatus
from infracms.services import auth, credentials, inventory, organisations, users
from infracms.services.common import organisation_by_name
from infracms.services.context import Actor
from tests.helpers import ADMIN, audit_size, make_org, make_user

pytestmark = pytest.mark.security

ATTACKER, VICTIM, THING = "attacker", "victim", "thing"
# Public by design (C2SP tlog tiles): anyone may fetch them, and they grow with the log.
PUBLIC = ("/api/v1/audit/tile/",)
UNSAFE = ("POST", "PUT", "PATCH", "DELETE")


def _token(engine: Engine, username: str, org: str) -> tuple[str, uuid.UUID]:
    with session_scope(engine, write=True) as session:
        user = users.user_by_name(session, username=username)
        roles = {organisation_by_name(session, name=org).id: "owner"}
        actor = Actor(kind="user", id=str(user.id), name=username, roles=roles, user_id=user.id)
        issued = auth.issue_token(
            session=session, actor=actor, data={"name": "t", "role": "owner", "organisation": org}
        )
    return issued.token, issued.id


def _victim_objects(engine: Engine, settings: Settings) -> dict[str, str]:
    """The victim organisation's host, group and credential (all called `thing`), a
    failed run, a member with a token, and an audit entry: path values naming them."""
    victim_id = make_org(engine, VICTIM)
    make_user(engine, settings, "victim-user", **{VICTIM: "owner"})
    with session_scope(engine, write=True) as session:
        inventory.create_group(
            session=session, actor=ADMIN, organisation=VICTIM, data={"name": THING}
        )
        inventory.create_host(
            session=session,
            actor=ADMIN,
            organisation=VICTIM,
            data={"name": THING, "address": "198.51.100.9", "groups": [THING]},
        )
        credentials.create_credential(
            session=session,
            actor=ADMIN,
            keyring=load_keyring(settings),
            organisation=VICTIM,
            data={"name": THING, "kind": "password", "secret": "the victim's secret"},
        )
        run = Run(
            organisation_id=victim_id,
            kind=RunKind.apply,
            status=RunStatus.failed,
            requested_by="victim-user",
            hosts=[THING],
            recap={THING: {"failures": 1}},
        )
        session.add(run)
        session.commit()
        run_id = run.id
    _, token_id = _token(engine, "victim-user", VICTIM)
    return {
        "org": VICTIM,
        "name": THING,
        "host": THING,
        "username": "victim-user",
        "invitation_id": "victims-invitation",
        "run_id": str(run_id),
        "token_id": str(token_id),
        "index": str(audit_size(engine) - 1),
        "number": "1",
        "level": "0",
        "verb": "suspend",
        "service": str(uuid.uuid4()),
        "offering_id": str(uuid.uuid4()),
        "instance": str(uuid.uuid4()),
    }


def _requests(app: Any, values: dict[str, str]) -> Iterator[tuple[str, str]]:
    """Every (method, URL) of the API that names something, filled with `values`."""
    for route in iter_route_contexts(app.routes):
        path = str(route.path_format)
        if not path.startswith("/api/") or "{" not in path or path.startswith(PUBLIC):
            continue
        url = re.sub(r"{(\w+)(?::\w+)?}", lambda m: values[m.group(1)], path)
        for method in sorted(route.methods or ()):
            if method != "HEAD":
                yield method, url


def _walk(client: TestClient, requests: list[tuple[str, str]]) -> dict[tuple[str, str], Any]:
    answers = {}
    for method, url in requests:
        body = {} if method in UNSAFE else None
        response = client.request(method, url, json=body)
        answers[(method, url)] = (response.status_code, response.json())
    return answers


@pytest.fixture
def attacker(engine: Engine, settings: Settings) -> Iterator[TestClient]:
    """The owner of another organisation, with an API token of theirs."""
    make_org(engine, ATTACKER)
    make_user(engine, settings, "mallory", **{ATTACKER: "owner"})
    token, _ = _token(engine, "mallory", ATTACKER)
    app = create_app(settings)
    with TestClient(app, headers={"authorization": f"Bearer {token}"}) as client:
        yield client
    app.state.engine.dispose()


def test_every_route_answers_alike_for_existing_and_missing_objects(
    attacker: TestClient, engine: Engine, settings: Settings
) -> None:
    values = _victim_objects(engine, settings)
    requests = sorted(set(_requests(attacker.app, values)))
    assert len(requests) > 50, f"only {len(requests)} routes were walked"
    before = audit_size(engine)
    existing = _walk(attacker, requests)
    assert audit_size(engine) == before, "the attacker's requests wrote to the audit log"
    with session_scope(engine, write=True) as session:
        organisations.delete_organisation(session=session, actor=ADMIN, name=VICTIM)
    missing = _walk(attacker, requests)
    wrong = [
        f"{request}: {existing[request]} vs {missing[request]}"
        for request in requests
        if existing[request][0] not in (403, 404) or existing[request] != missing[request]
    ]
    assert not wrong, "answers that are not a uniform 403/404:\n" + "\n".join(wrong)


def test_rerun_failed_of_another_organisations_run_reveals_nothing(
    attacker: TestClient, engine: Engine, settings: Settings
) -> None:
    values = _victim_objects(engine, settings)
    for org in (VICTIM, ATTACKER):
        response = attacker.post(f"/api/v1/orgs/{org}/runs/{values['run_id']}/rerun-failed")
        assert response.status_code == 404, response.text
        assert "failed hosts" not in response.text


@pytest.mark.parametrize(
    ("method", "url"),
    [
        ("POST", "/api/v1/orgs"),
        ("POST", "/api/v1/users"),
        ("POST", "/api/v1/peers/invitations"),
        ("POST", "/api/v1/peers/accept"),
        ("POST", "/api/v1/broker-clients"),
        ("PUT", "/api/v1/modules/base/availability"),
    ],
)
def test_node_admin_routes_refuse_before_reading_the_body(
    attacker: TestClient, method: str, url: str
) -> None:
    response = attacker.request(method, url, json={"not": "what the route takes"})
    assert response.status_code == 403, response.text
