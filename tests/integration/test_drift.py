"""Scheduled drift checks on a real host: applied, then changed behind infracms's back,
the scheduled check (the periodic job, called) finds the drift and shows it on the host
page and in the audit log; remediating from the page applies it back and clears it."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient

from infracms.app import create_app
from infracms.db import session_scope
from infracms.models.base import utcnow
from infracms.models.schedule import DriftState
from infracms.orchestration.jobs import JobContext
from infracms.orchestration.jobs.schedules import fire_due
from infracms.services import drift, schedules
from tests.helpers import ADMIN
from tests.integration.node import Node, assert_succeeded, make_node, on_host
from tests.support.hosts import TestHost
from tests.web.conftest import Site

pytestmark = [pytest.mark.integration, pytest.mark.slow]
SETTINGS = {"timezone": "Europe/Berlin", "unattended_upgrades": False}
TASK = "base-drifty: Name the time zone in /etc/timezone"


@dataclass
class Drifted:
    """The node, its host, and the scheduled plan that found the drift."""

    node: Node
    host: TestHost
    plan: uuid.UUID


@pytest.fixture(scope="module")
def drifted(
    tmp_path_factory: pytest.TempPathFactory, module_hosts: Callable[..., list[TestHost]]
) -> Drifted:
    node = make_node(tmp_path_factory.mktemp("drift") / "var")
    (host,) = module_hosts(1)
    node.add_credential("pool-key", host.key_path.read_text(), kind="ssh_key")
    node.add_host("drifty", host, credential="pool-key")
    node.define("base-drifty", "base", "drifty", SETTINGS)
    assert_succeeded(node, node.execute(node.create_run("apply")))
    on_host(host, "echo Etc/UTC > /etc/timezone")  # behind infracms's back
    with session_scope(node.engine, write=True) as session:
        schedules.create_schedule(
            session=session,
            actor=ADMIN,
            organisation=node.org,
            data={"name": "new-year", "cron": "0 3 1 1 *", "time_zone": "Europe/Paris"},
            now=datetime(2025, 12, 1, tzinfo=UTC),  # due since 2026-01-01: missed, fires once
        )
    context = JobContext(settings=node.settings, engine=node.engine)
    (plan,) = fire_due(context, now=utcnow(), submit=lambda run_id: _execute(node, run_id))
    return Drifted(node, host, plan)


def _execute(node: Node, run_id: uuid.UUID) -> None:
    node.execute(run_id)


@pytest.fixture(scope="module")
def browser(drifted: Drifted) -> Iterator[Site]:
    with TestClient(create_app(drifted.node.settings)) as client:
        site = Site(client)
        assert site.login().status_code == 303
        yield site


def state(node: Node) -> drift.HostDriftPublic:
    with session_scope(node.engine) as session:
        return drift.host_drift(session=session, actor=ADMIN, organisation=node.org, host="drifty")


def test_the_scheduled_check_finds_the_changed_file(drifted: Drifted) -> None:
    node = drifted.node
    plan = node.run(drifted.plan)
    assert_succeeded(node, plan)
    assert plan.kind == "plan" and plan.requested_by == "schedule new-year"
    found = state(node)
    assert found.state is DriftState.drifted, found
    assert found.definitions == ["base-drifty"] and TASK in found.tasks, found.tasks
    assert on_host(drifted.host, "cat /etc/timezone") == "Etc/UTC\n", "the check changed the host"
    (entry,) = node.audit("drift.found")
    assert entry.subject == f"host:{node.org}/drifty"
    assert found.digest and found.digest in entry.payload and "base-drifty" in entry.payload


def test_the_host_page_shows_it_and_remediating_clears_it(drifted: Drifted, browser: Site) -> None:
    node = drifted.node
    page = browser.get("/orgs/clinic/hosts/drifty").text
    assert "drifted" in page and TASK in page
    response = browser.post("/orgs/clinic/hosts/drifty/drift/remediate", {})
    assert response.status_code == 303, response.text
    run_id = uuid.UUID(response.headers["location"].rsplit("/", 1)[1])
    deadline = time.monotonic() + 600
    while not node.run(run_id).status.finished and time.monotonic() < deadline:
        time.sleep(0.5)
    assert_succeeded(node, node.run(run_id))
    assert on_host(drifted.host, "cat /etc/timezone") == "Europe/Berlin\n"
    assert state(node).state is DriftState.in_sync
    (cleared,) = node.audit("drift.cleared")
    assert str(run_id) in cleared.payload and "base-drifty" in cleared.payload
    assert "in sync" in browser.get("/orgs/clinic/hosts/drifty").text
    assert "standing=drifted" not in browser.get("/").text


def test_the_next_scheduled_check_finds_the_host_in_sync(drifted: Drifted) -> None:
    node = drifted.node
    context = JobContext(settings=node.settings, engine=node.engine)
    later = datetime(2027, 1, 1, 3, 1, tzinfo=UTC)
    (plan,) = fire_due(context, now=later, submit=lambda run_id: _execute(node, run_id))
    assert_succeeded(node, node.run(plan))
    found = state(node)
    assert found.state is DriftState.in_sync and found.run_id == plan
    assert len(node.audit("drift.found")) == 1
