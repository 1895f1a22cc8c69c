"""`infracms group|user|token …` run as a user would: a subprocess on a fresh node."""

from __future__ import annotations

import json
import os
import pwd
from pathlib import Path

import pytest
from sqlmodel import Session, select

from infracms.config import Settings
from infracms.db import make_engine
from infracms.models import AuditEntry
from tests.test_cli import cli_runner


@pytest.fixture
def cli(tmp_path: Path):  # type: ignore[no-untyped-def]
    return cli_runner(tmp_path)


def _entries(tmp_path: Path, action: str) -> list[AuditEntry]:
    engine = make_engine(Settings(data_dir=tmp_path / "var"))
    with Session(engine) as session:
        found = list(session.exec(select(AuditEntry).where(AuditEntry.action == action)).all())
    engine.dispose()
    return found


def test_groups_from_the_readme_and_their_hosts(cli) -> None:  # type: ignore[no-untyped-def]
    assert cli("init").returncode == 0
    assert cli("org", "create", "clinic").returncode == 0
    unknown = cli("host", "add", "clinic", "web1", "198.51.100.10", "--group", "web")
    assert unknown.returncode == 2 and "no such groups: web" in unknown.stderr
    assert cli("group", "add", "clinic", "web").stdout == "added group web\n"
    made = cli("group", "add", "clinic", "web-eu", "--parent", "web", "--var", "tier=2")
    assert made.stdout == "added group web-eu inside web\n"
    added = cli("host", "add", "clinic", "web1", "198.51.100.10", "--group", "web")
    assert added.returncode == 0, added.stderr
    assert cli("host", "add", "clinic", "web2", "198.51.100.11").returncode == 0
    moved = cli("group", "add-hosts", "clinic", "web-eu", "web2", "web1")
    assert moved.stdout == "added to web-eu: web1, web2\n"
    assert cli("group", "list", "clinic").stdout == "web\t-\t1 hosts\nweb-eu\tin web\t2 hosts\n"
    shown = json.loads(cli("group", "show", "clinic", "web", "--json").stdout)
    assert shown["children"] == ["web-eu"] and shown["hosts"] == ["web1"]
    refused = cli("group", "remove", "clinic", "web")
    assert refused.returncode == 5 and "has child groups: web-eu" in refused.stderr
    assert cli("group", "remove-hosts", "clinic", "web-eu", "web1").returncode == 0
    assert cli("group", "edit", "clinic", "web-eu", "--top").returncode == 0
    assert cli("group", "remove", "clinic", "web").stdout == "removed group web\n"
    listed = json.loads(cli("group", "list", "clinic", "--json").stdout)
    assert [(g["name"], g["parent"], g["host_count"]) for g in listed] == [("web-eu", None, 1)]


def test_reset_password_on_the_node_recovers_a_lost_admin_password(  # type: ignore[no-untyped-def]
    cli,
    tmp_path: Path,
) -> None:
    assert cli("init").returncode == 0  # the admin's password was printed once, and lost
    reset = cli("user", "reset-password", "admin")
    assert reset.returncode == 0, reset.stderr
    one_time = reset.stdout.strip()
    assert len(one_time) == 18 and "must be changed at the next sign-in" in reset.stderr
    [entry] = _entries(tmp_path, "user.password_reset")
    os_user = pwd.getpwuid(os.geteuid()).pw_name
    assert (entry.actor_kind, entry.actor_name) == ("system", f"cli:{os_user}")
    assert one_time not in entry.payload and json.loads(entry.payload)["generated"] is True
    changed = cli(
        "--as",
        "admin",
        "user",
        "passwd",
        "--password-stdin",
        stdin=f"{one_time}\nthe-admins-own-password\n",
    )
    assert changed.returncode == 0, changed.stderr
    wrong = cli(
        "--as",
        "admin",
        "user",
        "passwd",
        "--password-stdin",
        stdin=f"{one_time}\nanother-new-password\n",
    )
    assert wrong.returncode == 2 and "current password is wrong" in wrong.stderr


def test_user_lifecycle_and_node_tokens(cli) -> None:  # type: ignore[no-untyped-def]
    assert cli("init").returncode == 0
    assert (
        cli("user", "create", "olga", "--password-stdin", stdin="olga-password-1\n").returncode == 0
    )
    assert cli("user", "edit", "olga", "--display-name", "Olga K").returncode == 0
    assert json.loads(cli("user", "show", "olga", "--json").stdout)["display_name"] == "Olga K"
    assert cli("user", "disable", "olga").stdout == "disabled user olga\n"
    assert json.loads(cli("user", "show", "olga", "--json").stdout)["is_active"] is False
    assert cli("user", "enable", "olga").returncode == 0
    last = cli("user", "disable", "admin")
    assert last.returncode == 5 and "last active node administrator" in last.stderr
    issued = cli("--as", "admin", "token", "issue", "automation", "--node")
    assert issued.returncode == 0 and issued.stdout.startswith("icms_")
    assert "\tautomation\tnode\tactive" in cli("token", "list").stdout
    refused = cli("--as", "olga", "token", "issue", "n", "--node")
    assert refused.returncode == 3 and "only node administrators may" in refused.stderr
    assert cli("user", "delete", "olga", "--yes").stdout == "deleted user olga\n"
    assert "olga" not in cli("user", "list").stdout
