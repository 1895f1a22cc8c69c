"""A peer names its organisation ``=HYPERLINK(...)`` (or its instance ``=1+2``) so that
the provider's usage CSV, opened in a spreadsheet, runs a formula. Formula cells are
written as text (a leading apostrophe, OWASP "CSV injection"); formula-like instance
ids are not identifiers and are refused at the door."""

from __future__ import annotations

import csv
import io
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlmodel import select

from infracms.db import session_scope
from infracms.keys import load_keyring
from infracms.models.federation import ServiceInstance
from infracms.services.federation import provisioning, usage
from infracms.services.federation.usage import UsagePublic
from tests.security._peers_support import ADMIN, Provider, provider_node

pytestmark = pytest.mark.security
HYPERLINK = '=HYPERLINK("http://evil","x")'


@pytest.fixture
def provider(tmp_path: Path) -> Iterator[Provider]:
    with provider_node(tmp_path) as node:
        yield node


def _approve_all(provider: Provider) -> None:
    node = provider.node
    plugins = node.client.app.state.plugins  # type: ignore[attr-defined]
    keyring = load_keyring(node.settings)
    with session_scope(node.engine, write=True) as session:
        pending = [row.id for row in session.exec(select(ServiceInstance)).all()]
    for instance in pending:
        with session_scope(node.engine, write=True) as session:
            provisioning.approve(
                session=session,
                actor=ADMIN,
                plugins=plugins,
                organisation="coop",
                instance=instance,
                keyring=keyring,
            )
            break  # postgresql takes one definition a host: one instance on pool db


def _export(provider: Provider) -> list[dict[str, str]]:
    with session_scope(provider.node.engine) as session:
        text = usage.export(usage.usage_records(session=session, actor=ADMIN), "csv")
    return list(csv.DictReader(io.StringIO(text, newline="")))


def test_a_formula_organisation_is_written_as_text(provider: Provider) -> None:
    answer = provider.provision({"database": "app"}, organization_name=HYPERLINK)
    assert answer.status_code == 202, answer.text
    _approve_all(provider)
    [row] = _export(provider)
    assert row["organisation"] == "'" + HYPERLINK
    assert not any(cell.startswith(usage.FORMULA_STARTS) for cell in row.values())


@pytest.mark.parametrize("cell", ["=1+2", "+1", "-1+2", "@SUM(A1)", "\tx", "\rx", HYPERLINK])
def test_every_formula_start_is_neutralised(cell: str) -> None:
    record = UsagePublic(
        client=cell,
        organisation=cell,
        offering_id=cell,
        plan_id=cell,
        instance_id=cell,
        started_at="2026-01-01T00:00:00Z",  # type: ignore[arg-type]
        ended_at=None,
    )
    [row] = list(csv.reader(io.StringIO(usage.export([record], "csv"), newline="")))[1:]
    assert row[:5] == ["'" + cell] * 5


def test_plain_cells_are_unchanged(provider: Provider) -> None:
    assert provider.provision({"database": "app"}, organization_name="Coop Nord").status_code == 202
    _approve_all(provider)
    assert _export(provider)[0]["organisation"] == "Coop Nord"


def test_a_formula_instance_id_is_not_stored(provider: Provider) -> None:
    before = provider.stored()
    path = f"/v2/service_instances/=1+2?accepts_incomplete=true&x={uuid.uuid4()}"
    answer = provider.send("PUT", path, {"service_id": "x", "plan_id": "y"})
    assert answer.status_code == 400 and answer.json()["error"] == "MalformedMessage"
    assert provider.stored() == before
