"""The auditor's trust anchor, the node's self check, and who a CLI change is credited to.

The attacker is a node admin with a shell: they hold the database and the node key.
They can rewrite the log and re-sign it so the node key vouches for it; a checkpoint
the auditor saved earlier still catches it. Tampering without re-signing is caught by
the node itself. Changes at the node's command line name a person.
"""

from __future__ import annotations

import getpass
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from infracms.app import create_app
from infracms.audit import store
from infracms.audit.merkle import EMPTY_ROOT
from infracms.db import make_engine
from infracms.services import audit
from tests.security._audit_support import Shell, shell_fixture  # noqa: F401 (fixture)

pytestmark = pytest.mark.security


def resign_everything(shell: Shell) -> None:
    """What the key holder does after changing rows: rebuild the tree, re-sign it all."""
    shell.sql(
        "DELETE FROM audit_hash",
        "DELETE FROM audit_checkpoint",
        f"UPDATE audit_tree SET size = 0, root = x'{EMPTY_ROOT.hex()}'",
    )
    engine = make_engine(shell.settings)
    try:
        store.sign_current(engine, audit.node_signer(shell.settings))
    finally:
        engine.dispose()


def save_checkpoint(shell: Shell, path: Path) -> int:
    """The auditor saves the node's checkpoint, as the audit page tells them to."""
    note = shell.ok("audit", "checkpoint")
    path.write_text(note)
    return int(note.split("\n")[1])


def export(shell: Shell, path: Path) -> str:
    """A fresh export of the node's log; the verifier key."""
    shell.ok("audit", "export", str(path))
    return shell.ok("audit", "key").strip()


def test_a_rewrite_resigned_with_the_node_key_fails_against_the_saved_checkpoint(
    shell: Shell, tmp_path: Path
) -> None:
    shell.ok("host", "add", "clinic", "web1", "198.51.100.1")
    shell.ok("--as", "olga", "host", "add", "clinic", "web2", "198.51.100.2")
    saved = tmp_path / "saved.txt"
    size = save_checkpoint(shell, saved)
    shell.ok("host", "add", "clinic", "web3", "198.51.100.3")

    # hide where web1 pointed: rewrite its entry, then re-sign everything with the node key
    shell.sql(
        "UPDATE audit_entry SET payload = replace(payload, '198.51.100.1', '198.51.100.7') "
        "WHERE action = 'host.create' AND subject LIKE '%/web1'"
    )
    resign_everything(shell)
    assert shell("audit", "check").returncode == 0  # consistent: only an outside anchor tells

    log = tmp_path / "log.jsonl"
    key = export(shell, log)
    plain = shell("audit", "verify", str(log), "--key", key)
    assert plain.returncode == 0, plain.stderr  # the node key alone vouches for the rewrite
    anchored = shell("audit", "verify", str(log), "--key", key, "--trusted", str(saved))
    assert anchored.returncode == 7, (anchored.returncode, anchored.stdout, anchored.stderr)
    assert f"parts from your trusted checkpoint at size {size}" in anchored.stderr
    assert "RFC 9162 consistency proof" in anchored.stderr


def test_a_rollback_resigned_fails_naming_both_sizes(shell: Shell, tmp_path: Path) -> None:
    for number in range(1, 5):
        shell.ok("host", "add", "clinic", f"web{number}", f"198.51.100.{number}")
    saved = tmp_path / "saved.txt"
    size = save_checkpoint(shell, saved)

    # forget the last two changes: truncate the log, set the head back, re-sign
    shell.sql(
        f'DELETE FROM audit_entry WHERE "index" >= {size - 2}',
        f"UPDATE audit_head SET size = {size - 2}",
    )
    resign_everything(shell)

    log = tmp_path / "log.jsonl"
    key = export(shell, log)
    assert shell("audit", "verify", str(log), "--key", key).returncode == 0
    anchored = shell("audit", "verify", str(log), "--key", key, "--trusted", str(saved))
    assert anchored.returncode == 7, (anchored.returncode, anchored.stdout, anchored.stderr)
    assert (
        f"rollback: the export's log has size {size - 2}, but your trusted checkpoint has "
        f"size {size}"
    ) in anchored.stderr


