"""My services (the consumer side): requested services with their status, refreshed from
the provider; connection details only for owners and operators, only on an explicit
"Show" (never in a list, never cached); deprovisioning after a confirmation."""

from __future__ import annotations

import html
import re
import uuid

import pytest
from fastapi import FastAPI
from sqlalchemy import Engine
from sqlmodel import select

from infracms.config import Settings
from infracms.db import session_scope
from infracms.keys import load_keyring
from infracms.models import Role
from infracms.models.federation import ConsumerService, InstanceStatus, ServiceInstance
from infracms.plugins import Plugins
from infracms.services.federation import consumer
from tests.helpers import ADMIN
from tests.web.conftest import Site
from tests.web.federation.conftest import PROVIDER, Node, finish, offer
from tests.web.test_people_pages import signed_in

DATABASE = "coop-managed-postgresql"
SERVICES = "/orgs/clinic/services"


def password_of(app: FastAPI, engine: Engine, service: uuid.UUID) -> str:
    """The password the provider handed over, read through the service."""
    with session_scope(engine) as session:
        found = consumer.service_credentials(
            session=session,
            actor=ADMIN,
            keyring=load_keyring(app.state.settings),
            organisation="clinic",
            service=service,
        )
    password: str = found["password"]
    return password


@pytest.fixture
def requested(admin: Site, peered: Node, plugins: Plugins) -> uuid.UUID:
    """clinic's request for a database at a.test, through the catalog's form."""
    offer(peered, plugins, "postgresql", "managed-postgresql", "dbpool")
    admin.post("/peers/sync", {})
    url = f"/catalog/{PROVIDER}/{DATABASE}/{DATABASE}.small"
    response = admin.post(url, {"organisation": "clinic", "parameters.database": "blog"})
    assert response.status_code == 303, response.text
    found = re.search(r"/services/([0-9a-f-]{36})", response.headers["location"])
    assert found
    return uuid.UUID(found.group(1))


@pytest.fixture
def ready(admin: Site, peered: Node, requested: uuid.UUID) -> uuid.UUID:
    """The database approved at a.test, its run succeeded, and b.test told (bound)."""
    (instance,) = [row for row in _instances(peered) if row.instance_id == str(requested)]
    assert peered.admin.post(f"/orgs/coop/requests/{instance.id}/approve", {}).status_code == 303
    finish(peered, peered.executor.submitted[-1])
    response = admin.post(f"{SERVICES}/{requested}/refresh", {})
    assert response.headers["location"] == f"{SERVICES}/{requested}?notice=service-refreshed"
    return requested


def _instances(node: Node) -> list[ServiceInstance]:
    with session_scope(node.engine) as session:
        return list(session.exec(select(ServiceInstance)).all())


def test_a_requested_service_is_listed_and_followed(
    admin: Site, peered: Node, requested: uuid.UUID
) -> None:
    listed = admin.get(SERVICES).text
    assert f'id="service-{requested}"' in listed and PROVIDER in listed
    assert "Managed PostgreSQL database" in listed and "Small: 5 GB" in listed
    assert 'pill-running">in progress' in listed
    page = admin.get(f"{SERVICES}/{requested}").text
    assert "database" in page and "blog" in page
    assert "None yet: a.test hands them over once the service is provisioned" in page
    assert admin.post(f"{SERVICES}/{requested}/refresh", {}).status_code == 303
    page = html.unescape(admin.get(f"{SERVICES}/{requested}").text)
    assert "Awaiting approval by a.test." in page, page


def test_connection_details_are_shown_only_on_asking(
    app: FastAPI, admin: Site, engine: Engine, ready: uuid.UUID
) -> None:
    password = password_of(app, engine, ready)
    page = admin.get(f"{SERVICES}/{ready}").text
    assert 'pill-ok">ready' in page and "Show connection details" in page
    assert password not in page
    assert password not in admin.get(SERVICES).text
    shown = admin.post(f"{SERVICES}/{ready}/credentials", {})
    assert shown.status_code == 200
    assert shown.headers["cache-control"] == "no-store"
    assert f'value="{password}"' in shown.text and "Shown on this page only" in shown.text
    assert 'data-copy="credential-' in shown.text
    assert password not in admin.get(f"{SERVICES}/{ready}").text
    assert admin.post(f"{SERVICES}/{ready}/credentials", {}, csrf="").status_code == 403


@pytest.mark.parametrize("role", [Role.viewer, Role.editor])
def test_other_roles_never_see_connection_details(
    app: FastAPI,
    other_site: Site,
    engine: Engine,
    settings: Settings,
    ready: uuid.UUID,
    role: Role,
) -> None:
    reader = signed_in(other_site, engine, settings, "rita", clinic=role)
    page = reader.get(f"{SERVICES}/{ready}").text
    assert "Owners and operators of clinic read them." in page
    assert f"{ready}/credentials" not in page and "Deprovision" not in page
    refused = reader.post(f"{SERVICES}/{ready}/credentials", {})
    assert refused.status_code == 403
    assert password_of(app, engine, ready) not in refused.text
    assert reader.post(f"{SERVICES}/{ready}/deprovision", {}).status_code == 403


def test_an_operator_reads_connection_details(
    app: FastAPI, other_site: Site, engine: Engine, settings: Settings, ready: uuid.UUID
) -> None:
    operator = signed_in(other_site, engine, settings, "otto", clinic=Role.operator)
    shown = operator.post(f"{SERVICES}/{ready}/credentials", {})
    assert password_of(app, engine, ready) in shown.text


def test_deprovisioning_asks_first_and_ends_the_service(
    admin: Site, engine: Engine, peered: Node, ready: uuid.UUID
) -> None:
    url = f"{SERVICES}/{ready}/deprovision"
    confirm = admin.get(url).text
    assert f'action="{url}"' in confirm and "This cannot be undone" in confirm
    response = admin.post(url, {})
    assert response.headers["location"] == f"{SERVICES}/{ready}?notice=service-deprovisioning"
    page = admin.get(response.headers["location"]).text
    assert "Deprovisioning asked" in page and "Show connection details" not in page
    with session_scope(engine) as session:
        row = session.get(ConsumerService, ready)
        assert row is not None and row.sealed is None
    statuses = {row.status for row in _instances(peered)}
    assert statuses <= {InstanceStatus.deprovisioning, InstanceStatus.ended}
    assert admin.post(url, {}).status_code == 409


def test_a_provider_that_is_down_is_reported(
    admin: Site, peered: Node, requested: uuid.UUID
) -> None:
    peered.network.clients.pop(PROVIDER)
    assert admin.post(f"{SERVICES}/{requested}/refresh", {}).status_code == 303
    page = html.unescape(admin.get(f"{SERVICES}/{requested}").text)
    assert "PeerUnreachable" in page
