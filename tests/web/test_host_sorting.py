"""The hosts list sorts by name, address, group, last run state and time, both ways, in
the service, the API (a declared enum) and the web page (column headers that keep the
search and filters, with aria-sort); ties go by name, so pages neither overlap nor skip."""

from __future__ import annotations

import html
import re

import pytest
from sqlalchemy import Engine

from infracms.db import session_scope
from infracms.models.run import RunStatus
from infracms.plugins import Plugins
from infracms.services import definitions, inventory
from tests.helpers import ADMIN
from tests.web.conftest import RecordingExecutor, Site
from tests.web.test_dashboard import finished_run, hosts_listed, make_clinic


@pytest.fixture
def plugins() -> Plugins:
    """The built-in modules only."""
    return Plugins.load(entry_points=False)


@pytest.fixture
def clinic(admin: Site, engine: Engine, plugins: Plugins, executor: RecordingExecutor) -> str:
    """web-1, web-2 (group web), db-1 (no group) and app-1 (group apps); web-1's last run
    failed, then web-2's and db-1's were fine (web-2 changed); app-1 never ran."""
    make_clinic(admin, engine, plugins)
    with session_scope(engine, write=True) as session:
        inventory.create_group(
            session=session, actor=ADMIN, organisation="clinic", data={"name": "apps"}
        )
        data = {"name": "app-1", "address": "198.51.100.9", "groups": ["apps"]}
        inventory.create_host(session=session, actor=ADMIN, organisation="clinic", data=data)
        for name, address in (("web-2", "198.51.100.2"), ("db-1", "198.51.100.3")):
            inventory.update_host(
                session=session,
                actor=ADMIN,
                organisation="clinic",
                name=name,
                data={"address": address},
            )
        definitions.create_definition(
            session=session,
            actor=ADMIN,
            plugins=plugins,
            organisation="clinic",
            data={"name": "db-basics", "module": "base", "target": {"host": "db-1"}},
        )
    # cancelled runs say nothing of the hosts they did not reach: each run here sets the
    # state of the hosts in its recap only
    cancelled = RunStatus.cancelled
    finished_run(engine, plugins, "apply", {"web-1": {"failed": 1}}, status=cancelled)
    finished_run(
        engine, plugins, "plan", {"web-2": {"changed": 1}, "db-1": {"ok": 1}}, status=cancelled
    )
    return "clinic"


def listed(site: Site, query: str) -> list[str]:
    page = site.client.get(f"/api/v1/orgs/clinic/hosts?{query}")
    assert page.status_code == 200, page.text
    return [host["name"] for host in page.json()["items"]]


ORDERS = {
    "name": ["app-1", "db-1", "web-1", "web-2"],
    "-name": ["web-2", "web-1", "db-1", "app-1"],
    # web-1 198.51.100.1, web-2 .2, db-1 .3, app-1 .9
    "address": ["web-1", "web-2", "db-1", "app-1"],
    "-address": ["app-1", "db-1", "web-2", "web-1"],
    # no group last either way; web-1 and web-2 tie on "web", by name
    "group": ["app-1", "web-1", "web-2", "db-1"],
    "-group": ["web-1", "web-2", "app-1", "db-1"],
    # worst first: failed, changed, ok; never run last
    "last_outcome": ["web-1", "web-2", "db-1", "app-1"],
    "-last_outcome": ["db-1", "web-2", "web-1", "app-1"],
    # web-1's run ended first; web-2 and db-1 tie (one run), by name
    "last_run_at": ["web-1", "db-1", "web-2", "app-1"],
    "-last_run_at": ["db-1", "web-2", "web-1", "app-1"],
}


def test_the_api_sorts_hosts_both_ways_and_pages_neither_overlap_nor_skip(
    clinic: str, admin: Site
) -> None:
    for sort, expected in ORDERS.items():
        assert listed(admin, f"sort={sort}") == expected, sort
        first, second = (listed(admin, f"sort={sort}&limit=2&offset={i}") for i in (0, 2))
        assert first + second == expected, sort


def test_a_bad_sort_is_a_problem_naming_the_choices(clinic: str, admin: Site) -> None:
    answer = admin.client.get("/api/v1/orgs/clinic/hosts?sort=password")
    assert answer.status_code == 422
    assert answer.headers["content-type"].startswith("application/problem+json")
    assert "last_run_at" in answer.text
    assert admin.get("/orgs/clinic?sort=password").status_code == 400  # a page, not a problem


def test_the_api_declares_the_sort_orders(admin: Site) -> None:
    spec = admin.client.get("/openapi.json")
    operation = spec.json()["paths"]["/api/v1/orgs/{org}/hosts"]["get"]
    (param,) = [p for p in operation["parameters"] if p["name"] == "sort"]
    assert set(param["schema"]["enum"]) == set(ORDERS)


def test_the_page_sorts_by_its_column_headers_keeping_the_filters(clinic: str, admin: Site) -> None:
    assert hosts_listed(admin, "/orgs/clinic?sort=-last_outcome") == ORDERS["-last_outcome"]
    page = html.unescape(admin.get("/orgs/clinic?group=web&q=web&sort=last_run_at").text)
    headers = dict(re.findall(r'<th scope="col"([^>]*)><a href="([^"]+)" class="sort">', page))
    current = "/orgs/clinic?q=web&group=web&sort=-last_run_at"
    assert headers[' aria-sort="ascending"'] == current  # the current column turns around
    links = re.findall(r'<a href="(/orgs/clinic\?[^"]*sort=[^"]+)" class="sort">', page)
    assert len(links) == 5 and all("q=web&group=web" in link for link in links), links
    assert page.count("aria-sort=") == 1
    assert "Last run" in page and "failed" in page
    turned = html.unescape(admin.get(current).text)
    assert 'aria-sort="descending"' in turned


def test_the_pager_keeps_the_order(clinic: str, admin: Site, engine: Engine) -> None:
    with session_scope(engine, write=True) as session:
        for n in range(25):
            data = {"name": f"zz-{n:02}", "address": "198.51.100.7"}
            inventory.create_host(session=session, actor=ADMIN, organisation="clinic", data=data)
    page = html.unescape(admin.get("/orgs/clinic?sort=-name").text)
    assert re.search(r'href="/orgs/clinic\?page=2&sort=-name" rel="next"', page), page
    assert hosts_listed(admin, "/orgs/clinic?sort=-name&page=2")[-1] == "app-1"
