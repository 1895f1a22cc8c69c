"""Runs on the pages: plan and apply by role, the run page with events written through the
executors' lifecycle functions (no Ansible), paging big outputs, cancel and re-run."""

from __future__ import annotations

import re
import uuid
from typing import Any

import pytest
from sqlalchemy import Engine

from infracms.config import Settings
from infracms.db import session_scope
from infracms.models import Role
from infracms.models.base import utcnow
from infracms.models.run import Run, RunStatus
from infracms.plugins import Plugins
from infracms.services import definitions, inventory, runs
from tests.helpers import ADMIN, count
from tests.web.conftest import RecordingExecutor, Site
from tests.web.test_people_pages import signed_in

DASH = "\N{EN DASH}"  # the pages write ranges of events with it
DIFF = {
    "before": "a\nb\n",
    "after": "a\nc\n",
    "before_header": "/etc/motd",
    "after_header": "/etc/motd",
}


@pytest.fixture
def plugins() -> Plugins:
    """The built-in modules only."""
    return Plugins.load(entry_points=False)


# pinned, so that the host pages offer Plan and Apply (an unpinned host's are disabled)
KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl"


@pytest.fixture
def clinic(admin: Site, engine: Engine, plugins: Plugins, executor: RecordingExecutor) -> str:
    """Two hosts in group web, a third outside it, and `basics` (module base) on web."""
    admin.post("/orgs", {"name": "clinic", "title": ""})
    admin.post("/modules/base/availability", {"available": "yes"})
    admin.post("/orgs/clinic/modules/base/enable", {})
    with session_scope(engine, write=True) as session:
        inventory.create_group(
            session=session, actor=ADMIN, organisation="clinic", data={"name": "web"}
        )
        for name, groups in (("web-1", ["web"]), ("web-2", ["web"]), ("db-1", [])):
            data = {"name": name, "address": "198.51.100.1", "groups": groups, "host_key": KEY}
            inventory.create_host(session=session, actor=ADMIN, organisation="clinic", data=data)
        definitions.create_definition(
            session=session,
            actor=ADMIN,
            plugins=plugins,
            organisation="clinic",
            data={"name": "basics", "module": "base", "target": {"group": "web"}},
        )
    return "clinic"


def only_run(engine: Engine) -> Run:
    with session_scope(engine) as session:
        found = runs.list_runs(session=session, actor=ADMIN, organisation="clinic")
    assert found.total == 1, f"expected one run, found {found.total}"
    return found.items[0]


def queue(engine: Engine, plugins: Plugins, kind: str = "plan") -> uuid.UUID:
    with session_scope(engine, write=True) as session:
        run = runs.create_run(
            session=session,
            actor=ADMIN,
            plugins=plugins,
            organisation="clinic",
            data={"kind": kind},
        )
        return run.id


def event(
    run_id: uuid.UUID, seq: int, host: str, status: str | None, **more: Any
) -> dict[str, Any]:
    """A stored event as the event sink writes it."""
    return {
        "run_id": run_id,
        "seq": seq,
        "event": "runner_on_ok" if status else "verbose",
        "host": host,
        "task": more.get("task", f"task {seq}"),
        "status": status,
        "changed": status == "changed",
        "stdout": more.get("stdout", f"\x1b[0;32m{status or 'note'}: [{host}] step {seq}\x1b[0m"),
        "data": more.get("data", {}),
        "created_at": utcnow(),
    }


def play(engine: Engine, run_id: uuid.UUID, rows: list[dict[str, Any]], **finish: Any) -> None:
    """Claim the run, write its events in batches, and finish it if told how."""
    with session_scope(engine, write=True) as session:
        assert runs.claim_run(session, run_id=run_id, worker="test-worker") is not None
        for start in range(0, len(rows), 10_000):
            runs.write_events(session, run_id=run_id, rows=rows[start : start + 10_000])
        if finish:
            runs.finish_run(session, run_id=run_id, rc=2, stdout_sha256=None, **finish)


def test_an_editor_plans_and_may_not_apply(
    clinic: str, other_site: Site, engine: Engine, settings: Settings, executor: RecordingExecutor
) -> None:
    editor = signed_in(other_site, engine, settings, "eddie", clinic=Role.editor)
    page = editor.get("/orgs/clinic/runs").text
    assert 'name="kind" value="plan"' in page and 'name="kind" value="apply"' not in page
    assert editor.post("/orgs/clinic/runs", {"kind": "apply", "scope": ""}).status_code == 403
    assert count(engine, Run) == 0
    response = editor.post("/orgs/clinic/runs", {"kind": "plan", "scope": "group:web"})
    run = only_run(engine)
    assert response.headers["location"] == f"/orgs/clinic/runs/{run.id}"
    assert executor.submitted == [run.id]
    assert run.kind == "plan" and run.hosts == ["web-1", "web-2"]


