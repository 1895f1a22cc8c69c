"""The users module: accounts, keys, sudo; the authorized_keys and sudoers templates."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from infracms.modules.users.module import Users, UsersSettings
from tests.modules.ansible import render
from tests.modules.conftest import errors_of, refused_field
from tests.modules.samples import ED25519, sample

ROLE = Path(Users.role)


def with_user(**fields: Any) -> dict[str, Any]:
    return {"users": [{"name": "alice", **fields}]}


def test_defaults() -> None:
    settings = UsersSettings.model_validate(with_user())
    (alice,) = settings.users
    assert (alice.shell, alice.groups, alice.ssh_keys, alice.sudo) == ("/bin/bash", [], [], "none")
    assert alice.password_hash is None and settings.absent == []


def test_sample_is_valid_and_keys_are_normalised() -> None:
    settings = UsersSettings.model_validate(with_user(ssh_keys=[f"  {ED25519}  "]))
    assert settings.users[0].ssh_keys == [ED25519]
    UsersSettings.model_validate(sample("users"))


@pytest.mark.parametrize(
    ("user", "location"),
    [
        ({"name": "Alice"}, "users.0.name"),
        ({"name": "root"}, "users.0.name"),
        ({"comment": "a:b"}, "users.0.comment"),
        ({"shell": "bash"}, "users.0.shell"),
        ({"groups": ["sudo", "Bad Group"]}, "users.0.groups.1"),
        ({"ssh_keys": ["ssh-ed25519 not*base64"]}, "users.0.ssh_keys.0"),
        ({"ssh_keys": ["ssh-rsa " + ED25519.split()[1]]}, "users.0.ssh_keys.0"),
        ({"ssh_keys": ['command="rm -rf /" ' + ED25519]}, "users.0.ssh_keys.0"),
        ({"sudo": "always"}, "users.0.sudo"),
        ({"password_hash": "$6$salt$hash"}, "users.0.password_hash"),
        ({"password_hash": {"$file": "relative/path"}}, "users.0.password_hash"),
        ({"uid": 0}, "users.0.uid"),
        ({"home": "/root"}, "users.0.home"),
    ],
)
def test_bad_accounts_are_refused(user: dict[str, Any], location: str) -> None:
    errors = errors_of(UsersSettings, with_user(**user))
    assert location in errors, errors


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"users": [{"name": "bob"}, {"name": "bob"}]}, "users"),
        ({"users": [{"name": "bob", "uid": 1001}, {"name": "eve", "uid": 1001}]}, "users"),
        ({"users": [{"name": "bob"}], "absent": ["bob"]}, "absent"),
        ({"absent": ["root"]}, "absent"),
        ({"absent": ["eve", "eve"]}, "absent"),
    ],
)
def test_inconsistent_lists_are_refused(data: dict[str, Any], field: str) -> None:
    assert refused_field(UsersSettings, data) == field


def test_password_hash_is_a_secret_reference() -> None:
    settings = UsersSettings.model_validate(with_user(password_hash={"$credential": "alice"}))
    assert settings.users[0].password_hash == {"$credential": "alice"}


def test_authorized_keys_hold_exactly_the_keys(tmp_path: Path) -> None:
    item = {"name": "alice", "ssh_keys": [ED25519, ED25519.replace("alice@laptop", "phone")]}
    text = render(ROLE, "authorized_keys.j2", {"item": item}, tmp_path)
    assert [line for line in text.splitlines() if not line.startswith("#")] == item["ssh_keys"]


@pytest.mark.parametrize(
    ("sudo", "line"),
    [("password", "alice ALL=(ALL:ALL) ALL"), ("nopassword", "alice ALL=(ALL:ALL) NOPASSWD: ALL")],
)
def test_sudoers_line(sudo: str, line: str, tmp_path: Path) -> None:
    text = render(ROLE, "sudoers.j2", {"item": {"name": "alice", "sudo": sudo}}, tmp_path)
    assert text.splitlines()[-1] == line
