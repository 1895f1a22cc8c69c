"""An editor tries, from the pages, to pin a key of their choosing on a host, to replace
its pinned key, or to bootstrap it with a password: the key decides which machine gets
the organisation's credential, so only owners and operators (host.connect) may. Each try
is refused before the host is even scanned, and changes nothing."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine
from sqlmodel import Session, select

from infracms.db import session_scope
from infracms.models import Role
from infracms.models.host import Host
from infracms.services import inventory
from tests.helpers import ADMIN, audit_size, make_org, make_user, password_of
from tests.web.conftest import Site, app, plugins, settings, site  # noqa: F401 (fixtures)

pytestmark = pytest.mark.security

FINGERPRINT = "SHA256:" + "A" * 43
PINNED = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl"


def _clinic(engine: Engine, settings: object) -> None:  # noqa: F811
    make_org(engine, "clinic")
    make_user(engine, settings, "editor", clinic=Role.editor)
    with session_scope(engine, write=True) as session:
        for name, key in (("fresh", None), ("pinned", PINNED)):
            inventory.create_host(
                session=session,
                actor=ADMIN,
                organisation="clinic",
                data={"name": name, "address": "198.51.100.7", "host_key": key},
            )


def _keys(engine: Engine) -> dict[str, str | None]:
    with Session(engine) as session:
        return {h.name: h.host_key for h in session.exec(select(Host))}


@pytest.fixture
def editor(site: Site, app: object, settings: object) -> Site:  # noqa: F811
    engine = app.state.engine  # type: ignore[attr-defined]
    _clinic(engine, settings)
    assert site.login("editor", password_of("editor")).status_code == 303
    return site


def test_an_editor_cannot_scan_pin_replace_or_bootstrap_from_the_pages(
    editor: Site,
    app: object,  # noqa: F811
) -> None:
    engine = app.state.engine  # type: ignore[attr-defined]
    before, entries = _keys(engine), audit_size(engine)
    for host in ("fresh", "pinned"):
        assert editor.get(f"/orgs/clinic/hosts/{host}/scan").status_code == 403
        pin = editor.post(f"/orgs/clinic/hosts/{host}/host-key", {"fingerprint": FINGERPRINT})
        assert pin.status_code == 403, pin.text
        boot = editor.post(
            f"/orgs/clinic/hosts/{host}/bootstrap",
            {"fingerprint": FINGERPRINT, "password": "hunter2-hunter2"},
        )
        assert boot.status_code == 403, boot.text
        page = editor.get(f"/orgs/clinic/hosts/{host}").text
        assert f"/orgs/clinic/hosts/{host}/scan" not in page
    assert _keys(engine) == before
    assert audit_size(engine) == entries


def test_a_form_post_without_the_csrf_token_pins_nothing(
    editor: Site,
    app: object,  # noqa: F811
) -> None:
    engine = app.state.engine  # type: ignore[attr-defined]
    before = _keys(engine)
    refused = editor.post(
        "/orgs/clinic/hosts/fresh/host-key", {"fingerprint": FINGERPRINT}, csrf=""
    )
    assert refused.status_code == 403
    assert _keys(engine) == before
