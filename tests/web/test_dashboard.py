"""The dashboard: what needs attention first, from runs finished through the executors'
lifecycle functions (no Ansible), per organisation and for the node."""

from __future__ import annotations

import html
import re
import uuid
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import Engine

from infracms.config import Settings
from infracms.db import session_scope
from infracms.models import Role
from infracms.models.base import utcnow
from infracms.models.federation import PeerInvitation
from infracms.models.run import RunStatus
from infracms.plugins import Plugins
from infracms.services import dashboard, definitions, inventory, runs
from tests.helpers import ADMIN
from tests.web.conftest import RecordingExecutor, Site
from tests.web.test_people_pages import signed_in

OK = {"ok": 2}


@pytest.fixture
def plugins() -> Plugins:
    """The built-in modules only."""
    return Plugins.load(entry_points=False)


@pytest.fixture
def clinic(admin: Site, engine: Engine, plugins: Plugins, executor: RecordingExecutor) -> str:
    return make_clinic(admin, engine, plugins)


def make_clinic(admin: Site, engine: Engine, plugins: Plugins) -> str:
    """web-1 and web-2 in group web (base applies there, published revision 1), db-1 alone."""
    admin.post("/orgs", {"name": "clinic", "title": ""})
    admin.post("/modules/base/availability", {"available": "yes"})
    admin.post("/orgs/clinic/modules/base/enable", {})
    with session_scope(engine, write=True) as session:
        inventory.create_group(
            session=session, actor=ADMIN, organisation="clinic", data={"name": "web"}
        )
        for name, groups in (("web-1", ["web"]), ("web-2", ["web"]), ("db-1", [])):
            data = {"name": name, "address": "198.51.100.1", "groups": groups}
            inventory.create_host(session=session, actor=ADMIN, organisation="clinic", data=data)
        definitions.create_definition(
            session=session,
            actor=ADMIN,
            plugins=plugins,
            organisation="clinic",
            data={"name": "basics", "module": "base", "target": {"group": "web"}},
        )
    return "clinic"


def finished_run(
    engine: Engine, plugins: Plugins, kind: str, recap: dict[str, dict[str, int]], **finish: Any
) -> uuid.UUID:
    """A run asked for, claimed and finished as an executor does, with `recap`."""
    with session_scope(engine, write=True) as session:
        run = runs.create_run(
            session=session,
            actor=ADMIN,
            plugins=plugins,
            organisation="clinic",
            data={"kind": kind},
        )
        assert runs.claim_run(session, run_id=run.id, worker="test-worker") is not None
        status = finish.pop("status", RunStatus.succeeded)
        runs.finish_run(
            session, run_id=run.id, status=status, rc=0, recap=recap, stdout_sha256=None, **finish
        )
        return run.id


def concerns(engine: Engine, org: str = "clinic") -> dict[str, tuple[int, list[str]]]:
    with session_scope(engine) as session:
        found = dashboard.attention(session=session, actor=ADMIN)
    (item,) = [o for o in found.organisations if o.organisation.name == org]
    return {c.key: (c.count, c.sample) for c in item.concerns}


def test_a_new_organisation_shows_hosts_never_applied_and_with_no_key(
    clinic: str, engine: Engine
) -> None:
    found = concerns(engine)
    assert found["never_applied"] == (2, ["web-1", "web-2"])  # db-1: no definition reaches it
    assert found["no_key"] == (3, ["db-1", "web-1", "web-2"])
    assert "failed_runs" not in found and "out_of_date" not in found


def test_an_apply_puts_hosts_in_sync_and_a_new_revision_puts_them_out_of_date(
    clinic: str, engine: Engine, plugins: Plugins
) -> None:
    finished_run(engine, plugins, "apply", {"web-1": OK, "web-2": {"changed": 1, "ok": 1}})
    found = concerns(engine)
    assert "never_applied" not in found and "out_of_date" not in found
    with session_scope(engine, write=True) as session:
        definitions.save_revision(
            session=session,
            actor=ADMIN,
            plugins=plugins,
            organisation="clinic",
            name="basics",
            data={"settings": {"packages": ["curl"]}, "publish": True},
        )
    assert concerns(engine)["out_of_date"] == (2, ["web-1", "web-2"])


def test_a_plan_does_not_count_as_applied(clinic: str, engine: Engine, plugins: Plugins) -> None:
    finished_run(engine, plugins, "plan", {"web-1": OK, "web-2": OK})
    assert concerns(engine)["never_applied"][0] == 2


