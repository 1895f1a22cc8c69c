"""`users`: people's accounts on a host.

Accounts with a shell, supplementary groups, exactly the SSH keys listed, and sudo
with or without a password; accounts listed as absent are removed with their home.
"""

from __future__ import annotations

import base64
import binascii
import re
from pathlib import Path
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from infracms.hookspecs import hookimpl
from infracms.modules.contract import Module, ModuleSettings, SecretRef
from infracms.modules.fields import AbsolutePath, UnixName, refuse_duplicates

KEY_TYPES = (
    "ssh-ed25519",
    "ssh-rsa",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
    "sk-ssh-ed25519@openssh.com",
    "sk-ecdsa-sha2-nistp256@openssh.com",
)
KEY_COMMENT_RE = re.compile(r"^[\x20-\x7e]{0,200}$")
GECOS_RE = re.compile(r"^[^:\n\r\x00]{0,100}$")
SYSTEM_NAMES = frozenset(
    {
        "root",
        "daemon",
        "bin",
        "sys",
        "sync",
        "games",
        "man",
        "lp",
        "mail",
        "news",
        "uucp",
        "proxy",
        "www-data",
        "backup",
        "list",
        "irc",
        "gnats",
        "nobody",
        "_apt",
        "sshd",
        "postgres",
        "messagebus",
        "systemd-network",
        "systemd-resolve",
        "systemd-timesync",
        "nginx",
    }
)


def _public_key(value: str) -> str:
    """An OpenSSH public key line `type base64 [comment]`, without options."""
    words = value.strip().split(maxsplit=2)
    if len(words) < 2 or words[0] not in KEY_TYPES:
        raise ValueError(
            f"expected an OpenSSH public key 'TYPE BASE64 [comment]' with TYPE one of "
            f"{', '.join(KEY_TYPES)}"
        )
    try:
        blob = base64.b64decode(words[1], validate=True)
    except binascii.Error as exc:
        raise ValueError(f"the {words[0]} key is not valid base64") from exc
    kind = words[0].encode()
    if blob[:4] != len(kind).to_bytes(4, "big") or blob[4 : 4 + len(kind)] != kind:
        raise ValueError(f"the key data is not a {words[0]} key")
    if len(words) == 3 and not KEY_COMMENT_RE.fullmatch(words[2]):
        raise ValueError("the key comment must be printable ASCII on one line")
    return " ".join(words)


PublicKey = Annotated[str, AfterValidator(_public_key)]


class UserAccount(BaseModel):
    """One account and what it may do."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, validate_default=True)

    name: UnixName = Field(description="login name")
    comment: str = Field(default="", description="full name or purpose (GECOS)")
    shell: AbsolutePath = Field(default="/bin/bash", description="login shell")
    groups: list[UnixName] = Field(
        default_factory=list, max_length=50, description="supplementary groups (must exist)"
    )
    ssh_keys: list[PublicKey] = Field(
        default_factory=list,
        max_length=50,
        description="the SSH public keys that may log in: authorized_keys holds exactly these",
    )
    sudo: Literal["none", "password", "nopassword"] = Field(
        default="none", description="sudo rights: none, with the user's password, or without"
    )
    password_hash: SecretRef | None = Field(
        default=None,
        description="a crypt(3) password hash (mkpasswd -m yescrypt); none: leave the password",
    )
    uid: int | None = Field(
        default=None, ge=1000, le=59999, description="user id (blank: next free)"
    )

    @field_validator("name")
    @classmethod
    def _not_system(cls, value: str) -> str:
        if value in SYSTEM_NAMES or value.startswith("systemd-"):
            raise ValueError(f"{value!r} is a system account, not a person's")
        return value

    @field_validator("comment")
    @classmethod
    def _comment(cls, value: str) -> str:
        if not GECOS_RE.fullmatch(value):
            raise ValueError("must be at most 100 characters on one line, without ':'")
        return value


class UsersSettings(ModuleSettings):
    """Settings of the `users` module."""

    users: list[UserAccount] = Field(
        default_factory=list, max_length=500, description="accounts to create and keep as described"
    )
    absent: list[UnixName] = Field(
        default_factory=list, max_length=500, description="accounts to remove, with their home"
    )

    @field_validator("users")
    @classmethod
    def _unique_users(cls, value: list[UserAccount]) -> list[UserAccount]:
        refuse_duplicates((user.name for user in value), "user names")
        refuse_duplicates((str(user.uid) for user in value if user.uid is not None), "uids")
        return value

    @field_validator("absent")
    @classmethod
    def _absent(cls, value: list[str], info: ValidationInfo) -> list[str]:
        refuse_duplicates(value, "absent names")
        system = sorted(SYSTEM_NAMES & set(value))
        if system:
            raise ValueError(f"system accounts cannot be removed: {', '.join(system)}")
        present = {user.name for user in info.data.get("users", [])}
        both = sorted(present & set(value))
        if both:
            raise ValueError(f"listed both as users and as absent: {', '.join(both)}")
        return value


class Users(Module):
    """Accounts, SSH keys and sudo rights."""

    name = "users"
    version = "1.0.0"
    title = "Users"
    description = (
        "People's accounts: shell, groups, SSH authorized keys, sudo rights; "
        "removes the accounts listed as absent."
    )
    settings = UsersSettings
    role = Path(__file__).parent / "role"


@hookimpl
def register_modules() -> list[type[Module]]:
    """Return the Module classes this package provides."""
    return [Users]
