"""The service broker at /v2 as the OSB spec (v2.17) and the public osb-checker want it.

A provider node served in-process (``tests/security/_peers_support``), called by an OSB
platform with a credential and by a peer that signs its requests. Each refusal is a 4xx
with the OSB error body that changed nothing: no instance, no audit entry, no run. An
answer to a verified peer request is signed, refusals included (PROTOCOL.md 4.6).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from sqlmodel import func, select

from federation.encoding import canonical_json, utc_now
from federation.httpsig import new_nonce, sign_request, verify_response
from federation.keys import StaticKeyResolver
from federation.messages import HttpRequest, HttpResponse
from federation.models.osb import ProvisionRequest, UpdateRequest
from infracms.db import session_scope
from infracms.keys import load_keyring
from infracms.models.federation import InstanceStatus, ServiceInstance
from infracms.models.run import Run, RunStatus
from infracms.services import runs
from infracms.services.federation import broker_clients, provisioning
from tests.security._peers_support import (
    ADMIN,
    BACKUP,
    PEER_KEY,
    POSTGRES,
    Provider,
    backup_parameters,
    provider_node,
)

GUIDS = {"organization_guid": "org-guid-1", "space_guid": "space-guid-1"}
PARAMETERS = {"database": "app"}


class Platform:
    """An OSB platform with a credential for the provider's /v2."""

    def __init__(self, provider: Provider, token: str) -> None:
        self.provider, self.token = provider, token

    def call(self, method: str, path: str, body: Any = None, **headers: str) -> httpx.Response:
        sent = {"X-Broker-API-Version": "2.17", "Authorization": f"Bearer {self.token}"}
        return self.provider.node.client.request(
            method, path, json=body, headers={**sent, **headers}
        )

    def provision(self, body: dict[str, Any]) -> tuple[str, httpx.Response]:
        instance_id = str(uuid.uuid4())
        path = f"/v2/service_instances/{instance_id}?accepts_incomplete=true"
        return instance_id, self.call("PUT", path, body)


@pytest.fixture(scope="module")
def provider(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Provider]:
    """One provider for the module: each test makes its own instances."""
    with provider_node(tmp_path_factory.mktemp("broker")) as found:
        yield found


@pytest.fixture(scope="module")
def platform(provider: Provider) -> Platform:
    with session_scope(provider.node.engine, write=True) as session:
        issued = broker_clients.issue(session=session, actor=ADMIN, name="checker")
    return Platform(provider, issued.token)


def body() -> dict[str, Any]:
    """A platform's provision request for the managed PostgreSQL plan `small`."""
    return {"service_id": POSTGRES, "plan_id": f"{POSTGRES}.small", "parameters": PARAMETERS}


def stored(provider: Provider) -> tuple[int, int, int]:
    """(instances, audit entries, runs): what a refusal leaves as it was."""
    with session_scope(provider.node.engine) as session:
        count = int(session.exec(select(func.count()).select_from(Run)).one())
    return (*provider.stored(), count)


def assert_osb_error(answer: httpx.Response, status: int, error: str | None = None) -> None:
    assert answer.status_code == status, answer.text
    found = answer.json()
    assert set(found) == {"error", "description"} and found["description"], found
    if error is not None:
        assert found["error"] == error, found


@pytest.mark.parametrize(
    "guids",
    [
        {},
        {"space_guid": "space-guid-1"},
        {"organization_guid": "org-guid-1"},
        {**GUIDS, "organization_guid": ""},
        {**GUIDS, "space_guid": ""},
    ],
)
def test_a_provision_without_both_guids_is_400(
    provider: Provider, platform: Platform, guids: dict[str, str]
) -> None:
    before = stored(provider)
    _, answer = platform.provision({**body(), **guids})
    assert_osb_error(answer, 400)
    assert stored(provider) == before


def test_an_empty_maintenance_info_is_no_maintenance_info(
    provider: Provider, platform: Platform
) -> None:
    _, answer = platform.provision({**body(), **GUIDS, "maintenance_info": {}})
    assert answer.status_code == 202, answer.text
    assert answer.json()["operation"]
    assert (
        ProvisionRequest.model_validate({**body(), "maintenance_info": {}}).maintenance_info is None
    )
    update = UpdateRequest.model_validate({"service_id": POSTGRES, "maintenance_info": {}})
    assert update.maintenance_info is None


BACKUP_BODY = {
    "service_id": BACKUP,
    "plan_id": f"{BACKUP}.small",
    "parameters": backup_parameters("b1"),
    **GUIDS,
}


