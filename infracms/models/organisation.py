"""Organisations: the tenants of a node."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import field_validator
from sqlmodel import Field, SQLModel

from infracms.models.base import created_field, id_field
from infracms.models.validators import check_name


class OrganisationBase(SQLModel):
    name: str = Field(max_length=63, description="short unique name, e.g. `clinic-north`")
    title: str = Field(default="", max_length=200)


class OrganisationCreate(OrganisationBase):
    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        return check_name(value)


class OrganisationUpdate(SQLModel):
    title: str | None = Field(default=None, max_length=200)


class Organisation(OrganisationBase, table=True):
    id: uuid.UUID = id_field()
    name: str = Field(max_length=63, unique=True, index=True)
    created_at: datetime = created_field()


class OrganisationPublic(OrganisationBase):
    id: uuid.UUID
    created_at: datetime
