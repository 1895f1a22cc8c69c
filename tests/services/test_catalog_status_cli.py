"""`infracms catalog status` and `infracms peer list`: each peer's catalog sync at the
command line (typer's CliRunner, in process, on b.example's data directory)."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from datetime import timedelta

import pytest
from sqlmodel import select
from typer.testing import CliRunner, Result

from infracms.cli import app
from infracms.cli import common as cli_common
from infracms.config import get_settings
from infracms.db import session_scope
from infracms.errors import NotFound
from infracms.models.federation import PeerCatalog
from infracms.services.federation import sync
from tests.helpers import ADMIN
from tests.support.apps import AppPool
from tests.witness.nodes import Network, Node, pin, started_node

Run = Callable[..., Result]


@pytest.fixture
def nodes(app_pool: AppPool) -> Iterator[tuple[Node, Node]]:
    """b.example peered with a.example (synced once) and c.example (never synced)."""
    network = Network()
    with (
        started_node(app_pool, "a.example", network) as a,
        started_node(app_pool, "b.example", network) as b,
        started_node(app_pool, "c.example", network) as c,
    ):
        for one, other in ((a, b), (b, a), (b, c)):
            pin(one, other)
        sync_b(b)
        yield a, b


def sync_b(b: Node) -> None:
    with session_scope(b.engine, write=True) as session:
        sync.sync_catalogs(session=session, actor=ADMIN, ctx=b.ctx, peer="a.example")


@pytest.fixture
def cli(nodes: tuple[Node, Node], monkeypatch: pytest.MonkeyPatch) -> Iterator[Run]:
    """Run `infracms ARGS` as b.example's administrator, configured by the environment."""
    _, b = nodes
    for name in [name for name in os.environ if name.startswith("INFRACMS_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("INFRACMS_DATA_DIR", str(b.settings.data_dir))
    monkeypatch.setenv("INFRACMS_NODE_NAME", b.name)
    monkeypatch.setenv("INFRACMS_BASE_URL", b.settings.base_url)
    get_settings.cache_clear()
    cli_common.engine.cache_clear()
    runner = CliRunner()

    def run(*args: str) -> Result:
        return runner.invoke(app, list(args))

    yield run
    if cli_common.engine.cache_info().currsize:
        cli_common.engine().dispose()
    cli_common.engine.cache_clear()
    get_settings.cache_clear()


def test_catalog_status_shows_each_peers_copy_and_last_sync(cli: Run) -> None:
    done = cli("catalog", "status")
    assert done.exit_code == 0, done.output
    synced, never = done.stdout.split("c.example (active)\n")
    assert synced.startswith("a.example (active)\n")
    assert "  held:          version 1, 0 offerings, fetched " in synced
    assert "  last attempt:  " in synced and ", updated\n" in synced
    assert "  stale:         no\n" in synced
    assert never == (
        "  held:          none\n"
        "  last success:  never\n"
        "  last attempt:  never\n"
        "  stale:         no\n"
    )


def test_a_failed_sync_is_named_and_check_fails_on_a_stale_copy(
    cli: Run, nodes: tuple[Node, Node]
) -> None:
    _, b = nodes
    assert cli("catalog", "status", "--check").exit_code == 0
    b.network.clients.pop("a.example")
    sync_b(b)
    done = cli("catalog", "status", "a.example", "--check")
    assert done.exit_code == 1
    assert ", failed: unreachable (PeerUnreachable: " in done.stdout
    assert "  stale:         yes, the last sync failed: unreachable\n" in done.stdout
    assert "c.example" not in done.stdout


def test_catalog_status_as_json(cli: Run, nodes: tuple[Node, Node]) -> None:
    _, b = nodes
    with session_scope(b.engine, write=True) as session:
        row = session.exec(select(PeerCatalog)).one()
        assert row.synced_at is not None and row.fetched_at is not None
        row.synced_at -= timedelta(hours=2)
        row.fetched_at -= timedelta(hours=2)
        session.add(row)
        session.commit()
    done = cli("catalog", "status", "--json")
    assert done.exit_code == 0, done.output
    a, c = json.loads(done.stdout)
    assert (a["peer"], a["version"], a["offerings"], a["outcome"]) == ("a.example", 1, 0, "updated")
    assert a["stale"] and a["stale_reason"] == "no sync has confirmed it for 2 hours"
    assert (c["peer"], c["outcome"], c["stale"]) == ("c.example", None, False)


def test_an_unknown_peer_is_not_found(cli: Run) -> None:
    done = cli("catalog", "status", "nobody.example")
    assert isinstance(done.exception, NotFound)


def test_peer_list_says_how_each_catalog_sync_stands(cli: Run, nodes: tuple[Node, Node]) -> None:
    _, b = nodes
    lines = cli("peer", "list").stdout.splitlines()
    assert lines[0].startswith("a.example  active  https://a.example  keys=1  ")
    assert lines[0].endswith("catalog: v1 (0 offerings), last sync updated")
    assert lines[1].endswith("catalog: never synced")
    b.network.clients.pop("a.example")
    sync_b(b)
    lines = cli("peer", "list").stdout.splitlines()
    assert lines[0].endswith("catalog: v1 (0 offerings), last sync failed: unreachable, STALE")
    listed = json.loads(cli("peer", "list", "--json").stdout)
    assert [(p["name"], p["catalog"]["outcome"]) for p in listed] == [
        ("a.example", "failed"),
        ("c.example", None),
    ]
    assert listed[0]["keys"] and listed[0]["catalog"]["failure"] == "unreachable"
