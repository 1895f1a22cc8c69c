"""Peers (node admins): invitations shown once, accepting one (field errors for a bad
token, nothing changed), key fingerprints, syncing catalogs now, and suspending,
resuming and revoking a peer after a confirmation."""

from __future__ import annotations

import html
import re

from sqlalchemy import Engine

from infracms.config import Settings
from infracms.models import Role
from infracms.models.federation import Peer, PeerInvitation
from infracms.plugins import Plugins
from tests.helpers import count
from tests.web.conftest import Site
from tests.web.federation.conftest import PROVIDER, Node, invite, publish
from tests.web.test_definition_pages import field_errors
from tests.web.test_people_pages import signed_in

TOKEN_RE = re.compile(r'id="invitation-token" class="mono" value="([^"]+)"')


def accepted(admin: Site, provider: Node) -> None:
    """Accept an invitation of `provider` through the page."""
    response = admin.post("/peers/accept", {"token": invite(provider)})
    assert response.status_code == 303, response.text
    assert response.headers["location"] == f"/peers/{PROVIDER}?notice=peer-accepted"


def test_peers_and_usage_are_for_admins(
    admin: Site, other_site: Site, engine: Engine, settings: Settings
) -> None:
    admin.post("/orgs", {"name": "clinic", "title": ""})
    nav = admin.get("/").text
    assert 'href="/catalog"' in nav and 'href="/peers"' in nav
    assert '<a href="/usage">Usage</a>' in admin.get("/peers").text  # a tab of Peers
    owner = signed_in(other_site, engine, settings, "olga", clinic=Role.owner)
    nav = owner.get("/").text
    assert 'href="/catalog"' in nav and 'href="/peers"' not in nav and 'href="/usage"' not in nav
    for url in ("/peers", f"/peers/{PROVIDER}", "/usage", "/usage/export?format=csv"):
        assert owner.get(url).status_code == 403, url
    assert owner.post("/peers/invitations", {"valid_hours": "72"}).status_code == 403
    assert owner.post("/peers/sync", {}).status_code == 403
    assert count(engine, PeerInvitation) == 0


def test_an_invitation_token_is_shown_once_with_a_copy_button(admin: Site, engine: Engine) -> None:
    page = admin.post("/peers/invitations", {"valid_hours": "48"})
    assert page.status_code == 200
    assert page.headers["cache-control"] == "no-store"
    token = TOKEN_RE.search(page.text)
    assert token and len(token.group(1)) > 40
    assert 'data-copy="invitation-token"' in page.text
    assert "This is the only time the token is shown" in page.text
    assert count(engine, PeerInvitation) == 1
    assert token.group(1) not in admin.get("/peers").text


def test_a_wrong_expiry_is_shown_beside_its_field(admin: Site, engine: Engine) -> None:
    for given, message in (("0", "must be 1 to 720"), ("soon", "must be a whole number of hours")):
        page = admin.post("/peers/invitations", {"valid_hours": given})
        assert page.status_code == 422
        assert field_errors(page.text) == {"valid_hours": message}
    assert count(engine, PeerInvitation) == 0


def test_accepting_an_invitation_pins_the_peers_key(admin: Site, provider: Node) -> None:
    accepted(admin, provider)
    page = admin.get(f"/peers/{PROVIDER}?notice=peer-accepted").text
    assert "Invitation accepted" in page
    assert provider.ctx.key.key_id in page and provider.ctx.key.public_key_b64 in page
    listed = admin.get("/peers").text
    assert f'href="/peers/{PROVIDER}"' in listed and 'pill-ok">active' in listed
    assert provider.ctx.key.key_id in listed  # the fingerprint, in the list too
    assert "it invited us" in listed


def test_a_bad_token_is_refused_beside_its_field_with_nothing_changed(
    admin: Site, engine: Engine, provider: Node
) -> None:
    page = admin.post("/peers/accept", {"token": "not-a-token"})
    assert page.status_code == 422
    assert set(field_errors(page.text)) == {"token"}
    assert 'aria-invalid="true"' in page.text and "not-a-token" in page.text
    page = admin.post("/peers/accept", {"token": ""})
    assert field_errors(page.text) == {"token": "paste the token the other node made"}
    assert count(engine, Peer) == 0


