"""`infracms credential add --host/--group`, `credential scope` and `org grant-secret`."""

from __future__ import annotations

import json
from pathlib import Path

from tests.test_cli import cli

__all__ = ["cli"]  # the fixture


def test_credential_scopes_from_the_command_line(cli) -> None:  # type: ignore[no-untyped-def]
    assert cli("init").returncode == 0
    assert cli("org", "create", "clinic").returncode == 0
    assert cli("host", "add", "clinic", "db1", "10.0.0.5").returncode == 0
    added = cli(
        "credential", "add", "clinic", "pg", "--kind", "password", "--host", "db1", stdin="pw-1\n"
    )
    assert added.returncode == 0, added.stderr
    [shown] = json.loads(cli("credential", "list", "clinic", "--json").stdout)
    assert shown["scope"] == {"hosts": ["db1"], "groups": []}
    unknown = cli("credential", "scope", "clinic", "pg", "--group", "nope")
    assert unknown.returncode == 2 and "scope.groups" in unknown.stderr
    lifted = cli("credential", "scope", "clinic", "pg", "--anywhere")
    assert lifted.returncode == 0 and "any host" in lifted.stdout
    [shown] = json.loads(cli("credential", "list", "clinic", "--json").stdout)
    assert shown["scope"] is None


def test_node_admins_grant_and_revoke_secret_sources(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    assert cli("init").returncode == 0
    assert cli("org", "create", "clinic").returncode == 0
    env = cli("org", "grant-secret", "clinic", "--env", "INFRACMS_VAR_DB")
    assert env.returncode == 0, env.stderr
    directory = cli("org", "grant-secret", "clinic", "--file", "clinic/")
    assert directory.returncode == 0, directory.stderr
    grants = json.loads(cli("org", "secret-grants", "clinic", "--json").stdout)
    secrets = (tmp_path / "var" / "secrets").resolve()
    assert [(g["kind"], g["name"]) for g in grants] == [
        ("env", "INFRACMS_VAR_DB"),
        ("file", f"{secrets}/clinic/"),
    ]
    for bad in (["--file", "/etc/shadow"], ["--file", "../secret.key"], ["--env", "HOME"], []):
        refused = cli("org", "grant-secret", "clinic", *bad)
        assert refused.returncode == 2, (bad, refused.stderr)
    assert cli("org", "revoke-secret", "clinic", "--env", "INFRACMS_VAR_DB").returncode == 0
    assert cli("org", "revoke-secret", "clinic", "--env", "INFRACMS_VAR_DB").returncode == 4
    grants = json.loads(cli("org", "secret-grants", "clinic", "--json").stdout)
    assert [g["kind"] for g in grants] == ["file"]
