"""Modules made available and enabled, definitions, and their immutable revisions."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import field_validator, model_validator
from sqlalchemy import UniqueConstraint
from sqlmodel import Field, SQLModel

from infracms.models.base import UTCDateTime, created_field, id_field, json_field
from infracms.models.validators import (
    DB_INT_MAX,
    check_json,
    check_name,
    name_field,
    text_field,
)


class AvailableModule(SQLModel, table=True):
    """A module the node admin has made available to organisations."""

    __tablename__ = "available_module"

    name: str = Field(primary_key=True, max_length=40)
    made_available_at: datetime = created_field()


class EnabledModule(SQLModel, table=True):
    """A module an organisation has enabled, at the version it was enabled at."""

    __tablename__ = "enabled_module"

    organisation_id: uuid.UUID = Field(
        foreign_key="organisation.id", primary_key=True, ondelete="CASCADE"
    )
    name: str = Field(primary_key=True, max_length=40)
    version: str = Field(max_length=40)
    enabled_at: datetime = created_field()


class TargetRef(SQLModel):
    """Where a definition applies: exactly one of a host or a group, by name."""

    host: str | None = Field(default=None, max_length=63)
    group: str | None = Field(default=None, max_length=63)

    @model_validator(mode="after")
    def _exactly_one(self) -> TargetRef:
        if (self.host is None) == (self.group is None):
            raise ValueError("choose a host or a group (one, not both)")
        return self

    @property
    def kind(self) -> Literal["host", "group"]:
        """Whether this is a host or a group."""
        return "host" if self.host is not None else "group"

    @property
    def name(self) -> str:
        """The host's or group's name."""
        return self.host if self.host is not None else str(self.group)


class DefinitionCreate(SQLModel):
    name: str = name_field(description="short unique name in the organisation")
    module: str = Field(max_length=40)
    target: TargetRef
    settings: dict[str, Any] = Field(default_factory=dict)
    description: str = text_field("", max_length=500)
    message: str = text_field("", max_length=500, description="why this change")

    _name = field_validator("name")(check_name)
    _settings = field_validator("settings")(check_json)


class RevisionCreate(SQLModel):
    settings: dict[str, Any]
    message: str = text_field("", max_length=500)
    publish: bool = True

    _settings = field_validator("settings")(check_json)


class Rollback(SQLModel):
    revision: int = Field(
        ge=1, le=DB_INT_MAX, description="the revision whose settings to publish again"
    )
    message: str = text_field("", max_length=500)


class Definition(SQLModel, table=True):
    __table_args__ = (UniqueConstraint("organisation_id", "name"),)

    id: uuid.UUID = id_field()
    organisation_id: uuid.UUID = Field(
        foreign_key="organisation.id", index=True, ondelete="CASCADE"
    )
    name: str = Field(max_length=63)
    module: str = Field(max_length=40, index=True)
    description: str = Field(default="", max_length=500)
    host_id: uuid.UUID | None = Field(default=None, foreign_key="host.id", index=True)
    group_id: uuid.UUID | None = Field(default=None, foreign_key="hostgroup.id", index=True)
    published: int | None = Field(default=None, description="number of the published revision")
    latest: int = 0
    retired_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    created_at: datetime = created_field()


class Revision(SQLModel, table=True):
    __table_args__ = (UniqueConstraint("definition_id", "number"),)

    id: uuid.UUID = id_field()
    definition_id: uuid.UUID = Field(foreign_key="definition.id", index=True, ondelete="CASCADE")
    number: int
    settings: dict[str, Any] = json_field()
    message: str = Field(default="", max_length=500)
    author: str = Field(max_length=200)
    created_at: datetime = created_field()


class RevisionPublic(SQLModel):
    number: int
    settings: dict[str, Any]
    message: str
    author: str
    created_at: datetime
    published: bool


class DefinitionPublic(SQLModel):
    id: uuid.UUID
    name: str
    module: str
    description: str
    target: TargetRef
    published: int | None
    latest: int
    settings: dict[str, Any] | None = Field(description="settings of the published revision")
    retired: bool
    created_at: datetime
