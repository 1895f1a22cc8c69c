"""Organisations: the tenants of a node, and the secret sources a node admin grants them."""

from __future__ import annotations

import enum
import re
import uuid
from datetime import datetime

from pydantic import field_validator, model_validator
from pydantic.json_schema import SkipJsonSchema
from sqlalchemy import Enum, UniqueConstraint
from sqlmodel import Field, SQLModel

from infracms.models.base import created_field, id_field
from infracms.models.validators import Text200, check_given, check_name, name_field, text_field


class OrganisationBase(SQLModel):
    name: str = name_field(description="short unique name, e.g. `clinic-north`")
    title: str = text_field("", max_length=200)


class OrganisationCreate(OrganisationBase):
    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        return check_name(value)


class OrganisationUpdate(SQLModel):
    title: Text200 | SkipJsonSchema[None] = None

    _not_null = field_validator("title", mode="before")(check_given)


class Organisation(OrganisationBase, table=True):
    id: uuid.UUID = id_field()
    name: str = Field(max_length=63, unique=True, index=True)
    created_at: datetime = created_field()


class OrganisationPublic(OrganisationBase):
    id: uuid.UUID
    created_at: datetime


class SecretSourceKind(enum.StrEnum):
    """Where a secret reference reads from: a worker's variable or a file on the node."""

    env = "env"
    file = "file"


ENV_NAME_RE = re.compile(r"INFRACMS_VAR_[A-Z0-9_]+")


class SecretGrantCreate(SQLModel):
    """A name an organisation's definitions may refer to with ``$env`` or ``$file``: an
    exact ``INFRACMS_VAR_*`` variable; an exact file path, or a directory (ending in
    ``/``) whose files all may be read, under the node's ``secrets/``."""

    kind: SecretSourceKind
    name: str = Field(min_length=1, max_length=1024)

    @model_validator(mode="after")
    def _name(self) -> SecretGrantCreate:
        if "\x00" in self.name or "\n" in self.name:
            raise ValueError("name must be one line")
        if self.kind is SecretSourceKind.env and not ENV_NAME_RE.fullmatch(self.name):
            raise ValueError("an $env grant names one INFRACMS_VAR_* variable (A-Z, 0-9, _)")
        return self


class SecretGrant(SQLModel, table=True):
    __tablename__ = "secret_grant"
    __table_args__ = (UniqueConstraint("organisation_id", "kind", "name"),)

    id: uuid.UUID = id_field()
    organisation_id: uuid.UUID = Field(
        foreign_key="organisation.id", index=True, ondelete="CASCADE"
    )
    kind: SecretSourceKind = Field(sa_type=Enum(SecretSourceKind, native_enum=False, length=8))
    name: str = Field(max_length=1024)
    created_at: datetime = created_field()


class SecretGrantPublic(SQLModel):
    kind: SecretSourceKind
    name: str
    created_at: datetime
