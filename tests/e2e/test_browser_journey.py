"""The sysadmin's whole journey in real Chromium, on real test hosts, typed only into the
browser: log in with the password `infracms init` printed, create an organisation, paste
an OpenSSH key into the credential form (sent with CRLF), add a host with no key, scan it
and pin its fingerprint, bootstrap a second host that only has a root password, make a
module available and enable it, define it through the generated form, plan (the diff),
apply (followed live), see nothing needing attention on the dashboard, find the run in
the audit log and verify the downloaded export offline.

Each step's screenshot is written as NN-step.png to infracms-journey/ in the browser tests'
screenshot folder, $INFRACMS_SCREENSHOTS (default /tmp): /tmp/infracms-journey/01-login.png
and on, never into the repository; a run replaces the previous run's.
"""

from __future__ import annotations

import re
import secrets
import subprocess
import sys
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page, Request, expect

from infracms.config import Settings
from infracms.sshkeys import host_key_fingerprint
from tests.e2e.conftest import init_node
from tests.e2e.test_browser_content import watched  # noqa: F401 (fixture)
from tests.e2e.test_browser_foundation import SCREENSHOTS
from tests.support.hosts import HostFactory, TestHost
from tests.support.server import live_server

pytestmark = [pytest.mark.e2e, pytest.mark.integration, pytest.mark.slow]

JOURNEY = SCREENSHOTS / "infracms-journey"
RUN_MS = 300_000  # a run on a test host takes tens of seconds; a stuck one fails here
PRINTED = re.compile(r"admin account created: user 'admin', password (\S+)")


class Camera:
    """Numbered full-page screenshots of the journey's steps."""

    def __init__(self, page: Page) -> None:
        self.page, self.count = page, 0
        JOURNEY.mkdir(parents=True, exist_ok=True)
        for old in JOURNEY.glob("[0-9][0-9]-*.png"):
            old.unlink()

    def __call__(self, step: str) -> None:
        self.count += 1
        path = JOURNEY / f"{self.count:02d}-{step}.png"
        self.page.screenshot(path=str(path), full_page=True)


@pytest.fixture
def fresh_node(tmp_path: Path) -> Settings:
    """A node whose admin password is generated (and printed) by `infracms init`."""
    return Settings(data_dir=tmp_path / "data", argon2_time_cost=1, argon2_memory_kib=1024)


@pytest.fixture
def printed_password(fresh_node: Settings) -> str:
    """`infracms init` run as a new user runs it; the password it prints."""
    printed = init_node(fresh_node)
    found = PRINTED.search(printed)
    assert found, f"init printed no admin password:\n{printed}"
    return found.group(1)


@pytest.fixture
def node_url(fresh_node: Settings, printed_password: str) -> Iterator[str]:
    with live_server(fresh_node) as url:
        yield url


@pytest.fixture
def hosts(host_factory: HostFactory) -> tuple[TestHost, TestHost]:
    """web-1 for the main path (root logs in with the pool's key); web-2 only has a
    one-time root password, as a provider hands a new machine over."""
    web1, web2 = host_factory(2)
    web2.run("rm -f /root/.ssh/authorized_keys")
    return web1, web2


