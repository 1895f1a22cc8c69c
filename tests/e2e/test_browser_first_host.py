"""First host to first apply in real Chromium, on a real test host: paste an OpenSSH key
into the credential form (the browser sends its lines with CRLF), add a host with no
key, scan it, check and pin the fingerprint, then plan and apply."""

from __future__ import annotations

import re
import time
import urllib.parse
from collections.abc import Iterator

import pytest
from playwright.sync_api import Page, Request, expect
from sqlalchemy import Engine

from infracms.config import Settings
from infracms.db import make_engine, session_scope
from infracms.plugins import Plugins
from infracms.services import definitions, modules
from infracms.sshkeys import host_key_fingerprint
from tests.e2e.test_browser_content import log_in, shoot, watched  # noqa: F401 (fixture)
from tests.helpers import ADMIN
from tests.support.hosts import HostFactory, TestHost

pytestmark = [pytest.mark.e2e, pytest.mark.integration, pytest.mark.slow]

BASE = {"hostname": "clinic-web", "timezone": "Europe/Berlin", "unattended_upgrades": False}
RUN_SECONDS = 300


@pytest.fixture
def engine(node_settings: Settings, base_url: str) -> Iterator[Engine]:
    """The served node's database (the module and its definition are set up here)."""
    found = make_engine(node_settings)
    yield found
    found.dispose()


@pytest.fixture
def host(host_factory: HostFactory) -> TestHost:
    (started,) = host_factory(1)
    return started


def test_paste_a_key_scan_pin_plan_and_apply(
    page: Page,
    base_url: str,
    engine: Engine,
    host: TestHost,
    watched: list[str],  # noqa: F811
) -> None:
    log_in(page, base_url)
    page.goto(f"{base_url}/orgs")
    page.get_by_label("Short name").fill("clinic")
    page.get_by_role("button", name="Create organisation").click()
    expect(page).to_have_url(f"{base_url}/orgs/clinic")

    key_text = host.key_path.read_text()
    public = host.key_path.with_suffix(".pub").read_text().split()[:2]
    page.goto(f"{base_url}/orgs/clinic/credentials/new")
    page.get_by_label("Name", exact=True).fill("deploy")
    page.get_by_label("Private key").fill(key_text)
    with page.expect_request(re.compile(r"/credentials/new$")) as sent:
        page.get_by_role("button", name="Store credential").click()
    assert "\r\n" in _form_field(sent.value, "secret_key"), "the browser sent no CRLF"
    expect(page).to_have_url(re.compile(r"/orgs/clinic/credentials/deploy\?"))
    expect(page.locator("#public-key")).to_have_value(re.compile("^" + re.escape(" ".join(public))))
    shoot(page, "credential")

    page.goto(f"{base_url}/orgs/clinic/hosts/new")
    page.get_by_label("Name", exact=True).fill("web-1")
    page.get_by_label("Address").fill(host.address)
    page.get_by_label("SSH user").fill("root")
    page.get_by_label("Credential").select_option("deploy")
    page.get_by_role("button", name="Add host").click()
    expect(page).to_have_url(f"{base_url}/orgs/clinic/hosts/web-1?notice=host-created")
    _define_base(engine)
    page.reload()
    expect(page.get_by_role("button", name="Plan host web-1")).to_be_disabled()
    expect(page.locator("#run-blocked")).to_contain_text("No host key is pinned yet")
    shoot(page, "host-unpinned")

    page.locator("#run-blocked").get_by_role("link", name="Scan its key").click()
    presented = host_key_fingerprint(host.host_key)
    expect(page.locator("#presented-fingerprint")).to_have_text(presented)
    shoot(page, "host-scan")
    page.get_by_role("button", name=f"Pin {presented}").click()
    expect(page).to_have_url(f"{base_url}/orgs/clinic/hosts/web-1?notice=host-key-pinned")
    expect(page.get_by_text(presented).first).to_be_visible()

    for kind in ("Plan", "Apply"):
        page.get_by_role("button", name=f"{kind} host web-1").click()
        expect(page).to_have_url(re.compile(r"/orgs/clinic/runs/[0-9a-f-]+$"))
        assert _finished(page) == "succeeded", page.locator("main").inner_text()
        shoot(page, f"first-{kind.lower()}")
        page.goto(f"{base_url}/orgs/clinic/hosts/web-1")
    assert host.run("cat /etc/timezone").stdout.strip() == "Europe/Berlin"


def _form_field(request: Request, name: str) -> str:
    """A field of a posted form, as the browser encoded it."""
    return urllib.parse.parse_qs(request.post_data or "")[name][0]


def _define_base(engine: Engine) -> None:
    """`base` made available, enabled and defined for web-1 (its pages are tested apart)."""
    plugins = Plugins.load()
    with session_scope(engine, write=True) as session:
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
            data={
                "name": "basics",
                "module": "base",
                "target": {"host": "web-1"},
                "settings": BASE,
            },
        )


def _finished(page: Page) -> str:
    """The run's status once it ends (the page is reloaded until then)."""
    deadline = time.monotonic() + RUN_SECONDS
    while time.monotonic() < deadline:
        status = page.locator("#run-status").inner_text()
        if status not in ("queued", "running"):
            return status
        page.wait_for_timeout(2000)
        page.reload()
    return page.locator("#run-status").inner_text()