def test_a_second_invitation_from_a_peer_is_refused(
    admin: Site, engine: Engine, provider: Node
) -> None:
    accepted(admin, provider)
    page = admin.post("/peers/accept", {"token": invite(provider)})
    assert page.status_code == 409
    assert "is already a peer (revoked peers stay listed)" in page.text
    assert count(engine, Peer) == 1


def test_sync_now_reports_each_peer_and_the_catalog_held(
    admin: Site, provider: Node, plugins: Plugins
) -> None:
    publish(provider, plugins)
    accepted(admin, provider)
    page = admin.post("/peers/sync", {}).text
    assert re.search(
        rf"<strong>{re.escape(PROVIDER)}</strong>:\s*<span class=\"pill pill-ok\">updated</span> version 1",
        page,
    )
    assert "version 1, 1 offering" in page
    page = admin.post("/peers/sync", {}).text
    assert re.search(r"<span class=\"pill\">unchanged</span> version 1", page)


def test_a_peer_that_is_down_is_reported_and_its_catalog_kept(
    admin: Site, provider: Node, plugins: Plugins
) -> None:
    publish(provider, plugins)
    accepted(admin, provider)
    admin.post("/peers/sync", {})
    provider.network.clients.pop(PROVIDER)
    page = html.unescape(admin.post("/peers/sync", {}).text)
    assert "failed</span> PeerUnreachable" in page and "(version 1 kept)" in page
    catalog = html.unescape(admin.get("/catalog").text)
    assert "come from a stale copy" in catalog and "Hosted web space" in catalog


def test_suspend_resume_and_revoke_after_a_confirmation(
    admin: Site, engine: Engine, provider: Node, plugins: Plugins
) -> None:
    publish(provider, plugins)
    accepted(admin, provider)
    admin.post("/peers/sync", {})
    admin.post("/orgs", {"name": "clinic", "title": ""})
    confirm = admin.get(f"/peers/{PROVIDER}/suspend")
    assert confirm.status_code == 200
    assert f'action="/peers/{PROVIDER}/suspend"' in confirm.text
    assert admin.post(f"/peers/{PROVIDER}/suspend", {}, csrf="").status_code == 403
    response = admin.post(f"/peers/{PROVIDER}/suspend", {})
    assert response.headers["location"] == f"/peers/{PROVIDER}?notice=peer-suspended"
    assert 'pill-warn">suspended' in admin.get(f"/peers/{PROVIDER}").text
    assert "Hosted web space" not in admin.get("/catalog").text
    assert admin.post(f"/peers/{PROVIDER}/resume", {}).status_code == 303
    assert "Hosted web space" in admin.get("/catalog").text
    assert 'button-primary">Resume peer' in admin.get(f"/peers/{PROVIDER}/resume").text
    assert admin.post(f"/peers/{PROVIDER}/revoke", {}).status_code == 303
    page = admin.get(f"/peers/{PROVIDER}").text
    assert 'pill-bad">revoked' in page and provider.ctx.key.key_id not in page
    refused = admin.post(f"/peers/{PROVIDER}/resume", {})
    assert refused.status_code == 409
    assert "can only peer again by a new invitation" in refused.text
    assert admin.get(f"/peers/{PROVIDER}/promote").status_code == 400


def test_an_invitation_made_elsewhere_is_listed_and_revoked_and_its_token_then_refused(
    admin: Site, engine: Engine, provider: Node
) -> None:
    token = invite(provider)  # as `infracms peer invite` on the provider makes it
    page = provider.admin.get("/peers").text
    (row,) = re.findall(r'<tr id="invitation-([^"]+)">(.*?)</tr>', page, re.S)
    invitation_id, cells = row
    assert "open" in cells and "Revoke" in cells
    revoked = provider.admin.post(f"/peers/invitations/{invitation_id}/revoke", {})
    assert revoked.status_code == 303, revoked.text
    page = provider.admin.get(revoked.headers["location"]).text
    assert "Invitation revoked" in page and "ended" in page
    again = provider.admin.post(f"/peers/invitations/{invitation_id}/revoke", {})
    assert again.status_code == 409 and "ended already" in html.unescape(again.text)
    refused = admin.post("/peers/accept", {"token": token})
    assert refused.status_code == 422
    assert count(engine, Peer) == 0