def test_an_honest_log_extends_the_saved_checkpoint(shell: Shell, tmp_path: Path) -> None:
    saved = tmp_path / "saved.txt"
    size = save_checkpoint(shell, saved)
    shell.ok("host", "add", "clinic", "web1", "198.51.100.1")
    log = tmp_path / "log.jsonl"
    key = export(shell, log)
    done = shell.ok("audit", "verify", str(log), "--key", key, "--trusted", str(saved))
    assert f"extends your trusted checkpoint of size {size}" in done


def test_a_row_tampered_without_resigning_stops_the_node_signing(
    shell: Shell, tmp_path: Path
) -> None:
    shell.ok("host", "add", "clinic", "web1", "198.51.100.1")
    shell.ok("audit", "checkpoint")
    shell.sql(
        "UPDATE audit_entry SET actor_name = 'someone-else' "
        "WHERE action = 'host.create' AND subject LIKE '%/web1'"
    )
    index = next(e["index"] for e in entries_of(shell, tmp_path) if e["action"] == "host.create")

    checked = shell("audit", "check")
    assert checked.returncode == 1, (checked.stdout, checked.stderr)
    assert f"entry {index} does not match" in checked.stderr

    shell.ok("host", "add", "clinic", "web2", "198.51.100.2")  # a change after it is recorded…
    refused = shell("audit", "checkpoint")  # …but the node signs nothing over the tamper
    assert refused.returncode != 0 and "no checkpoint is signed" in refused.stderr
    exported = shell("audit", "export", str(tmp_path / "evidence.jsonl"))
    assert exported.returncode == 1 and f"entry {index}" in exported.stderr

    app = create_app(shell.settings)
    with TestClient(app) as client:
        health = client.get("/healthz")
    app.state.engine.dispose()
    assert health.status_code == 503, health.text
    assert health.json()["status"] == "degraded"
    assert "self check failed" in health.json()["audit"]  # which entry: not to anyone


def entries_of(shell: Shell, tmp_path: Path) -> list[dict[str, object]]:
    """Who each stored entry credits, read from the database (nothing is signed)."""
    engine = make_engine(shell.settings)
    try:
        with engine.connect() as connection:
            rows = connection.exec_driver_sql(
                'SELECT "index", action, actor_kind, actor_name, request_id FROM audit_entry '
                'ORDER BY "index"'
            )
            names = ["index", "action", "actor_kind", "actor_name", "request_id"]
            return [dict(zip(names, row, strict=True)) for row in rows]
    finally:
        engine.dispose()


def test_a_cli_change_is_credited_to_the_person(shell: Shell, tmp_path: Path) -> None:
    shell.ok("--as", "olga", "host", "add", "clinic", "web1", "198.51.100.1")
    shell.ok("host", "add", "clinic", "web2", "198.51.100.2")  # no account named like the OS user
    unknown = shell("--as", "mallory", "host", "add", "clinic", "web3", "198.51.100.3")
    assert unknown.returncode == 4 and "no infracms account" in unknown.stderr
    os_user = getpass.getuser()
    shell.ok("user", "create", os_user, "--password-stdin", stdin="a-long-password-here\n")
    # from now on the OS user acts as that account, with its rights only: an admin grants
    refused = shell("member", "set", "clinic", os_user, "operator")
    assert refused.returncode == 3, refused.stderr
    shell.ok("--as", "admin", "member", "set", "clinic", os_user, "operator")
    shell.ok("host", "add", "clinic", "web4", "198.51.100.4")  # the OS user's own account

    created = [e for e in entries_of(shell, tmp_path) if e["action"] == "host.create"]
    credited = [(e["actor_kind"], e["actor_name"], e["request_id"]) for e in created]
    assert credited == [
        ("user", "olga", f"cli:{os_user}"),
        ("system", f"cli:{os_user}", None),
        ("user", os_user, f"cli:{os_user}"),
    ]
