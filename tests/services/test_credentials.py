"""Credentials are sealed at rest, never shown, and survive a key rotation."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlmodel import Session, select

from infracms.config import Settings
from infracms.db import session_scope
from infracms.errors import ConfigurationError, InvalidInput, SecretError
from infracms.keys import Keyring, load_keyring
from infracms.models import AuditEntry, Credential
from infracms.services import credentials
from infracms.services.setup import rotate_secrets
from tests.conftest import ADMIN_PASSWORD
from tests.helpers import ADMIN, make_org, sign_in

PASSWORD = "pa55-Hunter2-unique-marker"


def ssh_key_text() -> str:
    key = Ed25519PrivateKey.generate()
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.OpenSSH,
        serialization.NoEncryption(),
    ).decode()


def store(engine: Engine, settings: Settings, name: str, kind: str, secret: str) -> Credential:
    with session_scope(engine, write=True) as session:
        return credentials.create_credential(
            session=session,
            actor=ADMIN,
            keyring=load_keyring(settings),
            organisation="clinic",
            data={"name": name, "kind": kind, "secret": secret},
        )


def all_bytes(settings: Settings) -> bytes:
    return b"".join(p.read_bytes() for p in settings.data_dir.iterdir() if p.is_file())


def test_secrets_are_sealed_at_rest_and_open_again(settings: Settings, engine: Engine) -> None:
    make_org(engine, "clinic")
    key = ssh_key_text()
    store(engine, settings, "pw", "password", PASSWORD)
    stored_key = store(engine, settings, "deploy", "ssh_key", key)
    assert stored_key.fingerprint and stored_key.fingerprint.startswith("SHA256:")
    engine.dispose()  # flush WAL into the files we read
    everything = all_bytes(settings)
    assert PASSWORD.encode() not in everything
    unique = key.strip().split("\n")[-2]  # the header lines are the same for every Ed25519 key
    assert unique.encode() not in everything
    with Session(engine) as session:
        rows = {c.name: c for c in session.exec(select(Credential))}
        keyring = load_keyring(settings)
        assert credentials.reveal(keyring, rows["pw"]) == PASSWORD
        assert credentials.reveal(keyring, rows["deploy"]) == key
        payloads = " ".join(e.payload for e in session.exec(select(AuditEntry)))
    assert PASSWORD not in payloads and "PRIVATE KEY" not in payloads


def test_key_files_are_private(settings: Settings, engine: Engine) -> None:
    for path in (settings.resolved_secret_key_file, settings.resolved_identity_key_file):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    assert stat.S_IMODE(settings.data_dir.stat().st_mode) == 0o700


def test_a_ciphertext_moved_to_another_row_does_not_open(
    settings: Settings, engine: Engine
) -> None:
    make_org(engine, "clinic")
    a = store(engine, settings, "a", "password", PASSWORD)
    b = store(engine, settings, "b", "password", "other-password-1")
    b.ciphertext = a.ciphertext
    with pytest.raises(SecretError, match="does not authenticate"):
        credentials.reveal(load_keyring(settings), b)


def test_bad_ssh_key_is_refused(settings: Settings, engine: Engine) -> None:
    make_org(engine, "clinic")
    with pytest.raises(InvalidInput) as caught:
        store(engine, settings, "k", "ssh_key", "-----BEGIN OPENSSH PRIVATE KEY-----\nnope\n")
    assert "secret" in caught.value.errors


def test_api_and_pages_never_return_the_secret(
    client: TestClient, settings: Settings, engine: Engine
) -> None:
    sign_in(client, engine, settings, "admin", ADMIN_PASSWORD)
    client.post("/api/v1/orgs", json={"name": "clinic"})
    created = client.post(
        "/api/v1/orgs/clinic/credentials",
        json={"name": "pw", "kind": "password", "secret": PASSWORD},
    )
    assert created.status_code == 201
    assert set(created.json()) >= {"name", "kind", "fingerprint"}
    assert "secret" not in created.json() and "ciphertext" not in created.json()
    for path in ("/api/v1/orgs/clinic/credentials", "/api/v1/orgs/clinic/credentials/pw"):
        body = client.get(path).text
        assert PASSWORD not in body and "ciphertext" not in body and "v1." not in body


def test_rotation_reseals_everything_without_loss(settings: Settings, engine: Engine) -> None:
    make_org(engine, "clinic")
    secrets = {f"c{i}": f"{PASSWORD}-{i}" for i in range(5)}
    for name, secret in secrets.items():
        store(engine, settings, name, "password", secret)
    old = load_keyring(settings)
    report = rotate_secrets(settings, engine)
    new = load_keyring(settings)
    assert report.resealed == 5
    assert new.primary != old.primary and set(new.keys) == {new.primary}
    with Session(engine) as session:
        rows = list(session.exec(select(Credential)))
        for row in rows:
            assert new.sealed_with_primary(row.ciphertext)
            assert credentials.reveal(new, row) == secrets[row.name]
            with pytest.raises(SecretError, match="not in the keyring"):
                credentials.reveal(old, row)
        actions = [e.action for e in session.exec(select(AuditEntry))]
    assert actions[-1] == "secrets.rotate"
    previous = Keyring.from_json(Path(f"{settings.resolved_secret_key_file}.previous").read_text())
    assert previous.primary == old.primary


def test_rotation_that_fails_midway_loses_nothing(
    settings: Settings, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_org(engine, "clinic")
    store(engine, settings, "a", "password", PASSWORD)
    store(engine, settings, "b", "password", PASSWORD + "b")

    calls = {"n": 0}
    real_seal = Keyring.seal

    def failing_seal(self: Keyring, plaintext: str, *, context: str) -> str:
        calls["n"] += 1
        if calls["n"] == 2:
            raise RuntimeError("crash in the middle")
        return real_seal(self, plaintext, context=context)

    monkeypatch.setattr(Keyring, "seal", failing_seal)
    with pytest.raises(RuntimeError):
        rotate_secrets(settings, engine)
    monkeypatch.undo()
    keyring = load_keyring(settings)  # the file on disk now: old and new keys
    with Session(engine) as session:
        for row in session.exec(select(Credential)):
            assert credentials.reveal(keyring, row).startswith(PASSWORD)
    rotate_secrets(settings, engine)  # and a second attempt completes
    keyring = load_keyring(settings)
    assert len(keyring.keys) == 1


def test_rotation_refuses_a_key_from_the_environment(tmp_path: Path) -> None:
    import base64
    import os

    key = base64.b64encode(os.urandom(32)).decode()
    settings = Settings(data_dir=tmp_path, secret_key=key)
    keyring = load_keyring(settings)
    with pytest.raises(ConfigurationError, match="key file"):
        from infracms.keys import save_keyring

        save_keyring(settings, keyring)
    assert json.loads(Keyring.generate().to_json())["version"] == 1