@pytest.fixture(scope="module")
def approved(provider: Provider, platform: Platform) -> str:
    """An offsite backup the provider approved and applied (its run stood in for): one
    for the module, since its pool holds one, and every refusal leaves it as it was."""
    instance_id, answer = platform.provision(BACKUP_BODY)
    assert answer.status_code == 202, answer.text
    app = provider.node.client.app
    with session_scope(provider.node.engine, write=True) as session:
        row = session.exec(
            select(ServiceInstance).where(ServiceInstance.instance_id == instance_id)
        ).one()
        done = provisioning.approve(
            session=session,
            actor=ADMIN,
            plugins=app.state.plugins,  # type: ignore[attr-defined]
            organisation="coop",
            instance=row.id,
            keyring=load_keyring(provider.node.settings),
        )
        assert done.run_id is not None
        runs.finish_run(
            session,
            run_id=done.run_id,
            status=RunStatus.succeeded,
            rc=0,
            recap={},
            stdout_sha256=None,
        )
    return instance_id


def test_the_same_provision_again_is_202_while_pending_and_200_once_provisioned(
    provider: Provider, platform: Platform, approved: str
) -> None:
    instance_id, first = platform.provision({**body(), **GUIDS})
    path = f"/v2/service_instances/{instance_id}?accepts_incomplete=true"
    again = platform.call("PUT", path, {**body(), **GUIDS})
    assert (again.status_code, again.json()) == (202, first.json())
    path = f"/v2/service_instances/{approved}?accepts_incomplete=true"
    done = platform.call("PUT", path, BACKUP_BODY)
    assert (done.status_code, done.json()) == (200, {})


def status_of(provider: Provider, instance_id: str) -> InstanceStatus:
    with session_scope(provider.node.engine) as session:
        row = session.exec(
            select(ServiceInstance).where(ServiceInstance.instance_id == instance_id)
        ).one()
        return row.status


@pytest.mark.parametrize(
    "query",
    [
        f"plan_id={BACKUP}.small&accepts_incomplete=true",
        f"service_id={BACKUP}&accepts_incomplete=true",
        f"service_id=&plan_id={BACKUP}.small&accepts_incomplete=true",
        f"service_id={BACKUP}&plan_id=&accepts_incomplete=true",
        f"service_id={POSTGRES}&plan_id={BACKUP}.small&accepts_incomplete=true",
        f"service_id={BACKUP}&plan_id=xxxx-xxxx&accepts_incomplete=true",
    ],
)
def test_a_deprovision_without_its_ids_is_400_and_starts_nothing(
    provider: Provider, platform: Platform, approved: str, query: str
) -> None:
    before = stored(provider)
    answer = platform.call("DELETE", f"/v2/service_instances/{approved}?{query}")
    assert_osb_error(answer, 400)
    assert stored(provider) == before
    assert status_of(provider, approved) is InstanceStatus.provisioning


@pytest.mark.parametrize("flag", ["", "&accepts_incomplete=false"])
def test_a_deprovision_that_takes_a_run_needs_accepts_incomplete(
    provider: Provider, platform: Platform, approved: str, flag: str
) -> None:
    before = stored(provider)
    query = f"service_id={BACKUP}&plan_id={BACKUP}.small{flag}"
    answer = platform.call("DELETE", f"/v2/service_instances/{approved}?{query}")
    assert_osb_error(answer, 422, "AsyncRequired")
    assert stored(provider) == before
    assert status_of(provider, approved) is InstanceStatus.provisioning


def test_a_deprovision_with_nothing_to_remove_is_synchronous_but_needs_the_flag_too(
    provider: Provider, platform: Platform
) -> None:
    """Like provisions and updates, every deprovision needs accepts_incomplete (the
    osb-checker expects 422 without it); one with nothing to remove then answers 200."""
    instance_id, _ = platform.provision({**body(), **GUIDS})
    path = f"/v2/service_instances/{instance_id}?service_id={POSTGRES}&plan_id={POSTGRES}.small"
    assert_osb_error(platform.call("DELETE", path), 422, "AsyncRequired")
    assert status_of(provider, instance_id) is InstanceStatus.pending
    answer = platform.call("DELETE", path + "&accepts_incomplete=true")
    assert (answer.status_code, answer.json()) == (200, {})
    assert status_of(provider, instance_id) is InstanceStatus.ended