def test_an_operator_applies_a_definition_from_its_page(
    clinic: str, other_site: Site, engine: Engine, settings: Settings, executor: RecordingExecutor
) -> None:
    operator = signed_in(other_site, engine, settings, "opal", clinic=Role.operator)
    page = operator.get("/orgs/clinic/definitions/basics").text
    assert '<input type="hidden" name="definitions" value="basics">' in page
    operator.post("/orgs/clinic/runs", {"kind": "apply", "definitions": "basics"})
    run = only_run(engine)
    assert run.kind == "apply" and [d["name"] for d in run.definitions] == ["basics"]
    assert executor.submitted == [run.id]


def test_a_host_or_group_page_plans_just_there(
    clinic: str, admin: Site, engine: Engine, executor: RecordingExecutor
) -> None:
    host = admin.get("/orgs/clinic/hosts/web-1").text
    assert '<input type="hidden" name="hosts" value="web-1">' in host
    assert 'name="groups" value="web"' in admin.get("/orgs/clinic/groups/web").text
    admin.post("/orgs/clinic/runs", {"kind": "plan", "hosts": "web-1"})
    assert only_run(engine).hosts == ["web-1"]


def test_a_run_with_nothing_to_do_is_refused_with_the_reason(
    clinic: str, admin: Site, engine: Engine, executor: RecordingExecutor
) -> None:
    response = admin.post("/orgs/clinic/runs", {"kind": "plan", "scope": "host:db-1"})
    assert response.status_code == 422
    assert "Could not start the plan" in response.text
    assert "no definition applies to the chosen hosts" in response.text
    assert count(engine, Run) == 0 and executor.submitted == []


def test_the_run_page_shows_the_recap_revisions_diffs_and_output(
    clinic: str, admin: Site, engine: Engine, plugins: Plugins
) -> None:
    run_id = queue(engine, plugins)
    rows = [
        event(run_id, 1, "web-1", None, stdout="PLAY [apply] ****", task=None),
        event(run_id, 2, "web-1", "changed", data={"diff": DIFF}, task="write motd"),
        event(run_id, 3, "web-2", "unreachable", stdout="fatal: [web-2]: UNREACHABLE!"),
    ]
    recap = {"web-1": {"ok": 3, "changed": 1}, "web-2": {"unreachable": 1}}
    play(engine, run_id, rows, status=RunStatus.failed, recap=recap)
    page = admin.get(f"/orgs/clinic/runs/{run_id}").text
    assert '<span class="status status-failed" id="run-status">failed</span>' in page
    assert re.search(r'<tr class="recap-changed">.*?web-1.*?outcome-changed">changed<', page, re.S)
    assert re.search(
        r'<tr class="recap-unreachable">.*?web-2.*?outcome-unreachable">unreachable<', page, re.S
    )
    assert 'href="/orgs/clinic/definitions/basics#rev-1">basics</a>' in page
    assert "What would change" in page and "write motd" in page
    assert '<span class="diff-remove">-b</span><span class="diff-add">+c</span>' in page
    assert "changed: [web-1] step 2" in page and "\x1b" not in page, "colour codes are dropped"
    assert "data-stream" not in page, "a finished run is not followed live"
    assert "Re-run failed hosts" in page


def test_a_big_output_shows_the_latest_events_with_older_pages(
    clinic: str, admin: Site, engine: Engine, plugins: Plugins
) -> None:
    run_id = queue(engine, plugins)
    statuses = ("ok", "changed", None, "skipped")
    rows = [
        event(run_id, seq, f"web-{seq % 2 + 1}", statuses[seq % 4], stdout=f"line {seq}")
        for seq in range(1, 100_001)
    ]
    play(engine, run_id, rows, status=RunStatus.succeeded, recap={"web-1": {"ok": 1}})
    here = f"/orgs/clinic/runs/{run_id}"
    latest = admin.get(here).text
    assert f"100000 events</span> in all; showing events 99801{DASH}100000." in latest
    assert latest.count('<li class="line') == 200
    assert f'href="{here}?before=99801#output-title" rel="prev">Older' in latest
    older = admin.get(f"{here}?before=99801").text
    assert f"showing events 99601{DASH}99800." in older and ">Newer<" in older
    first = admin.get(f"{here}?before=150").text
    assert f"showing events 1{DASH}149." in first and ">Older<" not in first
    host = admin.get(f"{here}?host=web-2").text
    assert f"showing events 99601{DASH}99999 of web-1" not in host
    assert f"showing events 99601{DASH}99999 of web-2." in host, "odd events are web-2's"
    assert host.count('<li class="line') == 200
    assert "?before=99601&amp;host=web-2#output-title" in host


