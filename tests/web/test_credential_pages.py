"""A key pasted into the credential form is saved as ssh can use it (a browser sends the
textarea's lines with CRLF); the credential page shows its public key, fingerprint and
users, and replaces its secret (audited)."""

from __future__ import annotations

import base64
import json
import re

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import Engine
from sqlmodel import Session, select

from infracms.config import Settings
from infracms.keys import load_keyring
from infracms.models import AuditEntry, Credential
from infracms.services import credentials
from infracms.sshkeys import fingerprint_of_blob
from tests.helpers import make_org
from tests.web.conftest import Site
from tests.web.test_credential_scope_pages import field_errors
from tests.web.test_inventory_pages import GOOD_HOST

PASSPHRASE = "correct-passphrase-7"


def new_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


def openssh_text(key: Ed25519PrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.OpenSSH,
        serialization.NoEncryption(),
    ).decode()


def encrypted_pem(key: Ed25519PrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(PASSPHRASE.encode()),
    ).decode()


def public_line(key: Ed25519PrivateKey) -> str:
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
        .decode()
    )


def fingerprint(key: Ed25519PrivateKey) -> str:
    return fingerprint_of_blob(base64.b64decode(public_line(key).split()[1]))


def stored_secret(engine: Engine, settings: Settings, name: str) -> str:
    with Session(engine) as session:
        row = session.exec(select(Credential).where(Credential.name == name)).one()
        return credentials.reveal(load_keyring(settings), row)


def add_key(admin: Site, name: str, text: str, passphrase: str = "") -> object:
    form = {"name": name, "kind": "ssh_key", "secret_key": text, "passphrase": passphrase}
    return admin.post("/orgs/clinic/credentials/new", form)


def test_a_key_pasted_with_crlf_is_stored_with_lf_and_shows_its_public_key(
    admin: Site, engine: Engine, settings: Settings
) -> None:
    make_org(engine, "clinic")
    key = new_key()
    text = openssh_text(key)  # each call draws a new check number
    pasted = "\r\n" + text.replace("\n", "\r\n") + "\r\n\r\n"
    made = admin.post(
        "/orgs/clinic/credentials/new",
        {"name": "deploy", "kind": "ssh_key", "secret_key": pasted, "passphrase": ""},
    )
    assert made.status_code == 303, made.text
    assert made.headers["location"] == "/orgs/clinic/credentials/deploy?notice=credential-created"
    secret = stored_secret(engine, settings, "deploy")
    assert "\r" not in secret and secret.endswith("-----\n"), repr(secret[-40:])
    assert secret == text
    page = admin.get("/orgs/clinic/credentials/deploy").text
    assert public_line(key) in page
    assert fingerprint(key) in page
    assert "PRIVATE KEY" not in page.replace(
        'placeholder="-----BEGIN OPENSSH PRIVATE KEY-----"', ""
    )


def test_a_key_that_does_not_parse_is_refused_on_its_field(admin: Site, engine: Engine) -> None:
    make_org(engine, "clinic")
    refused = add_key(admin, "deploy", openssh_text(new_key())[:200])
    assert refused.status_code == 422
    assert field_errors(refused.text)["secret"].startswith("is not an SSH private key")


def test_an_encrypted_key_asks_for_its_passphrase_and_is_kept_decrypted(
    admin: Site, engine: Engine, settings: Settings
) -> None:
    make_org(engine, "clinic")
    key = new_key()
    asked = add_key(admin, "deploy", encrypted_pem(key))
    assert asked.status_code == 422
    assert field_errors(asked.text)["passphrase"] == "the key is encrypted: give its passphrase"
    wrong = add_key(admin, "deploy", encrypted_pem(key), "not-it")
    assert field_errors(wrong.text)["passphrase"] == "the key does not open with this passphrase"
    made = add_key(admin, "deploy", encrypted_pem(key), PASSPHRASE)
    assert made.status_code == 303, made.text
    opened = serialization.load_ssh_private_key(
        stored_secret(engine, settings, "deploy").encode(), password=None
    )
    assert public_line(opened) == public_line(key)  # type: ignore[arg-type]


def test_replacing_a_secret_keeps_the_credential_and_is_audited(
    admin: Site, engine: Engine, settings: Settings
) -> None:
    make_org(engine, "clinic")
    old, new = new_key(), new_key()
    add_key(admin, "deploy", openssh_text(old))
    assert (
        admin.post("/orgs/clinic/hosts/new", {**GOOD_HOST, "credential": "deploy"}).status_code
        == 303
    )
    page = admin.get("/orgs/clinic/credentials/deploy").text
    assert re.search(r'<li><a href="/orgs/clinic/hosts/web-1">web-1</a></li>', page)
    new_text = openssh_text(new)
    replaced = admin.post(
        "/orgs/clinic/credentials/deploy/replace", {"secret_key": new_text.replace("\n", "\r\n")}
    )
    assert replaced.status_code == 303, replaced.text
    assert stored_secret(engine, settings, "deploy") == new_text
    assert public_line(new) in admin.get("/orgs/clinic/credentials/deploy").text
    with Session(engine) as session:
        entry = session.exec(
            select(AuditEntry).where(AuditEntry.action == "credential.replace")
        ).one()
    assert json.loads(entry.payload) == {
        "old_fingerprint": fingerprint(old),
        "new_fingerprint": fingerprint(new),
    }
    bad = admin.post("/orgs/clinic/credentials/deploy/replace", {"secret_key": "nope"})
    assert bad.status_code == 422
    assert stored_secret(engine, settings, "deploy") == new_text
