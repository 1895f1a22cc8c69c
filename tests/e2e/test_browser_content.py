"""Modules, definitions, runs and the audit log in real headless Chromium: enable a module,
create a definition through the generated form (a field error first), save a second
revision, compare, roll back, read the log; and watch a run live as its events arrive."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import Engine

from infracms.config import Settings
from infracms.db import make_engine, session_scope
from infracms.models.base import utcnow
from infracms.models.run import RunStatus
from infracms.plugins import Plugins
from infracms.services import definitions, inventory, modules, organisations, runs
from tests.e2e.conftest import ADMIN_PASSWORD
from tests.e2e.test_browser_foundation import SCREENSHOTS, _note_error
from tests.helpers import ADMIN

pytestmark = pytest.mark.e2e

WIDE = {"width": 1280, "height": 900}


@pytest.fixture
def watched(page: Page) -> Iterator[list[str]]:
    """The browser's errors (CSP violations among them), checked to be none at the end."""
    problems: list[str] = []
    page.on("console", lambda message: _note_error(message, problems))
    page.on("pageerror", lambda error: problems.append(str(error)))
    page.set_viewport_size(WIDE)
    yield problems
    assert problems == [], f"the browser reported errors (a CSP violation?): {problems}"


def log_in(page: Page, base_url: str) -> None:
    page.goto(f"{base_url}/login")
    page.get_by_label("User name").fill("admin")
    page.get_by_label("Password").fill(ADMIN_PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(f"{base_url}/")


def shoot(page: Page, name: str) -> None:
    page.screenshot(path=str(SCREENSHOTS / f"infracms-{name}.png"), full_page=True)


def test_enable_define_fix_revise_compare_roll_back_and_read_the_log(
    page: Page, base_url: str, watched: list[str]
) -> None:
    log_in(page, base_url)
    page.goto(f"{base_url}/orgs")
    page.get_by_label("Short name").fill("north-dental")
    page.get_by_role("button", name="Create organisation").click()
    page.goto(f"{base_url}/orgs/north-dental/hosts/new")
    page.get_by_label("Name", exact=True).fill("web-1")
    page.get_by_label("Address").fill("198.51.100.10")
    page.get_by_role("button", name="Add host").click()

    page.get_by_role("link", name="Modules", exact=True).click()
    page.get_by_role("button", name="Make available base", exact=True).click()
    page.get_by_role("button", name="Make available backup", exact=True).click()
    expect(page.locator("#module-base")).to_contain_text("available")
    shoot(page, "modules")
    page.goto(f"{base_url}/orgs/north-dental/modules")
    page.get_by_role("button", name="Enable base").click()
    page.get_by_role("button", name="Enable backup").click()
    expect(page.get_by_role("status")).to_have_text("Module enabled.")
    expect(page.locator("#module-base")).to_contain_text("enabled")
    shoot(page, "org-modules")

    # A secret reference: the typed $env/$file field shows only for "other".
    page.goto(f"{base_url}/orgs/north-dental/definitions/new?module=backup")
    typed = page.locator('[id="settings.password.ref"]')
    expect(typed).to_be_hidden()
    page.locator('[id="settings.password-choice"]').select_option("other")
    expect(typed).to_be_visible()
    shoot(page, "definition-form-backup")

    page.goto(f"{base_url}/orgs/north-dental/definitions")
    page.get_by_role("link", name="New definition").click()
    page.get_by_role("link", name="Base system").click()
    page.get_by_label("Name", exact=True).fill("basics")
    page.get_by_label("Applies to").select_option("host:web-1")
    page.get_by_label("Timezone").fill("Mars/Olympus Mons")
    page.get_by_label("Packages").fill("vim\n")
    page.get_by_role("button", name="Create definition").click()
    error = page.locator('[id="error-settings.timezone"]')
    expect(error).to_contain_text("must be an IANA time zone")
    expect(page.locator(".error-summary")).to_be_focused()
    expect(page.get_by_label("Timezone")).to_have_attribute("aria-invalid", "true")
    expect(page.get_by_label("Packages")).to_have_value("vim\n")
    shoot(page, "definition-error")
    page.get_by_label("Timezone").fill("Europe/Berlin")
    page.get_by_role("button", name="Create definition").click()
    expect(page).to_have_url(re.compile(r"/definitions/basics\?notice=definition-created$"))

    page.get_by_role("link", name="Edit settings").click()
    page.get_by_label("Packages").fill("vim\nhtop\n")
    page.get_by_label("Why this change").fill("add htop")
    page.get_by_role("button", name="Save revision").click()
    expect(page.get_by_role("status")).to_have_text("Revision saved and published.")
    page.get_by_role("button", name="Compare the chosen revisions").click()
    expect(page.get_by_role("heading", name="Revision 1 → revision 2")).to_be_visible()
    expect(page.locator(".diff-add")).to_contain_text(["+- htop"])
    shoot(page, "definition-diff")

    page.get_by_role("button", name="Roll back to revision 1").click()
    expect(page.get_by_role("status")).to_contain_text("Rolled back")
    expect(page.locator("#rev-3")).to_contain_text("roll back to revision 1")
    expect(page.locator("#rev-3")).to_contain_text("published")
    shoot(page, "definition")

    page.get_by_role("link", name="Audit", exact=True).click()
    expect(page.get_by_role("cell", name="definition.create")).to_be_visible()
    expect(page.get_by_role("cell", name="definition.save").first).to_be_visible()
    shoot(page, "audit")
    page.get_by_label("Action").fill("module.enable")
    page.get_by_role("button", name="Filter").click()
    expect(page.get_by_role("cell", name="module:north-dental/base")).to_be_visible()
    page.locator("table.audit tbody a").first.click()
    expect(page.get_by_role("heading", name=re.compile(r"^Entry \d+"))).to_be_visible()
    expect(page.locator("dt", has_text="Leaf hash")).to_be_visible()
    shoot(page, "audit-entry")
    page.get_by_role("link", name="Back to the log").click()
    page.get_by_role("link", name="Verify offline").click()
    expect(page.locator("#verifier-key")).to_have_value(re.compile(r"^infracms\.local\+"))


@pytest.fixture
def engine(node_settings: Settings, base_url: str) -> Iterator[Engine]:
    """The served node's database, written from here as an executor would write it."""
    found = make_engine(node_settings)
    yield found
    found.dispose()


def queued_run(engine: Engine) -> uuid.UUID:
    """An organisation with a host, base enabled, a definition, and a plan nobody runs."""
    plugins = Plugins.load()
    with session_scope(engine, write=True) as session:
        organisations.create_organisation(session=session, actor=ADMIN, data={"name": "clinic"})
        host = {"name": "web-1", "address": "198.51.100.10"}
        inventory.create_host(session=session, actor=ADMIN, organisation="clinic", data=host)
        modules.set_available(
            session=session, actor=ADMIN, plugins=plugins, name="base", available=True
        )
        modules.enable_module(
            session=session, actor=ADMIN, plugins=plugins, organisation="clinic", name="base"
        )
        definitions.create_definition(
            session=session,
            actor=ADMIN,
            plugins=plugins,
            organisation="clinic",
            data={"name": "basics", "module": "base", "target": {"host": "web-1"}},
        )
        run = runs.create_run(
            session=session,
            actor=ADMIN,
            plugins=plugins,
            organisation="clinic",
            data={"kind": "plan"},
        )
        run_id = run.id
    with session_scope(engine, write=True) as session:
        assert runs.claim_run(session, run_id=run_id, worker="e2e-test") is not None
    return run_id


def write(
    engine: Engine, run_id: uuid.UUID, first: int, texts: list[tuple[str | None, str]]
) -> None:
    rows = [
        {
            "run_id": run_id,
            "seq": first + offset,
            "event": "runner_on_ok" if status else "playbook_on_task_start",
            "host": "web-1",
            "task": f"task {first + offset}",
            "status": status,
            "changed": status == "changed",
            "stdout": text,
            "data": {},
            "created_at": utcnow(),
        }
        for offset, (status, text) in enumerate(texts)
    ]
    with session_scope(engine, write=True) as session:
        runs.write_events(session, run_id=run_id, rows=rows)


def test_a_run_is_watched_live_as_its_events_arrive(
    page: Page, base_url: str, engine: Engine, watched: list[str]
) -> None:
    run_id = queued_run(engine)
    write(engine, run_id, 1, [(None, "PLAY [clinic] ****"), (None, "TASK [base : packages] ****")])
    log_in(page, base_url)
    page.goto(f"{base_url}/orgs/clinic/runs/{run_id}")
    expect(page.locator("#run-status")).to_have_text("running")
    expect(page.locator("#live-status")).to_contain_text("Following the run live")
    expect(page.locator("#output")).to_contain_text("TASK [base : packages]")

    write(engine, run_id, 3, [("ok", "\r\nok: [web-1]"), ("changed", "changed: [web-1] => tz")])
    expect(page.locator('#output li[data-seq="4"]')).to_contain_text("changed: [web-1]")
    # As the server renders it: the newline ansible starts a line with is not shown.
    live_text = page.locator('#output li[data-seq="3"] pre').evaluate("e => e.textContent")
    assert live_text == "ok: [web-1]"
    expect(page.locator("#live-status")).to_contain_text("4 events so far")
    shoot(page, "run-live")

    with session_scope(engine, write=True) as session:
        recap = {"web-1": {"ok": 2, "changed": 1}}
        runs.finish_run(
            session,
            run_id=run_id,
            status=RunStatus.succeeded,
            rc=0,
            recap=recap,
            stdout_sha256=None,
        )
    expect(page.locator("#run-status")).to_have_text("succeeded")
    expect(page.locator("table.recap")).to_contain_text("changed")
    expect(page.locator("#live-status")).to_have_count(0)
    shoot(page, "run")
    assert Path(SCREENSHOTS / "infracms-run.png").exists()
