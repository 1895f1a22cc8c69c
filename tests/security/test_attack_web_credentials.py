"""A viewer reads a credential's page looking for its secret, and an editor and a viewer
try to replace the secret with a key of their own (then every run would log in with
their key, or fail). The page shows the public key only; replacing is refused to all but
owners and operators, and an operator's replacement is audited with both fingerprints
and no secret."""

from __future__ import annotations

import base64
import json

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi import FastAPI
from sqlmodel import Session, select

from infracms.config import Settings
from infracms.db import session_scope
from infracms.keys import load_keyring
from infracms.models import AuditEntry, Credential, Role
from infracms.services import credentials
from tests.helpers import ADMIN, make_org, make_user, password_of
from tests.web.conftest import Site, app, plugins, settings, site  # noqa: F401 (fixtures)

pytestmark = pytest.mark.security


def _key_text() -> str:
    return (
        Ed25519PrivateKey.generate()
        .private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.OpenSSH,
            serialization.NoEncryption(),
        )
        .decode()
    )


def _body(key: str) -> str:
    """The base64 lines of a private key: what must never show."""
    return "".join(key.strip().splitlines()[1:-1])


def _seed_forms(key: str) -> list[str]:
    """The 32-byte private seed of an Ed25519 key, in base64 and hex."""
    private = serialization.load_ssh_private_key(key.encode(), None)
    seed = private.private_bytes(  # type: ignore[union-attr]
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )
    return [base64.b64encode(seed).decode().rstrip("="), seed.hex()]


@pytest.fixture
def clinic(app: FastAPI, settings: Settings) -> str:  # noqa: F811
    """The organisation's key credential `deploy`; its private key text is returned."""
    make_org(app.state.engine, "clinic")
    for name, role in (
        ("viewer", Role.viewer),
        ("editor", Role.editor),
        ("operator", Role.operator),
    ):
        make_user(app.state.engine, settings, name, clinic=role)
    key = _key_text()
    with session_scope(app.state.engine, write=True) as session:
        credentials.create_credential(
            session=session,
            actor=ADMIN,
            keyring=load_keyring(settings),
            organisation="clinic",
            data={"name": "deploy", "kind": "ssh_key", "secret": key},
        )
    return key


def _stored(app: FastAPI, settings: Settings) -> str:  # noqa: F811
    with Session(app.state.engine) as session:
        row = session.exec(select(Credential)).one()
        return credentials.reveal(load_keyring(settings), row)


def test_a_viewer_sees_the_public_key_and_never_the_secret(
    site: Site,  # noqa: F811
    clinic: str,
) -> None:
    site.login("viewer", password_of("viewer"))
    page = site.get("/orgs/clinic/credentials/deploy")
    assert page.status_code == 200
    public = serialization.load_ssh_private_key(clinic.encode(), None).public_key()
    line = public.public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    assert line.decode() in page.text
    assert "PRIVATE KEY" not in page.text  # a viewer has no form, so no placeholder either
    assert _body(clinic) not in page.text
    for shown in _seed_forms(clinic):
        assert shown not in page.text, "the private key's seed is on the page"
    assert "Replace the secret" not in page.text
    listed = site.get("/orgs/clinic/credentials").text
    assert "PRIVATE KEY" not in listed and _body(clinic) not in listed


@pytest.mark.parametrize("who", ["viewer", "editor"])
def test_a_viewer_or_editor_cannot_replace_the_secret(
    site: Site,  # noqa: F811
    app: FastAPI,  # noqa: F811
    settings: Settings,  # noqa: F811
    clinic: str,
    who: str,
) -> None:
    site.login(who, password_of(who))
    refused = site.post("/orgs/clinic/credentials/deploy/replace", {"secret_key": _key_text()})
    assert refused.status_code == 403, refused.text
    assert _stored(app, settings) == clinic


def test_an_operator_replaces_it_audited_without_the_secret(
    site: Site,  # noqa: F811
    app: FastAPI,  # noqa: F811
    settings: Settings,  # noqa: F811
    clinic: str,
) -> None:
    site.login("operator", password_of("operator"))
    new = _key_text()
    done = site.post("/orgs/clinic/credentials/deploy/replace", {"secret_key": new})
    assert done.status_code == 303, done.text
    assert _stored(app, settings) == new
    with Session(app.state.engine) as session:
        entry = session.exec(
            select(AuditEntry).where(AuditEntry.action == "credential.replace")
        ).one()
    payload = json.loads(entry.payload)
    assert set(payload) == {"old_fingerprint", "new_fingerprint"}
    assert payload["old_fingerprint"] != payload["new_fingerprint"]
    assert entry.actor_name == "operator", entry.actor_name
    for secret in (clinic, new):
        assert "PRIVATE" not in entry.payload and _body(secret) not in entry.payload
        for shown in _seed_forms(secret):
            assert shown not in entry.payload
