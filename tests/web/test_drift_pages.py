"""Drift on the pages: the host page shows what drifted and offers remediate and
acknowledge; the organisation's drift tab shows states, a chart and the schedules; the
dashboard counts drifted hosts. Runs are finished as an executor does (no Ansible)."""

from __future__ import annotations

import html
import re
import uuid

import pytest
from sqlalchemy import Engine

from infracms.config import Settings
from infracms.db import session_scope
from infracms.models import Role
from infracms.models.base import utcnow
from infracms.models.run import RunStatus
from infracms.plugins import Plugins
from infracms.services import runs
from tests.helpers import ADMIN
from tests.web.conftest import RecordingExecutor, Site
from tests.web.test_dashboard import make_clinic
from tests.web.test_people_pages import signed_in

ALL_OK = {"web-1": {"ok": 1}, "web-2": {"ok": 1}}


@pytest.fixture
def plugins() -> Plugins:
    return Plugins.load(entry_points=False)


@pytest.fixture
def drifted(admin: Site, engine: Engine, plugins: Plugins, executor: RecordingExecutor) -> str:
    """clinic applied, then a plan finding /etc/motd changed on web-1."""
    make_clinic(admin, engine, plugins)
    finished(engine, plugins, "apply", ALL_OK)
    event = {
        "seq": 1,
        "event": "runner_on_ok",
        "host": "web-1",
        "task": "Write the message of the day",
        "status": "changed",
        "changed": True,
        "stdout": "changed: [web-1]",
        "data": {"role": "base", "diff": {"before": "hello\n", "after": "tampered\n"}},
        "created_at": utcnow(),
    }
    finished(engine, plugins, "plan", {**ALL_OK, "web-1": {"changed": 1}}, [event])
    return "clinic"


def finished(
    engine: Engine,
    plugins: Plugins,
    kind: str,
    recap: dict[str, dict[str, int]],
    events: list[dict[str, object]] | None = None,
) -> uuid.UUID:
    with session_scope(engine, write=True) as session:
        run = runs.create_run(
            session=session,
            actor=ADMIN,
            plugins=plugins,
            organisation="clinic",
            data={"kind": kind},
        )
        runs.claim_run(session, run_id=run.id, worker="test-worker")
        if events:
            runs.write_events(
                session, run_id=run.id, rows=[{"run_id": run.id, **e} for e in events]
            )
        runs.finish_run(
            session,
            run_id=run.id,
            status=RunStatus.succeeded,
            rc=0,
            recap=recap,
            stdout_sha256=None,
        )
        return run.id


def test_the_host_page_shows_the_drift_and_remediates_it(
    drifted: str, admin: Site, executor: RecordingExecutor
) -> None:
    page = html.unescape(admin.get("/orgs/clinic/hosts/web-1").text)
    assert "drifted" in page and "basics: Write the message of the day" in page
    assert re.search(r"diff digest [0-9a-f]{64}", page)
    response = admin.post("/orgs/clinic/hosts/web-1/drift/remediate", {})
    assert response.status_code == 303, response.text
    assert response.headers["location"] == f"/orgs/clinic/runs/{executor.submitted[-1]}"
    assert "in sync" in admin.get("/orgs/clinic/hosts/web-2").text


def test_the_dashboard_counts_drift_until_it_is_acknowledged(drifted: str, admin: Site) -> None:
    page = html.unescape(admin.get("/").text)
    assert re.search(r'href="/orgs/clinic\?standing=drifted">1</a>', page)
    refused = admin.post("/orgs/clinic/hosts/web-1/drift/acknowledge", {"reason": ""})
    assert refused.status_code == 422
    response = admin.post(
        "/orgs/clinic/hosts/web-1/drift/acknowledge", {"reason": "hotfix, kept until Monday"}
    )
    assert response.status_code == 303, response.text
    assert "standing=drifted" not in admin.get("/").text
    assert "hotfix, kept until Monday" in admin.get("/orgs/clinic/hosts/web-1").text


def test_the_drift_tab_shows_states_a_chart_and_schedules(drifted: str, admin: Site) -> None:
    page = admin.get("/orgs/clinic/drift")
    assert page.status_code == 200
    svg = page.text[page.text.index("<svg") : page.text.index("</svg>")]
    assert 'class="drift-chart"' in svg and "<script" not in svg
    assert 'class="drift"' in svg, "no drift dot on the chart"
    bad = admin.post(
        "/orgs/clinic/schedules",
        {"name": "n", "cron": "0 25 * * *", "time_zone": "UTC", "mode": "plan", "group": ""},
    )
    assert bad.status_code == 422 and "five fields" in bad.text
    tz = admin.post(
        "/orgs/clinic/schedules",
        {
            "name": "n",
            "cron": "0 3 * * *",
            "time_zone": "Nowhere/Land",
            "mode": "plan",
            "group": "",
        },
    )
    assert tz.status_code == 422 and "IANA" in tz.text
    good = admin.post(
        "/orgs/clinic/schedules",
        {
            "name": "nightly",
            "cron": "0 3 * * *",
            "time_zone": "Europe/Paris",
            "mode": "plan",
            "group": "web",
        },
    )
    assert good.status_code == 303, good.text
    page = admin.get("/orgs/clinic/drift").text
    assert "nightly" in page and "0 3 * * * (Europe/Paris)" in page


@pytest.mark.security
def test_a_viewer_sees_drift_but_can_neither_acknowledge_nor_remediate(
    drifted: str,
    other_site: Site,
    engine: Engine,
    settings: Settings,
    executor: RecordingExecutor,
) -> None:
    viewer = signed_in(other_site, engine, settings, "vera", clinic=Role.viewer)
    page = viewer.get("/orgs/clinic/hosts/web-1").text
    assert "drifted" in page and "Remediate" not in page
    for url in (
        "/orgs/clinic/hosts/web-1/drift/remediate",
        "/orgs/clinic/hosts/web-1/drift/acknowledge",
    ):
        assert viewer.post(url, {"reason": "mine now"}).status_code == 403
    assert executor.submitted == []
    assert (
        viewer.post(
            "/orgs/clinic/schedules",
            {"name": "x", "cron": "0 3 * * *", "time_zone": "UTC", "mode": "plan", "group": ""},
        ).status_code
        == 403
    )
