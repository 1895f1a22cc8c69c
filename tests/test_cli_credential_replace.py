"""`infracms credential replace` and POST …/credentials/{name}/secret give a credential a
new secret (same name, scope, hosts), parsed and normalised like one being added."""

from __future__ import annotations

import json
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from infracms.config import Settings
from tests.conftest import ADMIN_PASSWORD
from tests.helpers import make_org, sign_in
from tests.test_cli import cli  # noqa: F401 (fixture)


def _key() -> str:
    return (
        Ed25519PrivateKey.generate()
        .private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.OpenSSH,
            serialization.NoEncryption(),
        )
        .decode()
    )


def test_the_cli_replaces_a_key_and_refuses_what_does_not_parse(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    assert cli("init").returncode == 0
    assert cli("org", "create", "clinic").returncode == 0
    first, second = tmp_path / "first", tmp_path / "second"
    first.write_text(_key())
    second.write_text(_key().replace("\n", "\r\n"))
    added = cli(
        "credential", "add", "clinic", "deploy", "--kind", "ssh_key", "--key-file", str(first)
    )
    assert added.returncode == 0, added.stderr
    replaced = cli("credential", "replace", "clinic", "deploy", "--key-file", str(second))
    assert replaced.returncode == 0, replaced.stderr
    assert "replaced the secret of credential deploy (SHA256:" in replaced.stdout
    shown = json.loads(cli("credential", "list", "clinic", "--json").stdout)[0]
    assert shown["public_key"].startswith("ssh-ed25519 ") and shown["replaced_at"]
    bad = cli("credential", "replace", "clinic", "deploy", stdin="not a key\n")
    assert bad.returncode == 2 and "is not an SSH private key" in bad.stderr


def test_the_api_replaces_a_key_sent_with_crlf(
    client: TestClient, engine: Engine, settings: Settings
) -> None:
    make_org(engine, "clinic")
    sign_in(client, engine, settings, "admin", ADMIN_PASSWORD)
    made = client.post(
        "/api/v1/orgs/clinic/credentials",
        json={"name": "deploy", "kind": "ssh_key", "secret": _key().replace("\n", "\r\n")},
    )
    assert made.status_code == 201, made.text
    replaced = client.post(
        "/api/v1/orgs/clinic/credentials/deploy/secret",
        json={"secret": _key().replace("\n", "\r\n")},
    )
    assert replaced.status_code == 200, replaced.text
    body = replaced.json()
    assert body["fingerprint"] != made.json()["fingerprint"]
    assert body["public_key"].startswith("ssh-ed25519 ")
    assert "secret" not in body
    refused = client.post("/api/v1/orgs/clinic/credentials/deploy/secret", json={"secret": "x"})
    assert refused.status_code == 422
