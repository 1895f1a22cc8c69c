"""Credentials: SSH private keys and passwords that hosts are reached with.

The secret itself is only ever stored encrypted (``ciphertext``); the Public shape
carries metadata only.
"""

from __future__ import annotations

import enum
import uuid
from datetime import datetime

from pydantic import SecretStr, field_validator
from sqlalchemy import Enum, UniqueConstraint
from sqlmodel import Field, SQLModel

from infracms.models.base import created_field, id_field
from infracms.models.validators import check_name, check_username


class CredentialKind(enum.StrEnum):
    """What the secret is."""

    ssh_key = "ssh_key"
    password = "password"


class CredentialBase(SQLModel):
    name: str = Field(max_length=63)
    kind: CredentialKind = Field(sa_type=Enum(CredentialKind, native_enum=False, length=16))
    username: str | None = Field(default=None, max_length=32)
    description: str = Field(default="", max_length=500)


class CredentialCreate(CredentialBase):
    secret: SecretStr = Field(description="the private key (OpenSSH or PEM) or the password")

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
        if not value.get_secret_value():
            raise ValueError("must not be empty")
        if len(value.get_secret_value()) > 16384:
            raise ValueError("is longer than 16384 characters")
        return value


class Credential(CredentialBase, table=True):
    __table_args__ = (UniqueConstraint("organisation_id", "name"),)

    id: uuid.UUID = id_field()
    organisation_id: uuid.UUID = Field(
        foreign_key="organisation.id", index=True, ondelete="CASCADE"
    )
    ciphertext: str
    fingerprint: str | None = Field(default=None, max_length=100)
    created_at: datetime = created_field()


class CredentialPublic(CredentialBase):
    id: uuid.UUID
    organisation_id: uuid.UUID
    fingerprint: str | None
    created_at: datetime
