"""A peer names the provider's secrets in its provision parameters.

A module without an ``offering_settings`` hook gets the requester's parameters merged
over the offering's settings, and a plan that declares no parameters is checked against
``{"type": "object"}``: a peer's ``{"password": {"$credential": "db-root"}}`` (or
``$env``/``$file``) would become a reference in the instance's definition, which the
provider's own run resolves and sends to the pool's hosts. Such parameters are refused
(400) before anything is stored, whatever the plan's schema allows.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.orm.attributes import flag_modified
from sqlmodel import select

from infracms.db import session_scope
from infracms.models.definition import Definition
from infracms.models.federation import PublishedOffering, ServiceInstance
from infracms.services.federation.broker_errors import BrokerBadRequest
from infracms.services.federation.provisioning import check_parameters
from tests.security._peers_support import POSTGRES, Provider, provider_node
from tests.security.test_peers_exports import _approve_all

pytestmark = pytest.mark.security

SMUGGLED = [
    {"password": {"$credential": "db-root"}},
    {"extra": {"$env": "INFRACMS_SECRET_KEY"}},
    {"nested": [{"deep": {"$file": "/var/lib/infracms/secrets/other-org"}}]},
]


@pytest.fixture
def provider(tmp_path: Path) -> Iterator[Provider]:
    with provider_node(tmp_path) as node:
        yield node


def _plan_declares_no_parameters(provider: Provider) -> None:
    """The published plan as a module that declares no parameters gets it."""
    with session_scope(provider.node.engine, write=True) as session:
        row = session.exec(
            select(PublishedOffering).where(PublishedOffering.offering_id == POSTGRES)
        ).one()
        row.plans = [{**plan, "parameters": {"type": "object"}} for plan in row.plans]
        flag_modified(row, "plans")
        session.add(row)
        session.commit()


@pytest.mark.parametrize("smuggled", SMUGGLED)
def test_a_peer_cannot_name_the_providers_secrets_in_parameters(
    provider: Provider, smuggled: dict[str, Any]
) -> None:
    _plan_declares_no_parameters(provider)
    before = provider.stored()
    answer = provider.provision({"database": "app", **smuggled})
    assert answer.status_code == 400, answer.text
    assert answer.json()["error"] == "BadRequest"
    assert "secret" in answer.json()["description"]
    assert provider.stored() == before


@pytest.mark.parametrize("smuggled", SMUGGLED)
def test_a_plan_without_a_schema_still_refuses_references(smuggled: dict[str, Any]) -> None:
    plan = {"id": "x.small", "parameters": {"type": "object"}}
    with pytest.raises(BrokerBadRequest, match=r"\$credential, \$env, \$file"):
        check_parameters(plan, smuggled)
    check_parameters(plan, {"password": "plain", "names": ["$credential"]})  # no reference


def test_a_request_stored_before_the_check_is_refused_at_approval(provider: Provider) -> None:
    """A pending request kept from before this check: approving it refuses the reference."""
    _plan_declares_no_parameters(provider)
    assert provider.provision({"database": "app"}).status_code == 202
    with session_scope(provider.node.engine, write=True) as session:
        row = session.exec(select(ServiceInstance)).one()
        row.parameters = {"database": "app", **SMUGGLED[0]}
        flag_modified(row, "parameters")
        session.add(row)
        session.commit()
    with pytest.raises(BrokerBadRequest, match=r"\$credential, \$env, \$file"):
        _approve_all(provider)
    with session_scope(provider.node.engine) as session:
        assert session.exec(select(Definition)).all() == []
