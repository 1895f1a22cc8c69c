"""Hosts and the nested groups they belong to."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import field_validator
from pydantic.json_schema import SkipJsonSchema
from sqlalchemy import UniqueConstraint
from sqlmodel import Field, SQLModel

from infracms.models.base import created_field, id_field, json_field
from infracms.models.run import HostOutcome
from infracms.models.validators import (
    NameStr,
    Text500,
    Variables,
    check_address,
    check_given,
    check_name,
    check_username,
    check_variables,
    name_field,
    text_field,
    username_field,
)
from infracms.sshkeys import normalise_host_key


class HostGroupLink(SQLModel, table=True):
    host_id: uuid.UUID = Field(foreign_key="host.id", primary_key=True, ondelete="CASCADE")
    group_id: uuid.UUID = Field(foreign_key="hostgroup.id", primary_key=True, ondelete="CASCADE")


class HostBase(SQLModel):
    name: str = name_field()
    address: str = Field(min_length=1, max_length=253)
    ssh_port: int = Field(default=22, ge=1, le=65535)
    ssh_user: str = username_field("root")
    host_key: str | None = Field(default=None, max_length=4096)


def _check_host_key(value: str | None) -> str | None:
    return None if value is None or value == "" else normalise_host_key(value)


class HostCreate(HostBase):
    credential: str | None = Field(default=None, max_length=63, description="a credential's name")
    groups: list[NameStr] = Field(default_factory=list, max_length=100)
    variables: Variables = Field(default_factory=dict)

    _name = field_validator("name")(check_name)
    _address = field_validator("address")(check_address)
    _ssh_user = field_validator("ssh_user")(check_username)
    _variables = field_validator("variables")(check_variables)
    _host_key = field_validator("host_key")(_check_host_key)


class HostUpdate(SQLModel):
    # a field left out is None (not validated); an explicit null is refused, and the
    # schema says so (SkipJsonSchema), except for `credential` and `host_key`, where
    # null means "none"
    address: str | SkipJsonSchema[None] = Field(default=None, min_length=1, max_length=253)
    ssh_port: int | SkipJsonSchema[None] = Field(default=None, ge=1, le=65535)
    ssh_user: str | SkipJsonSchema[None] = username_field(None)
    host_key: str | None = Field(default=None, max_length=4096)
    credential: str | None = Field(default=None, max_length=63)
    groups: list[NameStr] | SkipJsonSchema[None] = Field(default=None, max_length=100)
    variables: Variables | SkipJsonSchema[None] = None

    _not_null = field_validator(
        "address", "ssh_port", "ssh_user", "groups", "variables", mode="before"
    )(check_given)
    _address = field_validator("address")(check_address)
    _ssh_user = field_validator("ssh_user")(check_username)
    _variables = field_validator("variables")(check_variables)
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


HostStanding = Literal["unreachable", "failed", "drifted", "out_of_date", "never_applied", "no_key"]


class HostFilter(SQLModel):
    """Which hosts to list: every field narrows the list (all given must hold)."""

    search: str | None = Field(default=None, max_length=63, description="part of the name")
    group: str | None = Field(
        default=None, max_length=63, description="in this group or a group inside it"
    )
    key: Literal["pinned", "missing"] | None = Field(
        default=None, description="with a pinned host key, or without"
    )
    standing: HostStanding | None = Field(
        default=None,
        description="where the host stands after its runs (what the dashboard counts)",
    )


HostSort = Literal[
    "name",
    "-name",
    "address",
    "-address",
    "group",
    "-group",
    "last_outcome",
    "-last_outcome",
    "last_run_at",
    "-last_run_at",
]
"""How to order hosts: by a field, ascending, or descending with a leading `-`. `group` is
a host's first group by name; `last_outcome` ranks the worst first (unreachable, failed,
not reached, changed, ok). Hosts with no value (no group, never run) come last either
way, and hosts that tie are ordered by name, so pages never overlap."""


class HostPublic(HostBase):
    id: uuid.UUID
    organisation_id: uuid.UUID
    credential: str | None
    groups: list[str]
    variables: dict[str, Any]
    host_key_fingerprint: str | None
    created_at: datetime
    last_outcome: HostOutcome | None = Field(
        default=None, description="how the last run that reached it went (null: never run)"
    )
    last_run_at: datetime | None = Field(default=None, description="when that run ended")


class GroupBase(SQLModel):
    name: str = name_field()
    description: str = text_field("", max_length=500)


class GroupCreate(GroupBase):
    parent: str | None = Field(default=None, max_length=63, description="the parent group")
    variables: Variables = Field(default_factory=dict)

    _name = field_validator("name")(check_name)
    _variables = field_validator("variables")(check_variables)


class GroupUpdate(SQLModel):
    description: Text500 | SkipJsonSchema[None] = None
    parent: str | None = Field(
        default=None, max_length=63, description="null: make it a top-level group"
    )
    variables: Variables | SkipJsonSchema[None] = None

    # left out is None (not validated); an explicit null is refused but for `parent`
    _not_null = field_validator("description", "variables", mode="before")(check_given)
    _variables = field_validator("variables")(check_variables)


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
    host_count: int = Field(default=0, description="hosts directly in the group")


class GroupHosts(SQLModel):
    """Hosts to put into a group or take out of it, by name."""

    hosts: list[str] = Field(min_length=1, max_length=1000)
