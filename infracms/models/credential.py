"""Credentials: SSH private keys and passwords that hosts are reached with.

The secret itself is only ever stored encrypted (``ciphertext``); the Public shape
carries metadata only. A credential may be limited to hosts and groups (its scope):
it is then sent only to those hosts and to the hosts in those groups or in groups
nested in them. No scope means any host of its organisation (what credentials made
before scopes existed keep).
"""

from __future__ import annotations

import enum
import uuid
from datetime import datetime
from typing import Any

from pydantic import SecretStr, field_validator
from pydantic.json_schema import SkipJsonSchema
from sqlalchemy import JSON, Enum, UniqueConstraint
from sqlmodel import Field, SQLModel

from infracms.models.base import UTCDateTime, created_field, id_field
from infracms.models.validators import (
    Text500,
    check_given,
    check_name,
    check_username,
    name_field,
    text_field,
)


class CredentialKind(enum.StrEnum):
    """What the secret is."""

    ssh_key = "ssh_key"
    password = "password"


class CredentialBase(SQLModel):
    name: str = name_field()
    kind: CredentialKind = Field(sa_type=Enum(CredentialKind, native_enum=False, length=16))
    username: str | None = Field(default=None, max_length=32)
    description: str = text_field("", max_length=500)


class CredentialScope(SQLModel):
    """Where a credential may be sent: these hosts, and the hosts in these groups (nested)."""

    hosts: list[str] = Field(default_factory=list, max_length=200)
    groups: list[str] = Field(default_factory=list, max_length=200)

    @field_validator("hosts", "groups")
    @classmethod
    def _names(cls, value: list[str]) -> list[str]:
        return sorted({check_name(name) for name in value})


SCOPE_HELP = "the hosts and groups it may be sent to; none: any host of the organisation"


class CredentialCreate(CredentialBase):
    secret: SecretStr = Field(description="the private key (OpenSSH or PEM) or the password")
    passphrase: SecretStr | None = Field(
        default=None,
        description="an encrypted key's passphrase: the key is opened with it and stored "
        "decrypted (sealed under the node's key); never stored itself",
    )
    scope: CredentialScope | None = Field(default=None, description=SCOPE_HELP)

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        return check_name(value)

    @field_validator("username")
    @classmethod
    def _username(cls, value: str | None) -> str | None:
        return None if value is None else check_username(value)

    @field_validator("secret")
    @classmethod
    def _secret(cls, value: SecretStr) -> SecretStr:
        return check_secret(value)


def check_secret(value: SecretStr) -> SecretStr:
    """A secret is not empty and fits what is sealed."""
    if not value.get_secret_value():
        raise ValueError("must not be empty")
    if len(value.get_secret_value()) > 16384:
        raise ValueError("is longer than 16384 characters")
    return value


class CredentialReplace(SQLModel):
    """A new secret for a credential: same name, kind, scope and hosts (audited)."""

    secret: SecretStr = Field(description="the new private key or password")
    passphrase: SecretStr | None = Field(
        default=None, description="the new key's passphrase, if it is encrypted"
    )

    @field_validator("secret")
    @classmethod
    def _secret(cls, value: SecretStr) -> SecretStr:
        return check_secret(value)


class CredentialUpdate(SQLModel):
    """What may change: the description and the scope (`"scope": null` lifts it)."""

    description: Text500 | SkipJsonSchema[None] = None
    scope: CredentialScope | None = Field(default=None, description=SCOPE_HELP)

    _not_null = field_validator("description", mode="before")(check_given)


class Credential(CredentialBase, table=True):
    __table_args__ = (UniqueConstraint("organisation_id", "name"),)

    id: uuid.UUID = id_field()
    organisation_id: uuid.UUID = Field(
        foreign_key="organisation.id", index=True, ondelete="CASCADE"
    )
    ciphertext: str
    fingerprint: str | None = Field(default=None, max_length=100)
    public_key: str | None = Field(default=None, max_length=16384)
    # {"hosts": [host id], "groups": [group id]}, or None for any host of the organisation;
    # ids, not names, so a host deleted and made again under its name is not let in
    scope: dict[str, Any] | None = Field(default=None, sa_type=JSON(none_as_null=True))
    created_at: datetime = created_field()
    replaced_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class CredentialPublic(CredentialBase):
    id: uuid.UUID
    organisation_id: uuid.UUID
    fingerprint: str | None
    public_key: str | None = Field(default=None, description="an SSH key's OpenSSH public line")
    scope: CredentialScope | None = Field(default=None, description=SCOPE_HELP)
    created_at: datetime
    replaced_at: datetime | None = None