def test_a_running_run_is_followed_live_and_can_be_cancelled(
    clinic: str, admin: Site, engine: Engine, plugins: Plugins
) -> None:
    run_id = queue(engine, plugins, kind="apply")
    play(engine, run_id, [event(run_id, 1, "web-1", "ok"), event(run_id, 2, "web-2", "ok")])
    page = admin.get(f"/orgs/clinic/runs/{run_id}").text
    assert f'data-stream="/api/v1/orgs/clinic/runs/{run_id}/stream" data-after="2"' in page
    assert '<script src="/static/run.js" defer></script>' in page
    assert "no result yet" in page
    response = admin.post(f"/orgs/clinic/runs/{run_id}/cancel", {})
    assert response.headers["location"] == f"/orgs/clinic/runs/{run_id}?notice=run-cancelling"
    assert "Cancellation asked" in admin.get(response.headers["location"]).text
    with session_scope(engine) as session:
        assert runs.get_run(
            session=session, actor=ADMIN, organisation="clinic", run_id=run_id
        ).cancel_requested


def test_the_live_view_reads_the_api_stream_with_the_session_cookie(
    clinic: str, admin: Site, engine: Engine, plugins: Plugins
) -> None:
    run_id = queue(engine, plugins)
    play(engine, run_id, [event(run_id, 1, "web-1", "ok")], status=RunStatus.succeeded, recap={})
    with admin.client.stream("GET", f"/api/v1/orgs/clinic/runs/{run_id}/stream") as stream:
        assert stream.status_code == 200
        body = stream.read().decode()
    assert "event: events" in body and '"seq": 1' in body and "event: end" in body


def test_failed_hosts_run_again_and_an_ended_run_cannot_be_cancelled(
    clinic: str, admin: Site, engine: Engine, plugins: Plugins, executor: RecordingExecutor
) -> None:
    run_id = queue(engine, plugins)
    recap = {"web-1": {"ok": 2}, "web-2": {"failed": 1}}
    play(
        engine, run_id, [event(run_id, 1, "web-2", "failed")], status=RunStatus.failed, recap=recap
    )
    refused = admin.post(f"/orgs/clinic/runs/{run_id}/cancel", {})
    assert refused.status_code == 409 and "has already ended" in refused.text
    response = admin.post(f"/orgs/clinic/runs/{run_id}/rerun-failed", {})
    with session_scope(engine) as session:
        again = runs.list_runs(session=session, actor=ADMIN, organisation="clinic").items[0]
    assert response.headers["location"] == f"/orgs/clinic/runs/{again.id}"
    assert again.hosts == ["web-2"] and again.parent_id == run_id
    assert executor.submitted == [again.id]
    assert (
        f'href="/orgs/clinic/runs/{run_id}">run {str(run_id)[:8]}</a>'
        in admin.get(response.headers["location"]).text
    )


def test_viewers_read_runs_and_press_nothing(
    clinic: str, other_site: Site, engine: Engine, settings: Settings, plugins: Plugins
) -> None:
    run_id = queue(engine, plugins)
    play(engine, run_id, [event(run_id, 1, "web-1", "ok")])
    viewer = signed_in(other_site, engine, settings, "vera", clinic=Role.viewer)
    for url in ("/orgs/clinic/runs", f"/orgs/clinic/runs/{run_id}", "/runs"):
        page = viewer.get(url).text
        assert 'method="post"' not in page.replace('method="post" action="/logout"', ""), url
    assert viewer.post(f"/orgs/clinic/runs/{run_id}/cancel", {}).status_code == 403
    assert viewer.post("/orgs/clinic/runs", {"kind": "plan"}).status_code == 403
    assert str(run_id)[:8] in viewer.get("/runs").text
