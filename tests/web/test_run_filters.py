"""Runs lists narrowed by status, kind, host, definition and who asked: the service on
both databases, the API's query string, and the page's filter form."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Engine

from infracms.db import session_scope
from infracms.models import Organisation, Run, RunKind, RunStatus
from infracms.models.run import RunFilter
from infracms.plugins import Plugins
from infracms.services import runs
from tests.helpers import ADMIN
from tests.web.conftest import RecordingExecutor, Site
from tests.web.test_dashboard import finished_run, make_clinic

FAILED = RunStatus.failed
RUNS = [  # (kind, status, hosts, definitions, asked by)
    (RunKind.plan, RunStatus.succeeded, ["web-1"], ["basics"], "olga"),
    (RunKind.apply, RunStatus.failed, ["web-1", "web-2"], ["basics", "motd"], "olga"),
    (RunKind.apply, RunStatus.timed_out, ["db-1"], ["motd"], "ivan"),
    (RunKind.apply, RunStatus.running, ["web-2"], ["basics"], "ivan"),
]


@pytest.fixture
def plugins() -> Plugins:
    """The built-in modules only."""
    return Plugins.load(entry_points=False)


@pytest.fixture
def clinic(admin: Site, engine: Engine, plugins: Plugins, executor: RecordingExecutor) -> str:
    return make_clinic(admin, engine, plugins)


@pytest.fixture
def stored(any_engine: Engine) -> Iterator[Engine]:
    """The runs above in an organisation, stored as the executors leave them."""
    with session_scope(any_engine, write=True) as session:
        org = Organisation(name="clinic")
        session.add(org)
        session.flush()
        for kind, status, hosts, names, who in RUNS:
            definitions = [{"name": n, "module": "base", "revision": 1} for n in names]
            session.add(
                Run(
                    organisation_id=org.id,
                    kind=kind,
                    status=status,
                    hosts=hosts,
                    definitions=definitions,
                    requested_by=who,
                )
            )
        session.commit()
    yield any_engine


def listed(engine: Engine, **filters: str) -> list[tuple[str, str]]:
    with session_scope(engine) as session:
        found = runs.list_runs(
            session=session, actor=ADMIN, organisation="clinic", filters=RunFilter(**filters)
        )
    return sorted((run.status.value, ",".join(run.hosts)) for run in found.items)


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        ({"status": "failed"}, [("failed", "web-1,web-2"), ("timed_out", "db-1")]),
        ({"status": "active"}, [("running", "web-2")]),
        ({"status": "timed_out"}, [("timed_out", "db-1")]),
        ({"kind": "plan"}, [("succeeded", "web-1")]),
        ({"host": "web-2"}, [("failed", "web-1,web-2"), ("running", "web-2")]),
        ({"host": "web"}, []),  # a host is named whole, not by a prefix
        ({"definition": "motd"}, [("failed", "web-1,web-2"), ("timed_out", "db-1")]),
        ({"requested_by": "ivan", "host": "db-1"}, [("timed_out", "db-1")]),
        ({"definition": "motd", "kind": "plan"}, []),
    ],
)
def test_each_filter_narrows_the_list_on_both_databases(
    stored: Engine, filters: dict[str, str], expected: list[tuple[str, str]]
) -> None:
    assert listed(stored, **filters) == expected


def test_the_api_takes_the_filters_in_its_query_string(
    clinic: str, admin: Site, engine: Engine, plugins: Plugins
) -> None:
    failed = finished_run(engine, plugins, "apply", {"web-1": {"failed": 1}}, status=FAILED)
    finished_run(engine, plugins, "plan", {"web-1": {"ok": 1}})
    api = admin.client.get("/api/v1/orgs/clinic/runs?status=failed&host=web-1")
    assert api.status_code == 200, api.text
    assert [item["id"] for item in api.json()["items"]] == [str(failed)]
    bad = admin.client.get("/api/v1/orgs/clinic/runs?status=broken")
    assert bad.status_code == 422 and "status" in bad.text


def test_the_page_filters_and_says_when_nothing_matches(
    clinic: str, admin: Site, engine: Engine, plugins: Plugins
) -> None:
    failed = finished_run(engine, plugins, "apply", {"web-1": {"failed": 1}}, status=FAILED)
    ok = finished_run(engine, plugins, "plan", {"web-1": {"ok": 1}})
    page = admin.get("/orgs/clinic/runs?status=failed&kind=&host=").text
    assert str(failed)[:8] in page and str(ok)[:8] not in page
    assert '<option value="failed" selected>' in page
    assert "Show all runs" in page
    none = admin.get("/orgs/clinic/runs?definition=basics&kind=plan&status=failed").text
    assert "No runs match" in none
    bad = admin.get("/orgs/clinic/runs?status=broken")
    assert bad.status_code == 422 and "status" in bad.text


def test_the_list_says_not_reached_as_the_run_page_does(
    clinic: str, admin: Site, engine: Engine, plugins: Plugins
) -> None:
    run_id = finished_run(engine, plugins, "apply", {"web-1": {"ok": 1}}, status=FAILED)
    listing = admin.get("/orgs/clinic/runs").text
    assert ">1 not reached<" in listing and ">1 missed<" not in listing
    assert "not reached" in admin.get(f"/orgs/clinic/runs/{run_id}").text