def test_failed_and_unreachable_hosts_and_failed_runs_are_counted(
    clinic: str, engine: Engine, plugins: Plugins
) -> None:
    run_id = finished_run(
        engine,
        plugins,
        "apply",
        {"web-1": {"failed": 1, "ok": 3}, "web-2": {"unreachable": 1}},
        status=RunStatus.failed,
    )
    found = concerns(engine)
    assert found["failed"] == (1, ["web-1"])
    assert found["unreachable"] == (1, ["web-2"])
    assert found["failed_runs"] == (1, [str(run_id)])
    assert found["never_applied"] == (2, ["web-1", "web-2"])
    finished_run(engine, plugins, "apply", {"web-1": OK, "web-2": OK})
    found = concerns(engine)
    assert "failed" not in found and "unreachable" not in found
    assert found["failed_runs"][0] == 1  # the failed run still happened this week


def test_queued_runs_and_node_invitations_need_attention(
    clinic: str, engine: Engine, plugins: Plugins
) -> None:
    with session_scope(engine, write=True) as session:
        runs.create_run(
            session=session,
            actor=ADMIN,
            plugins=plugins,
            organisation="clinic",
            data={"kind": "plan"},
        )
        session.add(
            PeerInvitation(id="inv-1", expires_at=utcnow() + timedelta(hours=1), created_by="admin")
        )
        session.add(
            PeerInvitation(id="inv-2", expires_at=utcnow() - timedelta(hours=1), created_by="admin")
        )
        session.commit()
    assert concerns(engine)["active_runs"][0] == 1
    with session_scope(engine) as session:
        node = dashboard.attention(session=session, actor=ADMIN).node
    assert [(c.key, c.count) for c in node] == [("open_invitations", 1)]


def test_the_page_links_each_concern_to_where_it_is_fixed(
    clinic: str, admin: Site, engine: Engine, plugins: Plugins
) -> None:
    finished_run(engine, plugins, "apply", {"web-1": {"failed": 1}}, status=RunStatus.failed)
    page = html.unescape(admin.get("/").text)
    assert "Needs attention" in page
    assert re.search(r'href="/orgs/clinic/runs\?status=failed">1</a>', page)
    assert re.search(r'href="/orgs/clinic\?standing=failed">1</a>', page)
    assert re.search(r'href="/orgs/clinic\?standing=never_applied">2</a>', page)
    assert "Latest runs" in page


def test_a_viewer_sees_only_their_organisation_and_no_node_concerns(
    clinic: str, other_site: Site, engine: Engine, settings: Settings, plugins: Plugins
) -> None:
    with session_scope(engine, write=True) as session:
        session.add(
            PeerInvitation(id="inv-3", expires_at=utcnow() + timedelta(hours=1), created_by="admin")
        )
        session.commit()
    finished_run(engine, plugins, "apply", {"web-1": {"failed": 1}}, status=RunStatus.failed)
    viewer = signed_in(other_site, engine, settings, "vera", clinic=Role.viewer)
    page = viewer.get("/").text
    assert "/orgs/clinic?standing=failed" in page
    assert "peer invitations" not in page and "/peers" not in page


def test_a_node_with_everything_in_order_says_so(admin: Site) -> None:
    admin.post("/orgs", {"name": "quiet", "title": ""})
    page = admin.get("/").text
    assert "Nothing needs attention" in page


def hosts_listed(site: Site, url: str) -> list[str]:
    page = site.get(url)
    assert page.status_code == 200, page.text
    return re.findall(r'<th scope="row"><a href="/orgs/clinic/hosts/([\w-]+)">', page.text)


def test_each_concern_links_to_the_hosts_it_counts(
    clinic: str, admin: Site, engine: Engine, plugins: Plugins
) -> None:
    finished_run(engine, plugins, "apply", {"web-1": {"failed": 1}}, status=RunStatus.failed)
    assert hosts_listed(admin, "/orgs/clinic?standing=failed") == ["web-1"]
    assert hosts_listed(admin, "/orgs/clinic?standing=never_applied") == ["web-1", "web-2"]
    assert hosts_listed(admin, "/orgs/clinic?standing=no_key") == ["db-1", "web-1", "web-2"]
    assert hosts_listed(admin, "/orgs/clinic?group=web&key=missing") == ["web-1", "web-2"]
    assert hosts_listed(admin, "/orgs/clinic?key=pinned") == []
    assert admin.get("/orgs/clinic?standing=broken").status_code == 422


def test_the_api_lists_hosts_by_group_key_and_standing(
    clinic: str, admin: Site, engine: Engine, plugins: Plugins
) -> None:
    finished_run(engine, plugins, "apply", {"web-1": {"unreachable": 1}}, status=RunStatus.failed)
    api = "/api/v1/orgs/clinic/hosts"
    found = admin.client.get(f"{api}?standing=unreachable").json()
    assert [host["name"] for host in found["items"]] == ["web-1"]
    in_web = admin.client.get(f"{api}?group=web&search=2").json()
    assert [host["name"] for host in in_web["items"]] == ["web-2"]
    assert admin.client.get(f"{api}?group=nowhere").status_code == 404