def test_the_sysadmins_journey(
    page: Page,
    node_url: str,
    printed_password: str,
    hosts: tuple[TestHost, TestHost],
    tmp_path: Path,
    watched: list[str],  # noqa: F811
) -> None:
    web1, web2 = hosts
    password = f"root-{secrets.token_urlsafe(12)}"
    web2.allow_password_login(password)
    shot = Camera(page)
    base = node_url
    org = f"{base}/orgs/clinic"

    # 1. Log in with the password init printed.
    page.goto(f"{base}/login")
    page.get_by_label("User name").fill("admin")
    page.get_by_label("Password").fill(printed_password)
    shot("login")
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(f"{base}/")
    shot("dashboard-empty")

    # 2. An organisation.
    page.get_by_role("link", name="New organisation").click()
    page.get_by_label("Short name").fill("clinic")
    page.get_by_role("button", name="Create organisation").click()
    expect(page).to_have_url(org)
    shot("organisation")

    # 3. A credential: the OpenSSH key pasted into the form, sent by the browser with CRLF.
    page.goto(f"{org}/credentials/new")
    page.get_by_label("Name", exact=True).fill("deploy")
    page.get_by_label("Private key").fill(web1.key_path.read_text())
    shot("credential-form")
    with page.expect_request(re.compile(r"/credentials/new$")) as sent:
        page.get_by_role("button", name="Store credential").click()
    assert "\r\n" in _form_field(sent.value, "secret_key"), "the browser sent no CRLF"
    expect(page).to_have_url(re.compile(r"/orgs/clinic/credentials/deploy\?"))
    public = " ".join(web1.key_path.with_suffix(".pub").read_text().split()[:2])
    expect(page.locator("#public-key")).to_have_value(re.compile("^" + re.escape(public)))
    shot("credential")

    # 4. A host with no key: runs are blocked until one is pinned.
    _add_host(page, org, "web-1", web1.address, credential="deploy")
    expect(page.locator("#run-blocked")).to_contain_text("No host key is pinned yet")
    expect(page.get_by_role("button", name="Plan host web-1")).to_be_disabled()
    shot("host-unpinned")

    # 5. Scan, see the host's SHA256 fingerprint, pin it.
    page.get_by_role("link", name="Scan host key").click()
    presented = host_key_fingerprint(web1.host_key)
    assert presented.startswith("SHA256:")
    expect(page.locator("#presented-fingerprint")).to_have_text(presented)
    shot("host-scan")
    page.get_by_role("button", name=f"Pin {presented}").click()
    expect(page).to_have_url(f"{org}/hosts/web-1?notice=host-key-pinned")
    expect(page.get_by_text(presented).first).to_be_visible()
    shot("host-pinned")

    # 6. A second host with only a one-time root password: bootstrapped from its key page.
    _add_host(page, org, "web-2", web2.address, credential=None)
    page.get_by_role("link", name="Scan host key").click()
    second = host_key_fingerprint(web2.host_key)
    expect(page.locator("#presented-fingerprint")).to_have_text(second)
    page.get_by_role("textbox", name="One-time password").fill(password)
    shot("bootstrap-form")
    page.get_by_role("button", name="Bootstrap").click()
    expect(page.locator("#bootstrap-result")).to_have_text("Bootstrap succeeded")
    expect(page.locator("#pinned-fingerprint")).to_have_text(second)
    expect(page.locator("#bootstrap-output")).to_contain_text("failed=0")
    shot("bootstrap-done")
    installed = web2.run("cat /root/.ssh/authorized_keys").stdout
    assert "ssh-" in installed, "the node's key was not installed on web-2"

    # 7. A module made available on the node, enabled in the organisation.
    page.goto(f"{base}/modules")
    page.get_by_role("button", name="Make available base", exact=True).click()
    expect(page.locator("#module-base")).to_contain_text("available")
    shot("node-modules")
    page.locator("main").get_by_role("link", name="clinic", exact=True).click()
    expect(page).to_have_url(f"{org}/modules")
    page.get_by_role("button", name="Enable base").click()
    expect(page.locator("#module-base")).to_contain_text("enabled")
    shot("org-modules")

    # 8. A definition through the generated form.
    page.goto(f"{org}/definitions")
    page.get_by_role("link", name="New definition").click()
    page.get_by_role("link", name="Base system").click()
    page.get_by_label("Name", exact=True).fill("basics")
    page.get_by_label("Applies to").select_option("host:web-1")
    page.get_by_label("Timezone").fill("Europe/Berlin")
    page.get_by_label("Unattended upgrades").uncheck()
    shot("definition-form")
    page.get_by_role("button", name="Create definition").click()
    expect(page).to_have_url(re.compile(r"/definitions/basics\?notice=definition-created$"))
    shot("definition")
    page.goto(f"{base}/")
    expect(page.locator(".concern-never_applied")).to_contain_text("web-1")
    shot("dashboard-never-applied")

    # 9. Plan: the diff of what would change.
    page.goto(f"{org}/hosts/web-1")
    page.get_by_role("button", name="Plan host web-1").click()
    expect(page).to_have_url(re.compile(r"/orgs/clinic/runs/[0-9a-f-]+$"))
    expect(page.locator("#run-status")).to_have_text("succeeded", timeout=RUN_MS)
    expect(page.locator("#changes-title")).to_be_visible()
    expect(page.locator("pre.diff").first).to_contain_text("Europe/Berlin")
    shot("plan-diff")
    assert web1.run("cat /etc/timezone").stdout.strip() != "Europe/Berlin"

    # 10. Apply, followed live until it ends.
    page.goto(f"{org}/hosts/web-1")
    streams: list[str] = []
    page.on("request", lambda sent: streams.append(sent.url) if "/stream" in sent.url else None)
    page.get_by_role("button", name="Apply host web-1").click()
    expect(page).to_have_url(re.compile(r"/orgs/clinic/runs/[0-9a-f-]+$"))
    run_id = page.url.rsplit("/", 1)[1]
    expect(page.locator("#output li").first).to_be_visible(timeout=RUN_MS)
    shot("apply-live")
    expect(page.locator("#run-status")).to_have_text("succeeded", timeout=RUN_MS)
    assert streams, "the run page did not follow the run live"
    assert all(url.endswith(f"/api/v1/orgs/clinic/runs/{run_id}/stream") for url in streams)
    shot("apply-done")
    assert web1.run("cat /etc/timezone").stdout.strip() == "Europe/Berlin"

    # 11. The dashboard: web-1 is in sync, nothing needs attention.
    page.goto(f"{base}/")
    attention = page.locator("section.attention")
    expect(attention).to_contain_text("Nothing needs attention")
    for standing in ("never_applied", "out_of_date", "failed", "unreachable", "no_key"):
        expect(attention.locator(f".concern-{standing}")).to_have_count(0)
    shot("dashboard-in-sync")

    # 12. The run in the audit log, found by a filter.
    page.get_by_role("link", name="Audit", exact=True).click()
    page.get_by_label("Subject").fill(f"run:clinic/{run_id[:8]}*")  # the id the run page shows
    page.get_by_role("button", name="Filter").click()
    rows = page.locator("table.audit tbody tr")
    expect(rows).to_have_count(3)
    expect(rows.nth(2)).to_contain_text("run.apply")
    expect(rows.nth(2)).to_contain_text("admin")
    expect(rows.nth(1)).to_contain_text("run.start")
    expect(rows.nth(0)).to_contain_text("run.finish")
    expect(rows).to_contain_text([f"run:clinic/{run_id}"] * 3)
    finished = int(rows.nth(0).locator("th").inner_text())  # its index in the log
    shot("audit-run")
    page.get_by_role("cell", name="run.finish").locator("xpath=..").locator("a").first.click()
    expect(page.locator("main")).to_contain_text('"status": "succeeded"')
    shot("audit-entry")

    # 13. The latest checkpoint and the export downloaded through the browser, as an
    # auditor keeps them; the export verified offline, as the page says, against the key
    # shown and extending the saved checkpoint.
    page.goto(f"{base}/audit/verify")
    key = page.locator("#verifier-key").input_value()
    shot("audit-verify")
    checkpoint = _download(page, "Download the latest checkpoint", tmp_path)
    export = _download(page, "Download the export", tmp_path)
    assert f"run:clinic/{run_id}" in export.read_text()
    command = ["audit", "verify", export.name, "--key", key, "--trusted", checkpoint.name]
    verified = subprocess.run(
        [sys.executable, "-m", "infracms", *command],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert verified.returncode == 0, f"{verified.stdout}\n{verified.stderr}"
    counted = re.match(r"verified (\d+) entries", verified.stdout)
    assert counted and int(counted.group(1)) > finished, verified.stdout
    assert "extends your trusted checkpoint" in verified.stdout, verified.stdout


def _download(page: Page, link: str, folder: Path) -> Path:
    """What a click on the link downloads, saved under the name the node gave it."""
    with page.expect_download() as download:
        page.get_by_role("link", name=link).click()
    saved = folder / download.value.suggested_filename
    download.value.save_as(saved)
    return saved


def _add_host(page: Page, org: str, name: str, address: str, *, credential: str | None) -> None:
    """The host form, with no host key (it is learnt by a scan)."""
    page.goto(f"{org}/hosts/new")
    page.get_by_label("Name", exact=True).fill(name)
    page.get_by_label("Address").fill(address)
    page.get_by_label("SSH user").fill("root")
    if credential:
        page.get_by_label("Credential").select_option(credential)
    page.get_by_role("button", name="Add host").click()
    expect(page).to_have_url(f"{org}/hosts/{name}?notice=host-created")


def _form_field(request: Request, name: str) -> str:
    """A field of a posted form, as the browser encoded it."""
    return urllib.parse.parse_qs(request.post_data or "")[name][0]