@pytest.mark.parametrize(
    "ids",
    [
        {"plan_id": f"{POSTGRES}.small"},
        {"service_id": POSTGRES},
        {"service_id": "", "plan_id": f"{POSTGRES}.small"},
        {"service_id": POSTGRES, "plan_id": ""},
        {"service_id": "xxxx-xxxx", "plan_id": f"{POSTGRES}.small"},
        {"service_id": POSTGRES, "plan_id": "xxxx-xxxx"},
    ],
)
def test_a_bind_naming_no_or_another_service_or_plan_is_400_before_its_state(
    provider: Provider, platform: Platform, ids: dict[str, str]
) -> None:
    """The instance awaits approval (a valid bind would be 422): the ids are checked first."""
    instance_id, _ = platform.provision({**body(), **GUIDS})
    before = stored(provider)
    path = f"/v2/service_instances/{instance_id}/service_bindings/{uuid.uuid4()}"
    assert_osb_error(platform.call("PUT", path, ids), 400)
    assert stored(provider) == before
    valid = {"service_id": POSTGRES, "plan_id": f"{POSTGRES}.small"}
    assert_osb_error(platform.call("PUT", path, valid), 422, "ConcurrencyError")


@pytest.mark.parametrize("query", ["", f"?service_id={POSTGRES}", f"?plan_id={POSTGRES}.small"])
def test_an_unbind_without_its_ids_is_400(
    provider: Provider, platform: Platform, query: str
) -> None:
    path = f"/v2/service_instances/{uuid.uuid4()}/service_bindings/{uuid.uuid4()}{query}"
    assert_osb_error(platform.call("DELETE", path), 400)


def signed_call(
    provider: Provider, method: str, path: str, body: Any = None, version: str = "2.17"
) -> tuple[HttpRequest, httpx.Response]:
    """A request signed by the peer, and the provider's answer."""
    content = canonical_json(body) if body is not None else b""
    headers = [("X-Broker-API-Version", version)] if version else []
    if content:
        headers.append(("Content-Type", "application/json"))
    request = sign_request(
        HttpRequest.build(method, f"https://{provider.node.name}{path}", headers, content),
        key=PEER_KEY,
        created=utc_now(),
        nonce=new_nonce(),
    ).request
    answer = provider.node.client.request(
        method, path, headers=list(request.headers), content=request.body
    )
    return request, answer


def verify_signed(provider: Provider, request: HttpRequest, answer: httpx.Response) -> None:
    keys = StaticKeyResolver([provider.node.key.trusted(provider.node.name)])
    response = HttpResponse.build(answer.status_code, answer.headers.multi_items(), answer.content)
    verified = verify_response(response, request=request, keys=keys, now=utc_now())
    assert verified.peer == provider.node.name


def peer_body(**fields: Any) -> dict[str, Any]:
    context = {"platform": "infracms", "node": "b.test", "organization": "client"}
    return {**body(), "context": context, **fields}


@pytest.mark.parametrize(
    ("method", "path", "sent", "version", "status"),
    [
        ("PUT", "?accepts_incomplete=true", peer_body(organization_guid=""), "2.17", 400),
        ("PUT", "", peer_body(), "2.17", 422),
        ("PUT", "?accepts_incomplete=true", peer_body(), "1.0", 412),
        ("DELETE", "?accepts_incomplete=true", None, "2.17", 400),
        ("DELETE", f"?service_id={POSTGRES}&plan_id=p", None, "2.17", 410),
        ("GET", "/last_operation", None, "2.17", 404),
    ],
)
def test_refusals_of_verified_peer_requests_are_signed(
    provider: Provider, method: str, path: str, sent: Any, version: str, status: int
) -> None:
    before = stored(provider)
    request, answer = signed_call(
        provider, method, f"/v2/service_instances/{uuid.uuid4()}{path}", sent, version
    )
    assert_osb_error(answer, status)
    verify_signed(provider, request, answer)
    assert stored(provider) == before


def test_a_request_that_does_not_verify_gets_an_unsigned_401(provider: Provider) -> None:
    """Signed, a refusal of an unverified request could be passed off as the answer to the
    genuine request whose signature it reused (api/peer.PeerRoute)."""
    request, first = signed_call(provider, "GET", "/v2/catalog")
    assert first.status_code == 200
    again = provider.node.client.get("/v2/catalog", headers=list(request.headers))
    assert_osb_error(again, 401, "NonceReused")
    assert "signature" not in again.headers
