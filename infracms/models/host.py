"""Hosts and the nested groups they belong to."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import field_validator
from sqlalchemy import UniqueConstraint
from sqlmodel import Field, SQLModel

from infracms.models.base import created_field, id_field, json_field
from infracms.models.validators import (
    check_address,
    check_given,
    check_name,
    check_username,
    check_variables,
    name_field,
    text_field,
)
from infracms.sshkeys import normalise_host_key


class HostGroupLink(SQLModel, table=True):
    host_id: uuid.UUID = Field(foreign_key="host.id", primary_key=True, ondelete="CASCADE")
    group_id: uuid.UUID = Field(foreign_key="hostgroup.id", primary_key=True, ondelete="CASCADE")


class HostBase(SQLModel):
    name: str = name_field()
    address: str = Field(max_length=253)
    ssh_port: int = Field(default=22, ge=1, le=65535)
    ssh_user: str = Field(default="root", max_length=32)
    host_key: str | None = Field(default=None, max_length=4096)


def _check_host_key(value: str | None) -> str | None:
    return None if value is None or value == "" else normalise_host_key(value)


class HostCreate(HostBase):
    credential: str | None = Field(default=None, description="name of a credential")
    groups: list[str] = Field(default_factory=list, max_length=100)
    variables: dict[str, Any] = Field(default_factory=dict)

    _name = field_validator("name")(check_name)
    _address = field_validator("address")(check_address)
    _ssh_user = field_validator("ssh_user")(check_username)
    _variables = field_validator("variables")(check_variables)
    _host_key = field_validator("host_key")(_check_host_key)


class HostUpdate(SQLModel):
    address: str | None = Field(default=None, max_length=253)
    ssh_port: int | None = Field(default=None, ge=1, le=65535)
    ssh_user: str | None = Field(default=None, max_length=32)
    host_key: str | None = Field(default=None, max_length=4096)
    credential: str | None = None
    groups: list[str] | None = Field(default=None, max_length=100)
    variables: dict[str, Any] | None = None

    # a field left out is None by default (not validated); an explicit null is refused,
    # except for `credential` and `host_key`, where null means "none"

    @field_validator("address")
    @classmethod
    def _address(cls, value: str | None) -> str:
        return check_address(check_given(value))

    @field_validator("ssh_user")
    @classmethod
    def _ssh_user(cls, value: str | None) -> str:
        return check_username(check_given(value))

    @field_validator("ssh_port")
    @classmethod
    def _ssh_port(cls, value: int | None) -> int:
        return check_given(value)

    @field_validator("groups")
    @classmethod
    def _groups(cls, value: list[str] | None) -> list[str]:
        return check_given(value)

    @field_validator("variables")
    @classmethod
    def _variables(cls, value: dict[str, Any] | None) -> dict[str, Any]:
        return check_variables(check_given(value))

    _host_key = field_validator("host_key")(_check_host_key)


class Host(HostBase, table=True):
    __table_args__ = (UniqueConstraint("organisation_id", "name"),)

    id: uuid.UUID = id_field()
    organisation_id: uuid.UUID = Field(
        foreign_key="organisation.id", index=True, ondelete="CASCADE"
    )
    credential_id: uuid.UUID | None = Field(default=None, foreign_key="credential.id")
    variables: dict[str, Any] = json_field()
    created_at: datetime = created_field()


class HostPublic(HostBase):
    id: uuid.UUID
    organisation_id: uuid.UUID
    credential: str | None
    groups: list[str]
    variables: dict[str, Any]
    host_key_fingerprint: str | None
    created_at: datetime


class GroupBase(SQLModel):
    name: str = name_field()
    description: str = text_field("", max_length=500)


class GroupCreate(GroupBase):
    parent: str | None = Field(default=None, description="name of the parent group")
    variables: dict[str, Any] = Field(default_factory=dict)

    _name = field_validator("name")(check_name)
    _variables = field_validator("variables")(check_variables)


class GroupUpdate(SQLModel):
    description: str | None = text_field(None, max_length=500)
    parent: str | None = Field(default=None, description="null: make it a top-level group")
    variables: dict[str, Any] | None = None

    # left out is None (not validated); an explicit null is refused but for `parent`
    @field_validator("description")
    @classmethod
    def _description(cls, value: str | None) -> str:
        return check_given(value)

    @field_validator("variables")
    @classmethod
    def _variables(cls, value: dict[str, Any] | None) -> dict[str, Any]:
        return check_variables(check_given(value))


class HostGroup(GroupBase, table=True):
    __table_args__ = (UniqueConstraint("organisation_id", "name"),)

    id: uuid.UUID = id_field()
    organisation_id: uuid.UUID = Field(
        foreign_key="organisation.id", index=True, ondelete="CASCADE"
    )
    parent_id: uuid.UUID | None = Field(default=None, foreign_key="hostgroup.id")
    variables: dict[str, Any] = json_field()
    created_at: datetime = created_field()


class GroupPublic(GroupBase):
    id: uuid.UUID
    organisation_id: uuid.UUID
    parent: str | None
    children: list[str]
    variables: dict[str, Any]
    created_at: datetime
