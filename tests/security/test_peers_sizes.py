"""A peer with a valid key tries to make the provider store, parse or compute without
bound: huge context fields, oversized and deeply nested bodies, floods of requests,
too many pending requests, long or formula-like instance ids, oversized witness notes.
Each is refused with an OSB error body, and nothing is stored."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlmodel import select

from federation.limits import (
    MAX_CONTEXT_FIELD,
    MAX_JSON_DEPTH,
    MAX_REQUEST_BYTES,
    MAX_WITNESS_BYTES,
)
from federation.urls import ADD_CHECKPOINT_PATH
from infracms.db import session_scope
from infracms.errors import Conflict
from infracms.models.witness import WitnessConflict
from infracms.services.federation import offerings
from tests.security._peers_support import ADMIN, POSTGRES, Provider, provider_node, provision_body

pytestmark = pytest.mark.security


@pytest.fixture
def provider(tmp_path: Path) -> Iterator[Provider]:
    with provider_node(tmp_path) as node:
        yield node


def test_a_huge_organisation_name_is_refused(provider: Provider) -> None:
    before = provider.stored()
    answer = provider.provision({"database": "app"}, organization_name="x" * 900_000)
    assert answer.status_code == 413, answer.text  # over the body bound, before parsing
    assert answer.json()["error"] == "MessageTooLarge"
    answer = provider.provision({"database": "app"}, organization_name="x" * 20_000)
    assert answer.status_code == 400, answer.text  # within the body bound, over the field's
    assert answer.json()["error"] == "MalformedMessage" and "context" in answer.text
    assert provider.stored() == before


def test_context_fields_within_the_bound_are_kept_as_sent(provider: Provider) -> None:
    name = "Coöp " + "n" * (MAX_CONTEXT_FIELD - 5)
    assert provider.provision({"database": "app"}, organization_name=name).status_code == 202


@pytest.mark.parametrize("depth", [MAX_JSON_DEPTH + 1, 10_000, 100_000])
def test_a_deeply_nested_body_is_refused_not_a_500(provider: Provider, depth: int) -> None:
    nested = "[" * depth + "]" * depth
    raw = json.dumps(provision_body({"database": "app"}, POSTGRES)).replace(
        '"parameters": {', f'"deep": {nested}, "parameters": {{', 1
    )
    before = provider.stored()
    answer = provider.send(
        "PUT", f"/v2/service_instances/{uuid.uuid4()}?accepts_incomplete=true", raw=raw.encode()
    )
    too_big = len(raw) > MAX_REQUEST_BYTES
    assert answer.status_code == (413 if too_big else 400), answer.text
    assert answer.json()["error"] == ("MessageTooLarge" if too_big else "MalformedMessage")
    assert provider.stored() == before


def test_parameters_over_their_bound_are_refused(provider: Provider) -> None:
    before = provider.stored()
    answer = provider.provision({"database": "app", "allowed_networks": ["x" * 20_000]})
    assert answer.status_code == 400, answer.text
    assert "parameters is larger than 16384 bytes" in answer.json()["description"]
    assert provider.stored() == before


@pytest.mark.parametrize("instance_id", ["i" * 5000, "=1+2", "@SUM(A1)", "x\n", "-2+3"])
def test_an_instance_id_that_is_not_an_identifier_is_refused(
    provider: Provider, instance_id: str
) -> None:
    before = provider.stored()
    answer = provider.send(
        "PUT",
        f"/v2/service_instances/{instance_id.replace(chr(10), '%0A')}?accepts_incomplete=true",
        provision_body({"database": "app"}, POSTGRES),
    )
    assert answer.status_code == 400, answer.text
    assert answer.json()["error"] == "MalformedMessage"
    assert provider.stored() == before


def test_a_flood_of_requests_is_rate_limited(provider: Provider) -> None:
    provider.set(peer_requests_per_minute=5)
    answers = [provider.send("GET", "/v2/catalog") for _ in range(8)]
    assert [a.status_code for a in answers] == [200] * 5 + [429] * 3
    assert answers[-1].json()["error"] == "TooManyRequests"
    before = provider.stored()
    refused = provider.provision({"database": "app"})
    assert refused.status_code == 429 and refused.json()["error"] == "TooManyRequests"
    assert provider.stored() == before


def test_pending_requests_per_peer_are_capped(provider: Provider) -> None:
    provider.set(peer_max_pending=3)
    accepted = [provider.provision({"database": f"db{i}"}) for i in range(3)]
    assert [a.status_code for a in accepted] == [202] * 3
    before = provider.stored()
    refused = provider.provision({"database": "db9"})
    assert refused.status_code == 429, refused.text
    assert refused.json()["error"] == "TooManyPendingRequests"
    assert "3 requests awaiting consent" in refused.json()["description"]
    assert provider.stored() == before


def test_an_oversized_witness_note_is_refused_and_not_kept(provider: Provider) -> None:
    note = "a.test/audit\n1\n" + "A" * 43 + "=\n" + ("x" * 100 + "\n") * 200
    body = f"old 0\n\n{note}\n\u2014 a.test/audit AAAA\n".encode()
    assert MAX_WITNESS_BYTES < len(body) < MAX_REQUEST_BYTES
    before = provider.stored()
    answer = provider.send("POST", ADD_CHECKPOINT_PATH, raw=body)
    assert answer.status_code == 400, answer.text
    assert "at most" in answer.text
    assert provider.stored() == before
    with session_scope(provider.node.engine) as session:
        assert session.exec(select(WitnessConflict)).all() == []


def test_our_own_catalog_stays_within_the_bound_peers_enforce(
    provider: Provider, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Publishing past ``MAX_OFFERINGS`` is refused here, so peers never refuse our catalog."""
    monkeypatch.setattr(offerings, "MAX_OFFERINGS", 2)  # the provider publishes two
    node = provider.node
    with (
        session_scope(node.engine, write=True) as session,
        pytest.raises(Conflict, match="the most a catalog carries"),
    ):
        offerings.publish_offering(
            session=session,
            actor=ADMIN,
            plugins=node.client.app.state.plugins,  # type: ignore[attr-defined]
            organisation="coop",
            data={
                "module": "postgresql",
                "offering": "managed-postgresql",
                "offering_id": "third",
                "group": "db",
                "plans": [{"name": "small"}],
            },
        )
