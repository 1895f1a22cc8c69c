"""OSB helpers: the API version check, the originating identity header, the paths, and
what updates need: the catalog's plan_updateable and update schemas, the client's PATCH."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import federation
from federation.broker import (
    API_VERSION_HEADER,
    ORIGINATING_IDENTITY_HEADER,
    binding_path,
    check_api_version,
    instance_path,
    originating_identity,
    osb_catalog,
    parse_originating_identity,
    plan_updateable,
)
from federation.client import Peer, PeerClient
from federation.encoding import canonical_json
from federation.errors import MalformedMessage, UnsupportedVersion
from federation.messages import HttpRequest, HttpResponse
from federation.models import Offering, UpdateRequest, load
from tests.federation.helpers import A_KEY, B_KEY, NOW, FakeNode, make_catalog


@pytest.mark.parametrize(
    ("value", "want"), [("2.17", (2, 17)), ("2.13", (2, 13)), (" 2.20 ", (2, 20))]
)
def test_supported_api_versions(value: str, want: tuple[int, int]) -> None:
    assert check_api_version(value) == want


@pytest.mark.parametrize("value", [None, "", "2", "2.12", "3.0", "1.99", "two.17", "2.x"])
def test_unsupported_api_versions_are_refused(value: str | None) -> None:
    with pytest.raises(UnsupportedVersion, match="X-Broker-API-Version"):
        check_api_version(value)


def test_originating_identity_round_trip() -> None:
    header = originating_identity("infracms", {"user": "alice", "organization": "org-1"})
    assert header.startswith("infracms ")
    assert parse_originating_identity(header) == (
        "infracms",
        {"user": "alice", "organization": "org-1"},
    )


@pytest.mark.parametrize("header", ["infracms", "infracms !!!", "infracms WzFd", " e30="])
def test_malformed_originating_identity_is_refused(header: str) -> None:
    with pytest.raises(MalformedMessage):
        parse_originating_identity(header)


def test_paths_quote_ids() -> None:
    assert instance_path("3f6c") == "/v2/service_instances/3f6c"
    assert binding_path("a/b", "c d") == "/v2/service_instances/a%2Fb/service_bindings/c%20d"


# --- updates: the catalog mapping, the schema, the client call, the documented example ----


def _updateable(offering: Offering, *plans: str) -> Offering:
    return offering.model_copy(
        update={
            "plans": tuple(
                p.model_copy(update={"plan_updateable": True}) if p.id in plans else p
                for p in offering.plans
            )
        }
    )


def test_osb_catalog_says_which_plans_may_change_and_the_update_schema() -> None:
    catalog = make_catalog(offerings=2)
    catalog = catalog.model_copy(
        update={"offerings": (_updateable(catalog.offerings[0], "o0-small"), catalog.offerings[1])}
    )
    services = osb_catalog(catalog).to_json_value()["services"]
    assert [s["plan_updateable"] for s in services] == [True, False]
    small, large = services[0]["plans"]
    assert small["plan_updateable"] is True and "plan_updateable" not in large
    schemas = small["schemas"]["service_instance"]
    assert schemas["create"]["parameters"]["required"] == ["size_gb"]
    assert "required" not in schemas["update"]["parameters"]
    assert (
        schemas["update"]["parameters"]["properties"]
        == schemas["create"]["parameters"]["properties"]
    )


def test_plan_updateable_is_the_current_plans_word() -> None:
    offering = _updateable(make_catalog().offerings[0], "o0-small")
    assert plan_updateable(offering, "o0-small")
    assert not plan_updateable(offering, "o0-large")
    assert not plan_updateable(offering, "nope")
    alone = offering.model_copy(update={"plans": offering.plans[:1]})
    assert not plan_updateable(alone, "o0-small")  # nowhere to move to


def test_catalog_plans_carry_plan_updateable_only_when_true() -> None:
    plain = make_catalog().offerings[0].plans[0]
    assert "plan_updateable" not in plain.to_json_value()
    assert plain.model_copy(update={"plan_updateable": True}).to_json_value()["plan_updateable"]


def test_update_instance_sends_a_signed_patch_and_reads_the_operation() -> None:
    node = FakeNode("a.example", A_KEY, peers=[B_KEY.trusted("b.example")])

    @node.route("PATCH", instance_path("inst-1"))
    def _update(request: HttpRequest) -> HttpResponse:
        return HttpResponse.build(
            202, [("Content-Type", "application/json")], b'{"operation":"update-1"}'
        )

    client = PeerClient(
        peer=Peer(node.name, node.base_url, node.keys),
        key=B_KEY,
        transport=node.transport(),
        clock=lambda: NOW,
    )
    identity = originating_identity("infracms", {"user": "bob"})
    with client:
        answer = client.update_instance(
            "inst-1",
            UpdateRequest(service_id="o0", parameters={"size_gb": 20}),
            originating_identity=identity,
        )
    assert answer.pending and answer.body.operation == "update-1"
    [sent] = node.seen
    assert sent.method == "PATCH" and sent.url.endswith("/inst-1?accepts_incomplete=true")
    assert sent.header(ORIGINATING_IDENTITY_HEADER) == identity
    assert sent.header(API_VERSION_HEADER) == "2.17"
    assert json.loads(sent.body) == {"parameters": {"size_gb": 20}, "service_id": "o0"}


def test_the_documented_update_body_is_an_update_request_in_canonical_form() -> None:
    protocol = (Path(federation.__file__).parent / "PROTOCOL.md").read_text()
    section = protocol.split("### 6.5 Updates and deprovisioning", 1)[1]
    body = section.split("```json\n", 1)[1].split("\n```", 1)[0]
    request = load(UpdateRequest, body.encode(), "documented update")
    assert request.plan_id and request.parameters and request.previous_values
    assert canonical_json(request.to_json_value()).decode() == body
