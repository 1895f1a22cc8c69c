"""Catalog sync on the pages: each peer's copy held, last success, last attempt and why it
failed, whether the copy is stale (Peers, a peer), and offerings from a stale copy
marked as such (Catalog)."""

from __future__ import annotations

import html
import re
from datetime import timedelta

from sqlalchemy import Engine
from sqlmodel import select

from infracms.db import session_scope
from infracms.models.federation import PeerCatalog
from infracms.plugins import Plugins
from tests.web.conftest import Site
from tests.web.federation.conftest import PROVIDER, Node, publish
from tests.web.federation.test_peer_pages import accepted


def text(page: str) -> str:
    """A page's text: tags out, entities decoded, spaces collapsed."""
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", page)))


def age_copy(engine: Engine, hours: int) -> None:
    """Make the copy held, and its last sync, `hours` older."""
    with session_scope(engine, write=True) as session:
        row = session.exec(select(PeerCatalog)).one()
        assert row.synced_at is not None and row.fetched_at is not None and row.checked_at
        row.synced_at -= timedelta(hours=hours)
        row.fetched_at -= timedelta(hours=hours)
        row.checked_at -= timedelta(hours=hours)
        session.add(row)
        session.commit()


def test_a_peer_never_synced(admin: Site, provider: Node) -> None:
    accepted(admin, provider)
    listed = text(admin.get("/peers").text)
    assert "no copy held never synced" in listed
    page = text(admin.get(f"/peers/{PROVIDER}").text)
    assert "Copy held None yet: sync its catalog." in page
    assert "Last successful sync never" in page and "Last attempt never" in page


def test_synced_then_unchanged(admin: Site, provider: Node, plugins: Plugins) -> None:
    publish(provider, plugins)
    accepted(admin, provider)
    admin.post("/peers/sync", {})
    listed = admin.get("/peers").text
    assert 'pill pill-ok">updated' in listed and "stale" not in text(listed)
    assert "version 1, 1 offering" in listed
    admin.post("/peers/sync", {})
    page = text(admin.get(f"/peers/{PROVIDER}").text)
    assert "Copy held version 1, 1 offering, fetched " in page
    assert "unchanged the copy held is the peer's catalog" in page
    assert "Stale no" in page and "The copy held is stale" not in page


def test_a_failed_sync_names_why_keeps_the_copy_and_calls_it_stale(
    admin: Site, provider: Node, plugins: Plugins
) -> None:
    publish(provider, plugins)
    accepted(admin, provider)
    admin.post("/peers/sync", {})
    provider.network.clients.pop(PROVIDER)  # a.test is down
    admin.post("/peers/sync", {})
    listed = admin.get("/peers").text
    assert 'pill pill-warn">stale' in listed and 'pill pill-bad">failed' in listed
    assert "Stale: the last sync failed: unreachable." in text(listed)
    assert "last success: " in listed
    page = admin.get(f"/peers/{PROVIDER}").text
    words = text(page)
    assert "The copy held is stale : the last sync failed: unreachable." in words
    assert "failed unreachable PeerUnreachable: " in words
    assert "The last good copy was kept." in words
    assert "version 1, 1 offering" in words
    catalog = admin.get("/catalog").text
    assert "stale copy</span>" in catalog
    assert (
        f"{PROVIDER} : its offerings come from a stale copy of its catalog, version 1 fetched "
        in text(catalog)
    )
    assert "the last sync failed: unreachable (PeerUnreachable: " in text(catalog)


def test_a_copy_no_sync_confirmed_lately_is_stale(
    admin: Site, engine: Engine, provider: Node, plugins: Plugins
) -> None:
    publish(provider, plugins)
    accepted(admin, provider)
    admin.post("/peers/sync", {})
    age_copy(engine, 2)
    reason = "no sync has confirmed it for 2 hours"
    assert f"Stale: {reason}." in text(admin.get("/peers").text)
    assert f"stale {reason}" in text(admin.get(f"/peers/{PROVIDER}").text)
    catalog = text(admin.get("/catalog").text)
    assert f": {reason}. Prices and places left may have changed since." in catalog
    admin.post("/peers/sync", {})  # the peer answers 304: the copy is confirmed again
    assert "stale" not in text(admin.get("/catalog").text)
    assert "Stale no" in text(admin.get(f"/peers/{PROVIDER}").text)


def test_a_suspended_peers_copy_is_hidden_not_stale(
    admin: Site, provider: Node, plugins: Plugins
) -> None:
    publish(provider, plugins)
    accepted(admin, provider)
    admin.post("/peers/sync", {})
    admin.post(f"/peers/{PROVIDER}/suspend", {})
    listed = text(admin.get("/peers").text)
    assert "hidden while the peer is suspended" in listed and "Stale:" not in listed
    page = text(admin.get(f"/peers/{PROVIDER}").text)
    assert "(hidden while the peer is suspended)" in page
    assert "Stale not shown while the peer is suspended" in page
