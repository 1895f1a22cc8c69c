"""`infracms run approve|refuse` on a held apply, as its approvers would type them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlmodel import Session

from infracms.config import Settings
from infracms.db import make_engine, session_scope
from infracms.models import Role, Run, RunStatus
from infracms.plugins import Plugins
from infracms.services import approval_policies, definitions, inventory, modules, runs
from tests.helpers import ADMIN, make_org
from tests.services.test_approvals import _people, person
from tests.test_cli import cli_runner

pytestmark = pytest.mark.slow  # a node initialised and four commands: seconds


@pytest.fixture
def cli(tmp_path: Path):  # type: ignore[no-untyped-def]
    return cli_runner(tmp_path)


def test_approvers_approve_and_refuse_from_the_command_line(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    assert cli("init").returncode == 0
    engine = make_engine(Settings(data_dir=tmp_path / "var"))
    plugins = Plugins.load()
    make_org(engine, "clinic")
    with session_scope(engine, write=True) as session:
        modules.set_available(
            session=session, actor=ADMIN, plugins=plugins, name="base", available=True
        )
        modules.enable_module(
            session=session, actor=ADMIN, plugins=plugins, organisation="clinic", name="base"
        )
        inventory.create_group(
            session=session, actor=ADMIN, organisation="clinic", data={"name": "prod"}
        )
        inventory.create_host(
            session=session,
            actor=ADMIN,
            organisation="clinic",
            data={"name": "web1", "address": "198.51.100.1", "groups": ["prod"]},
        )
        definitions.create_definition(
            session=session,
            actor=ADMIN,
            plugins=plugins,
            organisation="clinic",
            data={
                "name": "base-web1",
                "module": "base",
                "target": {"host": "web1"},
                "settings": {"timezone": "UTC"},
            },
        )
    _people(engine, "clinic", {"olga": Role.owner, "oscar": Role.operator, "otto": Role.operator})
    with session_scope(engine, write=True) as session:
        approval_policies.set_policy(
            session=session,
            actor=ADMIN,
            organisation="clinic",
            data={"name": "production", "groups": ["prod"], "approvals_required": 2},
        )
        run = runs.create_run(
            session=session,
            actor=person(engine, "oscar"),
            plugins=plugins,
            organisation="clinic",
            data={"kind": "apply"},
        )
    held = str(run.id)
    own = cli("--as", "oscar", "run", "approve", "clinic", held)
    assert own.returncode != 0 and "someone else" in own.stderr, own
    shown = json.loads(cli("--as", "olga", "run", "approval", "clinic", held).stdout)
    digest = shown["request"]["digest"]
    assert shown["request"]["plan"]["hosts"]["web1"]["settings"]["base"]["timezone"] == "UTC"
    stale = cli("--as", "olga", "run", "approve", "clinic", held, "--digest", "0" * 64)
    assert stale.returncode != 0 and "you reviewed" in stale.stderr, stale
    first = cli(
        "--as", "olga", "run", "approve", "clinic", held, "--comment", "read it", "--digest", digest
    )
    assert first.returncode == 0, first.stderr
    assert "the run is pending_approval" in first.stdout
    silent = cli("--as", "otto", "run", "refuse", "clinic", held)
    assert silent.returncode == 2 and "comment" in silent.stderr, silent
    refused = cli("--as", "otto", "run", "refuse", "clinic", held, "-m", "wrong window")
    assert refused.returncode == 0 and "refused" in refused.stdout, refused.stderr
    with Session(engine) as session:
        ended = session.get(Run, run.id)
        assert ended is not None and ended.status is RunStatus.refused
    engine.dispose()
