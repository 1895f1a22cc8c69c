"""schemathesis against the real app, in-process over ASGI: every /api/ operation of the
OpenAPI document, all checks, as a viewer and as an owner of an organisation that holds
a group, a host and a credential. Any 5xx, any answer outside its declared schema, status
or media type, and any schema-valid request refused for its shape fails the test.

A 422 for a request of the right shape is the API refusing it for the state it meets
(an unknown group, a module not made available, no SSH key at the address), which no
schema can say; `positive_data_acceptance` accepts it. The peer routes (`/v2`,
`/federation/v1`) answer only signed requests and are left to their own tests.
"""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from jsonschema import Draft202012Validator
from schemathesis.config import SchemathesisConfig
from schemathesis.engine import events, from_schema
from sqlalchemy import Engine

from infracms.app import create_app
from infracms.config import Settings
from infracms.db import session_scope
from infracms.keys import load_keyring
from infracms.services import auth, credentials, inventory, users
from infracms.services.common import organisation_by_name
from infracms.services.context import Actor
from tests.helpers import ADMIN, make_org, make_user

pytestmark = pytest.mark.slow

MIN_CASES = 2000
EXAMPLES = 25  # per operation and phase: about 2,700 cases a role (5,700 at 40)
SEED = 20261207
ORG = "clinic"


def seed_node(engine: Engine, settings: Settings, role: str) -> str:
    """An organisation with a group, a host and a credential; a `role` member's token."""
    make_org(engine, ORG)
    make_user(engine, settings, "fuzzer", **{ORG: role})
    with session_scope(engine, write=True) as session:
        inventory.create_group(session=session, actor=ADMIN, organisation=ORG, data={"name": "g1"})
        inventory.create_host(
            session=session,
            actor=ADMIN,
            organisation=ORG,
            data={"name": "web1", "address": "198.51.100.5", "groups": ["g1"]},
        )
        credentials.create_credential(
            session=session,
            actor=ADMIN,
            keyring=load_keyring(settings),
            organisation=ORG,
            data={"name": "pw", "kind": "password", "secret": "a secret for the fuzz"},
        )
        user = users.user_by_name(session, username="fuzzer")
        roles = {organisation_by_name(session, name=ORG).id: role}
        actor = Actor(kind="user", id=str(user.id), name="fuzzer", roles=roles, user_id=user.id)
        issued = auth.issue_token(
            session=session, actor=actor, data={"name": "fuzz", "role": role, "organisation": ORG}
        )
    return issued.token


def run_schemathesis(app: Any, token: str) -> tuple[int, Counter[tuple[str, str]], list[str]]:
    """Run every phase against `app`; the number of cases, failures by operation and check."""
    config = SchemathesisConfig.from_dict(
        {
            "seed": SEED,
            "cache": {"enabled": False},  # each run starts from the seed alone; no files
            "headers": {"Authorization": f"Bearer {token}"},
            "generation": {"max-examples": EXAMPLES},
            "checks": {
                "enabled": True,
                "positive_data_acceptance": {
                    "expected-statuses": ["2XX", "401", "403", "404", "409", "422"]
                },
            },
            "parameters": {"org": ORG},
        }
    )
    schema = schemathesis.openapi.from_asgi("/openapi.json", app, config=config)
    schema = schema.include(path_regex="^/api/")
    cases, failures, samples = 0, Counter[tuple[str, str]](), []
    for event in from_schema(schema).execute():
        if isinstance(event, events.ScenarioFinished):
            cases += len(event.recorder.cases)
            for case_id, checks in event.recorder.checks.items():
                for check in checks:
                    if check.status.name == "FAILURE" and not _body_is_valid(
                        app, event.recorder.cases[case_id].value, check
                    ):
                        failures[(event.recorder.label, check.name)] += 1
                        samples.append(_describe(event.recorder, case_id, check))
        elif isinstance(event, events.FatalError | events.NonFatalError):
            samples.append(f"error: {event}")
            failures[("engine", "error")] += 1
    return cases, failures, samples


def _body_is_valid(app: Any, case: Any, check: Any) -> bool:
    """Whether a "schema-violating request accepted" failure sent a body its schema allows.

    schemathesis 4.32's coverage phase makes every property of an all-optional body
    (`OrganisationUpdate`, `GroupUpdate`) required in its template and then reports the
    missing one as a violation; the body it sent is valid, so that is no finding."""
    info = str(check.failure_info.failure) if check.failure_info else ""
    if check.name != "negative_data_rejection" or "Missing required property" not in info:
        return False
    document = app.openapi()
    path = case.operation.path
    operation = document["paths"][path][case.method.lower()]
    schema = operation["requestBody"]["content"]["application/json"]["schema"]
    validator = Draft202012Validator({**schema, "components": document["components"]})
    return bool(validator.is_valid(case.body))


def _describe(recorder: Any, case_id: str, check: Any) -> str:
    case = recorder.cases[case_id].value
    interaction = recorder.interactions.get(case_id)
    response = interaction.response if interaction else None
    answer = f"{response.status_code} {(response.content or b'')[:300]!r}" if response else "-"
    info = check.failure_info.failure if check.failure_info else ""
    return (
        f"{check.name}: {case.method} {case.formatted_path} query={case.query} "
        f"body={str(case.body)[:300]} -> {answer}\n  {str(info)[:400]}"
    )


@pytest.mark.parametrize("role", ["viewer", "owner"])
def test_the_api_holds_under_schemathesis(
    engine: Engine, settings: Settings, tmp_path: Path, role: str
) -> None:
    token = seed_node(engine, settings, role)
    app = create_app(settings)
    started = time.monotonic()
    cases, failures, samples = run_schemathesis(app, token)
    elapsed = time.monotonic() - started
    app.state.engine.dispose()
    print(f"schemathesis as {role}: {cases} cases in {elapsed:.0f} s")
    assert not failures, "\n".join([str(dict(failures)), *samples[:20]])
    assert cases >= MIN_CASES, f"only {cases} cases were generated"
