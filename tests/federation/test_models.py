"""Every wire model round-trips through JSON, and bad documents raise typed errors."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from federation.broker import osb_catalog
from federation.encoding import canonical_json, parse_json
from federation.errors import MalformedMessage, UnsupportedVersion
from federation.keys import key_id_of
from federation.models import (
    BindRequest,
    BindResponse,
    Catalog,
    DeprovisionResponse,
    DetachedSignature,
    InfracmsContext,
    Invitation,
    KeyRotation,
    LastOperationResponse,
    LastOperationState,
    NodeIdentity,
    OSBCatalog,
    OSBError,
    OSBErrorCode,
    PeeringAcceptance,
    PeeringRequest,
    ProvisionRequest,
    ProvisionResponse,
    ServiceInstance,
    UpdateRequest,
    UpdateResponse,
    WireModel,
    load,
)
from tests.federation.helpers import A_KEY, B_KEY, NOW, identity, make_catalog

A = identity("a.example", A_KEY)
B = identity("b.example", B_KEY)

MODELS: list[WireModel] = [
    A,
    Invitation(
        id="inv-1",
        inviter="a.example",
        url="https://a.example",
        fingerprint=A_KEY.key_id,
        expires_at=NOW,
    ),
    PeeringRequest(invitation="inv1.x.y", node=B),
    PeeringAcceptance(node=A, peer="b.example", accepted_at=NOW),
    KeyRotation(
        node="a.example",
        old_key_id=A_KEY.key_id,
        new_public_key=B_KEY.public_key_b64,
        new_key_id=B_KEY.key_id,
        issued_at=NOW,
        old_key_valid_until=NOW + timedelta(days=7),
    ),
    DetachedSignature(keyid=A_KEY.key_id, sig="A" * 85 + "w"),
    make_catalog(),
    osb_catalog(make_catalog()),
    ProvisionRequest(
        service_id="o0",
        plan_id="o0-small",
        context=InfracmsContext(node="b.example", organization="org-1").to_json_value(),
        parameters={"size_gb": 20},
    ),
    ProvisionResponse(operation="op-1"),
    UpdateRequest(service_id="o0", plan_id="o0-large", previous_values={"plan_id": "o0-small"}),
    UpdateResponse(operation="op-2"),
    LastOperationResponse(state=LastOperationState.IN_PROGRESS, description="awaiting approval"),
    ServiceInstance(service_id="o0", plan_id="o0-small", parameters={"size_gb": 20}),
    BindRequest(service_id="o0", plan_id="o0-small"),
    BindResponse(credentials={"uri": "postgres://u:p@h/db"}),
    DeprovisionResponse(operation="op-3"),
    OSBError(error=OSBErrorCode.ASYNC_REQUIRED, description="needs accepts_incomplete"),
    InfracmsContext(node="b.example", organization="org-1", requested_by="alice"),
]


@pytest.mark.parametrize("model", MODELS, ids=lambda m: type(m).__name__)
def test_model_round_trips_through_canonical_json(model: WireModel) -> None:
    raw = canonical_json(model.to_json_value())
    again = load(type(model), raw, type(model).__name__)
    assert again == model
    assert canonical_json(again.to_json_value()) == raw


def test_times_are_written_in_utc_to_the_second() -> None:
    moment = datetime(2026, 3, 1, 13, 0, 0, 999_000, tzinfo=timezone(timedelta(hours=1)))
    acceptance = PeeringAcceptance(node=A, peer="b.example", accepted_at=moment)
    assert acceptance.to_json_value()["accepted_at"] == "2026-03-01T12:00:00Z"


def test_naive_times_are_refused() -> None:
    with pytest.raises(MalformedMessage, match="accepted_at"):
        load(
            PeeringAcceptance,
            {"node": A.to_json_value(), "peer": "b.example", "accepted_at": "2026-03-01T12:00:00"},
            "x",
        )


def test_absent_optional_members_are_omitted_not_null() -> None:
    assert LastOperationResponse(state=LastOperationState.SUCCEEDED).to_json_value() == {
        "state": "succeeded"
    }


def test_unknown_members_are_ignored_for_minor_additions() -> None:
    value = A.to_json_value() | {"contact": "ops@a.example"}
    assert load(NodeIdentity, value, "identity") == A


def test_another_major_version_is_refused_as_unsupported() -> None:
    with pytest.raises(UnsupportedVersion, match=r"infracms\.node\.v2"):
        load(NodeIdentity, A.to_json_value() | {"format": "infracms.node.v2"}, "identity")


def test_another_kind_of_document_is_malformed() -> None:
    with pytest.raises(MalformedMessage, match="format"):
        load(NodeIdentity, make_catalog().to_json_value(), "identity")


def test_identity_with_a_key_id_of_another_key_is_refused() -> None:
    with pytest.raises(MalformedMessage, match="key_id"):
        load(NodeIdentity, A.to_json_value() | {"key_id": B_KEY.key_id}, "identity")


@pytest.mark.parametrize(
    "change",
    [
        {"name": "A.example"},
        {"name": "a example"},
        {"base_url": "https://a.example/"},
        {"base_url": "ftp://a.example"},
        {"base_url": "https://u:p@a.example"},
        {"base_url": "https://a.example?x=1"},
        {"public_key": "AAAA"},
    ],
)
def test_identity_fields_are_checked(change: dict[str, str]) -> None:
    with pytest.raises(MalformedMessage):
        load(NodeIdentity, A.to_json_value() | change, "identity")


def test_key_rotation_must_rotate_to_another_key_within_the_overlap() -> None:
    value = MODELS[4].to_json_value()
    with pytest.raises(MalformedMessage, match="old key"):
        load(
            KeyRotation,
            value | {"new_public_key": A_KEY.public_key_b64, "new_key_id": A_KEY.key_id},
            "r",
        )
    with pytest.raises(MalformedMessage, match="overlap"):
        load(KeyRotation, value | {"old_key_valid_until": "2026-05-01T00:00:00Z"}, "r")
    with pytest.raises(MalformedMessage, match="new_key_id"):
        load(KeyRotation, value | {"new_key_id": key_id_of(bytes(32))}, "r")


def test_catalog_refuses_repeated_ids_and_bad_prices() -> None:
    value = make_catalog().to_json_value()
    value["offerings"][1]["id"] = "o0"
    with pytest.raises(MalformedMessage, match="repeated"):
        load(Catalog, value, "catalog")
    value = make_catalog().to_json_value()
    value["offerings"][0]["plans"][1]["price"]["amount"] = 12.5
    with pytest.raises(MalformedMessage, match="amount"):
        load(Catalog, value, "catalog")


def test_catalog_finds_plans() -> None:
    catalog = make_catalog()
    found = catalog.find_plan("o1-large")
    assert found is not None and found[0].id == "o1" and found[1].price is not None
    assert catalog.find_plan("nope") is None


def test_json_that_is_not_json_is_malformed() -> None:
    with pytest.raises(MalformedMessage, match="not valid JSON"):
        load(NodeIdentity, b"{", "identity")
    with pytest.raises(MalformedMessage, match="NaN"):
        parse_json(b'{"x": NaN}', "document")


def test_bind_response_keeps_credentials_out_of_its_repr() -> None:
    assert "postgres" not in repr(BindResponse(credentials={"uri": "postgres://u:p@h/db"}))


def test_osb_catalog_maps_offerings_to_services() -> None:
    osb = load(OSBCatalog, canonical_json(osb_catalog(make_catalog()).to_json_value()), "osb")
    service = osb.services[0]
    small, large = service.plans
    assert (service.id, service.name, service.bindable) == ("o0", "o0", True)
    assert service.metadata == {
        "displayName": "Offering 0",
        "kind": "storage",
        "provider": "a.example",
    }
    assert small.free and not large.free
    assert large.metadata is not None and large.metadata["costs"] == [
        {"amount": {"eur": 12.5}, "unit": "Monthly"}
    ]
    assert large.schemas is not None and large.schemas.service_instance is not None
    assert large.schemas.service_instance.create is not None
    assert large.schemas.service_instance.create.parameters["required"] == ["size_gb"]
