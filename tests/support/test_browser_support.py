"""The browser fixtures and `live_server`, against pages served on loopback."""

from __future__ import annotations

import functools
import json
import textwrap
import threading
import time
import urllib.request
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, expect
from pydantic import SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from tests.support.server import LiveServerError, live_server, settings_env

pytestmark = pytest.mark.e2e

BUTTON_PAGE = """<!doctype html>
<html><head><title>support check</title></head>
<body>
  <button id="go" onclick="document.getElementById('out').textContent = 'clicked'">Go</button>
  <p id="out">waiting</p>
</body></html>
"""

# A stand-in for `python -m infracms serve`: serves /healthz with what it was configured
# with, and leaves a child process in its group, which live_server must end too.
FAKE_SERVER = """
import json, os, subprocess, sys
from http.server import BaseHTTPRequestHandler, HTTPServer

args = sys.argv[1:]
assert args[0] == "serve", args
host, port = args[args.index("--host") + 1], int(args[args.index("--port") + 1])
child = subprocess.Popen(["sleep", "300"])
with open(os.environ["FAKE_CHILD_PID_FILE"], "w") as out:
    out.write(f"{os.getpid()} {child.pid}")
if os.environ.get("FAKE_MODE") == "exit":
    print("refusing to serve: bad settings", flush=True)
    sys.exit(3)
if os.environ.get("FAKE_MODE") == "mute":
    child.wait()

class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        seen = {k: v for k, v in os.environ.items() if k.startswith("INFRACMS_")}
        body = json.dumps({"status": "ok", "env": seen}).encode()
        self.send_response(200 if self.path == "/healthz" else 404)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass

HTTPServer((host, port), Handler).serve_forever()
"""


class QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def static_site(tmp_path: Path) -> Iterator[str]:
    """Serve tmp_path over HTTP on loopback from a thread; yield the base URL."""
    (tmp_path / "index.html").write_text(BUTTON_PAGE)
    handler = functools.partial(QuietHandler, directory=str(tmp_path))
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


@pytest.fixture
def fake_module(tmp_path: Path) -> dict[str, str]:
    """A `python -m fakecms serve` stand-in; returns the env that makes it importable."""
    package = tmp_path / "fakecms"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "__main__.py").write_text(textwrap.dedent(FAKE_SERVER))
    return {
        "PYTHONPATH": str(tmp_path),
        "FAKE_CHILD_PID_FILE": str(tmp_path / "pids"),
    }


class DemoSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="INFRACMS_")

    environment: str = "development"
    data_dir: Path = Path("var")
    secret_key: SecretStr | None = None
    listen_port: int = 8000
    broker_url: str | None = None


def alive(pid: int) -> bool:
    """True while `pid` runs (a zombie counts as ended)."""
    try:
        status = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return status.rsplit(")", 1)[1].split()[0] != "Z"


def wait_until_gone(pid: int, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not alive(pid):
            return True
        time.sleep(0.05)
    return False


def test_page_clicks_a_button(page: Page, static_site: str) -> None:
    page.goto(f"{static_site}/index.html")
    expect(page).to_have_title("support check")
    expect(page.locator("#out")).to_have_text("waiting")
    page.click("#go")
    expect(page.locator("#out")).to_have_text("clicked")


def test_each_page_has_a_fresh_context(page: Page, static_site: str) -> None:
    assert page.context.cookies() == [], "a previous test's cookies leaked into this context"
    page.goto(f"{static_site}/index.html")
    page.context.add_cookies([{"name": "seen", "value": "1", "url": static_site}])
    assert [cookie["name"] for cookie in page.context.cookies()] == ["seen"]


def test_settings_env_from_a_settings_object() -> None:
    settings = DemoSettings(secret_key=SecretStr("s3cret"), listen_port=9000)
    env = settings_env(settings)
    assert env == {
        "INFRACMS_ENVIRONMENT": "development",
        "INFRACMS_DATA_DIR": str(Path("var").absolute()),
        "INFRACMS_SECRET_KEY": "s3cret",
        "INFRACMS_LISTEN_PORT": "9000",
    }, "unset (None) fields must be left out, secrets revealed, paths made absolute"


def test_live_server_serves_then_ends_its_process_group(
    fake_module: dict[str, str], page: Page, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("INFRACMS_NODE_NAME", "leaked.example")  # must not reach the child
    settings = DemoSettings(secret_key=SecretStr("s3cret"))
    with live_server(settings, env=fake_module, module="fakecms") as base_url:
        assert base_url.startswith("http://127.0.0.1:")
        with urllib.request.urlopen(f"{base_url}/healthz", timeout=5) as response:
            seen = json.load(response)["env"]
        page.goto(f"{base_url}/healthz")
        expect(page.locator("body")).to_contain_text('"status": "ok"')
        server_pid, child_pid = map(
            int, Path(fake_module["FAKE_CHILD_PID_FILE"]).read_text().split()
        )
        assert alive(server_pid) and alive(child_pid)
    port = base_url.rsplit(":", 1)[1]
    assert seen["INFRACMS_SECRET_KEY"] == "s3cret"
    assert seen["INFRACMS_LISTEN_PORT"] == port and seen["INFRACMS_LISTEN_HOST"] == "127.0.0.1"
    assert seen["INFRACMS_BASE_URL"] == base_url
    assert "INFRACMS_NODE_NAME" not in seen, "the caller's INFRACMS_* variables leaked"
    assert not alive(server_pid), f"server {server_pid} still running after live_server exited"
    assert wait_until_gone(child_pid), f"child {child_pid} of the server's group survived"


def test_live_server_reports_a_server_that_exits(fake_module: dict[str, str]) -> None:
    env = {**fake_module, "FAKE_MODE": "exit"}
    with (
        pytest.raises(LiveServerError, match=r"exited with 3(.|\n)*refusing to serve"),
        live_server({}, env=env, module="fakecms"),
    ):
        pytest.fail("live_server yielded for a server that exited")
    _, child_pid = map(int, Path(fake_module["FAKE_CHILD_PID_FILE"]).read_text().split())
    assert wait_until_gone(child_pid), f"child {child_pid} survived a failed start"


def test_live_server_gives_up_on_a_silent_server(fake_module: dict[str, str]) -> None:
    env = {**fake_module, "FAKE_MODE": "mute"}
    started = time.monotonic()
    with (
        pytest.raises(LiveServerError, match=r"/healthz did not answer 200 in 1 s"),
        live_server({}, env=env, module="fakecms", timeout=1.0),
    ):
        pytest.fail("live_server yielded for a server that never answered")
    assert time.monotonic() - started < 15
    server_pid, child_pid = map(int, Path(fake_module["FAKE_CHILD_PID_FILE"]).read_text().split())
    assert not alive(server_pid) and wait_until_gone(child_pid)
