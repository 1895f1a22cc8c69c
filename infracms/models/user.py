"""People: users, their roles in organisations, web sessions, API tokens, login attempts."""

from __future__ import annotations

import enum
import re
import uuid
from datetime import datetime
from typing import Any

from pydantic import Field as PydanticField
from pydantic import ValidationInfo, field_validator
from sqlalchemy import BigInteger, Enum, UniqueConstraint
from sqlmodel import Field, SQLModel

from infracms.models.base import UTCDateTime, created_field, id_field
from infracms.models.validators import text_field


class Role(enum.StrEnum):
    """What a person may do in one organisation."""

    owner = "owner"
    operator = "operator"
    editor = "editor"
    viewer = "viewer"
    auditor = "auditor"


ROLE_TYPE = Enum(Role, native_enum=False, length=16)

USERNAME_PATTERN = r"^[a-z0-9][a-z0-9_.@-]{1,62}$"
EMAIL_PATTERN = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"


class UserBase(SQLModel):
    username: str = Field(min_length=2, max_length=63, regex=USERNAME_PATTERN)
    display_name: str = text_field("", max_length=200)
    email: str | None = Field(default=None, max_length=254, regex=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


class UserCreate(UserBase):
    password: str = Field(min_length=12, max_length=1024)
    is_admin: bool = False

    @field_validator("username")
    @classmethod
    def _username(cls, value: str) -> str:
        if not re.fullmatch(USERNAME_PATTERN, value):
            raise ValueError(
                "must be 2-63 lower-case letters, digits, '_', '.', '@' or '-', "
                "starting with a letter or digit"
            )
        return value

    @field_validator("email")
    @classmethod
    def _email(cls, value: str | None) -> str | None:
        if value in (None, ""):
            return None
        if not re.fullmatch(EMAIL_PATTERN, str(value)):
            raise ValueError("is not an email address")
        return value

    @field_validator("password")
    @classmethod
    def _not_trivial(cls, value: str) -> str:
        if len(set(value)) < 4:
            raise ValueError("is too simple: use at least four different characters")
        return value


class User(UserBase, table=True):
    id: uuid.UUID = id_field()
    username: str = Field(max_length=63, unique=True, index=True)
    password_hash: str = Field(max_length=512)
    is_admin: bool = False
    is_active: bool = True
    # set by an admin's reset: the one-time password must be replaced at the next sign-in
    password_must_change: bool = False
    # TOTP (services/totp.py): the secret sealed like credentials; it signs in only once
    # enrolment was confirmed by a first code (totp_enabled_at); totp_last_step is the
    # last time step a code was accepted at, so that no code is accepted twice
    totp_sealed: str | None = Field(default=None, max_length=512)
    totp_enabled_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    totp_last_step: int | None = Field(default=None, sa_type=BigInteger)
    created_at: datetime = created_field()


class UserPublic(UserBase):
    id: uuid.UUID
    is_admin: bool
    is_active: bool
    password_must_change: bool = False
    totp_enabled_at: datetime | None = None
    created_at: datetime


class UserUpdate(SQLModel):
    """What can be changed of an account: names by the person or an admin, admin by admins."""

    display_name: str | None = Field(default=None, max_length=200)
    email: str | None = Field(default=None, max_length=254)
    is_admin: bool | None = None

    @field_validator("email")
    @classmethod
    def _email(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return value
        if not re.fullmatch(EMAIL_PATTERN, value):
            raise ValueError("is not an email address")
        return value


def _new_password(value: str) -> str:
    if len(value) < 12:
        raise ValueError("must be at least 12 characters")
    if len(set(value)) < 4:
        raise ValueError("is too simple: use at least four different characters")
    return value


class PasswordChange(SQLModel):
    """A person replacing their own password: the current one is required."""

    current_password: str = Field(max_length=1024)
    new_password: str = Field(max_length=1024)

    _new = field_validator("new_password")(_new_password)


class PasswordReset(SQLModel):
    """A node admin's reset: a one-time password given, or None to generate one."""

    password: str | None = Field(default=None, max_length=1024)

    @field_validator("password")
    @classmethod
    def _given(cls, value: str | None) -> str | None:
        return None if value in (None, "") else _new_password(str(value))


class PasswordIssued(SQLModel):
    """The one-time password of a reset, shown once; it must be changed at sign-in."""

    username: str
    password: str = Field(description="shown once; the user must change it at sign-in")
    generated: bool


class Membership(SQLModel, table=True):
    __table_args__ = (UniqueConstraint("user_id", "organisation_id"),)

    id: uuid.UUID = id_field()
    user_id: uuid.UUID = Field(foreign_key="user.id", index=True, ondelete="CASCADE")
    organisation_id: uuid.UUID = Field(
        foreign_key="organisation.id", index=True, ondelete="CASCADE"
    )
    role: Role = Field(sa_type=ROLE_TYPE)
    created_at: datetime = created_field()


class MembershipSet(SQLModel):
    username: str = Field(min_length=1, max_length=63)
    role: Role


class MembershipPublic(SQLModel):
    user_id: uuid.UUID
    username: str
    organisation_id: uuid.UUID
    role: Role


class WebSession(SQLModel, table=True):
    id: uuid.UUID = id_field()
    token_hash: str = Field(max_length=64, unique=True, index=True)
    csrf_token: str = Field(max_length=64)
    user_id: uuid.UUID = Field(foreign_key="user.id", index=True, ondelete="CASCADE")
    created_at: datetime = created_field()
    expires_at: datetime = Field(sa_type=UTCDateTime)


class TokenScope(enum.StrEnum):
    """What a token reaches: one organisation with a role, or node-level actions."""

    organisation = "organisation"
    node = "node"


TOKEN_SCOPE_TYPE = Enum(TokenScope, native_enum=False, length=16)


class ApiTokenBase(SQLModel):
    name: str = text_field(min_length=1, max_length=100)
    scope: TokenScope = Field(default=TokenScope.organisation, sa_type=TOKEN_SCOPE_TYPE)
    role: Role | None = Field(default=None, sa_type=ROLE_TYPE)
    expires_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class ApiTokenCreate(ApiTokenBase):
    """An organisation token names its organisation and role; a node token neither."""

    role: Role | None = PydanticField(default=None, validate_default=True)
    organisation: str | None = PydanticField(
        default=None, min_length=1, max_length=63, validate_default=True
    )

    @field_validator("role", "organisation")
    @classmethod
    def _scoped(cls, value: Any, info: ValidationInfo) -> Any:
        node = info.data.get("scope") is TokenScope.node
        if node and value:
            raise ValueError("a node token has none: it reaches node-level actions only")
        if not node and not value:
            raise ValueError("is required for an organisation token")
        return value


class ApiToken(ApiTokenBase, table=True):
    id: uuid.UUID = id_field()
    token_hash: str = Field(max_length=64, unique=True, index=True)
    prefix: str = Field(max_length=16)
    user_id: uuid.UUID = Field(foreign_key="user.id", index=True, ondelete="CASCADE")
    organisation_id: uuid.UUID | None = Field(
        default=None, foreign_key="organisation.id", index=True, ondelete="CASCADE"
    )
    created_at: datetime = created_field()
    revoked_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class ApiTokenPublic(ApiTokenBase):
    id: uuid.UUID
    prefix: str
    organisation_id: uuid.UUID | None
    created_at: datetime
    revoked_at: datetime | None


class ApiTokenIssued(ApiTokenPublic):
    token: str = Field(description="shown once; store it now")


class LoginAttempt(SQLModel, table=True):
    id: uuid.UUID = id_field()
    username: str = Field(max_length=63, index=True)
    client: str = Field(max_length=64, index=True)
    succeeded: bool
    at: datetime = Field(sa_type=UTCDateTime, index=True)


class RecoveryCode(SQLModel, table=True):
    """One of a user's single-use TOTP recovery codes, hashed like a password; `lookup`
    (the code's first characters) picks the row to check, so one use costs one hash."""

    __tablename__ = "recovery_code"

    id: uuid.UUID = id_field()
    user_id: uuid.UUID = Field(foreign_key="user.id", index=True, ondelete="CASCADE")
    lookup: str = Field(max_length=8)
    code_hash: str = Field(max_length=512)
    used_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class LoginChallenge(SQLModel, table=True):
    """A password that was right for an account with TOTP: the second step of its sign-in.

    It is not a session: nothing but the code form accepts it (services/totp.py)."""

    __tablename__ = "login_challenge"

    id: uuid.UUID = id_field()
    token_hash: str = Field(max_length=64, unique=True, index=True)
    user_id: uuid.UUID = Field(foreign_key="user.id", index=True, ondelete="CASCADE")
    client: str = Field(max_length=64)
    failures: int = 0
    expires_at: datetime = Field(sa_type=UTCDateTime)
