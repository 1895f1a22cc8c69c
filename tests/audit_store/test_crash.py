"""SIGKILL the server (two worker processes, each with its integrator) while clients
create hosts concurrently: afterwards every committed change has its entry, the
indexes have no gap and no duplicate, and the export verifies offline.

Under load the test once failed on a fresh machine; two things in it depended on the
machine's speed. It killed the server after a fixed 2.5 s and then required more than
50 acknowledged changes, which a loaded 2-core machine does not make in that time. And
it read the database as soon as its clients saw their connections drop, while other
processes of the killed group could still be exiting (SIGKILL takes effect when a
process leaves the kernel): one killed after writing its commit to the WAL but before
publishing it in the WAL index leaves a transaction that a reader sharing that index
does not see, and that the restarted server recovers (its checkpoint then counts more
entries than were read). Now the server is killed once the clients have made enough
changes, however long that takes, and the database is read only when no process of the
group is left.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import httpx
import pytest
from sqlmodel import Session, select

from infracms.audit.checkpoint import open_checkpoint
from infracms.audit.note import Verifier
from infracms.config import Settings
from infracms.db import make_engine, session_scope
from infracms.models import AuditEntry, AuditHead, Host
from infracms.services import auth
from tests.conftest import ADMIN_PASSWORD, make_settings
from tests.support.server import live_server, settings_env

CLIENTS = 8
ENOUGH = 60  # acknowledged changes before the kill
LOAD_LIMIT = 300.0  # seconds: a server that makes no progress fails rather than hangs
GONE_LIMIT = 60.0


def cli(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("INFRACMS_")}
    return subprocess.run(
        [sys.executable, "-m", "infracms", *args],
        env={**env, **settings_env(settings)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def server_group(port: int) -> int:
    """The process group of the `infracms serve` listening on `port` (its leader's pid)."""
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            command = Path(f"/proc/{name}/cmdline").read_bytes().split(b"\0")
            leader = os.getpgid(int(name)) == int(name)
        except OSError:
            continue  # gone meanwhile
        if leader and b"serve" in command and str(port).encode() in command:
            return int(name)
    raise AssertionError(f"no infracms serve process for port {port}")


def sign_in(settings: Settings) -> dict[str, str]:
    engine = make_engine(settings)
    with session_scope(engine, write=True) as session:
        result = auth.login(
            session=session,
            settings=settings,
            username="admin",
            password=ADMIN_PASSWORD,
            client="t",
        )
    engine.dispose()
    return {"cookie": f"infracms_session={result.token}", "x-csrf-token": result.csrf_token}


class Load:
    """Clients creating hosts as fast as they can until the server dies."""

    def __init__(self, base_url: str, headers: dict[str, str]) -> None:
        self.base_url, self.headers = base_url, headers
        self.acknowledged: list[str] = []
        self.statuses: Counter[int] = Counter()
        self.lock = threading.Lock()
        self.enough = threading.Event()

    def client(self, number: int) -> None:
        with httpx.Client(base_url=self.base_url, headers=self.headers, timeout=30) as http:
            for i in range(100_000):
                name = f"c{number}-{i}"
                try:
                    response = http.post(
                        "/api/v1/orgs/clinic/hosts", json={"name": name, "address": "10.0.0.1"}
                    )
                except httpx.TransportError:
                    self.enough.set()  # the server is gone (killed, or failed: then said so)
                    return
                with self.lock:
                    self.statuses[response.status_code] += 1
                    if response.status_code == 201:
                        self.acknowledged.append(name)
                    if len(self.acknowledged) >= ENOUGH or response.status_code != 201:
                        self.enough.set()


def group_members(group: int) -> list[int]:
    """The processes of `group` that still run (zombies hold no file or lock any more)."""
    members = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            stat = Path(f"/proc/{name}/stat").read_text()
        except OSError:
            continue  # gone meanwhile
        state, _parent, pgrp = stat.rsplit(")", 1)[1].split()[:3]
        if int(pgrp) == group and state != "Z":
            members.append(int(name))
    return members


def wait_until_gone(group: int) -> None:
    """Return once every process of the killed `group` has exited (released its locks)."""
    deadline = time.monotonic() + GONE_LIMIT
    while members := group_members(group):
        assert time.monotonic() < deadline, f"killed processes {members} did not exit"
        time.sleep(0.05)


@pytest.mark.slow
def test_sigkill_under_concurrent_changes_loses_no_entry(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "var")
    assert cli(settings, "init").returncode == 0
    assert cli(settings, "org", "create", "clinic").returncode == 0
    headers = sign_in(settings)
    with live_server(settings, extra_args=["--workers", "2"]) as base_url:
        load = Load(base_url, headers)
        clients = [threading.Thread(target=load.client, args=(n,)) for n in range(CLIENTS)]
        for thread in clients:
            thread.start()
        load.enough.wait(LOAD_LIMIT)
        group = server_group(int(base_url.rsplit(":", 1)[1]))
        os.killpg(group, signal.SIGKILL)
        for thread in clients:
            thread.join(timeout=60)
    wait_until_gone(group)
    assert len(load.acknowledged) >= ENOUGH, load.statuses
    assert set(load.statuses) == {201}, load.statuses

    engine = make_engine(settings)
    with Session(engine) as session:
        indexes = list(session.exec(select(AuditEntry.index).order_by(AuditEntry.index)))
        head = session.get(AuditHead, 1)
        hosts = set(session.exec(select(Host.name)))
        created = Counter(
            session.exec(select(AuditEntry.subject).where(AuditEntry.action == "host.create"))
        )
    engine.dispose()
    assert indexes == list(range(len(indexes))), "indexes have a gap or a duplicate"
    assert head is not None and head.size == len(indexes)
    assert set(load.acknowledged) <= hosts, "an acknowledged host is missing"
    assert created == Counter(f"host:clinic/{name}" for name in hosts), (
        "hosts and their host.create entries differ"
    )

    with live_server(settings) as base_url:  # the restarted server integrates what was left
        key = httpx.get(f"{base_url}/api/v1/audit/key").text.strip()
        deadline = time.monotonic() + 10
        while True:
            note = httpx.get(f"{base_url}/api/v1/audit/checkpoint").text
            size = open_checkpoint(note, Verifier.from_key_string(key)).size
            if size == len(indexes) or time.monotonic() > deadline:
                break
            time.sleep(0.1)
    assert size == len(indexes), f"the restarted server signed {size} of {len(indexes)} entries"

    export = tmp_path / "export.jsonl"
    exported = cli(settings, "audit", "export", str(export))
    assert exported.returncode == 0, exported.stderr
    verified = cli(settings, "audit", "verify", str(export), "--key", key)
    assert verified.returncode == 0, verified.stderr
    assert f"verified {len(indexes)} entries" in verified.stdout
