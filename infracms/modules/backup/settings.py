"""The settings of `backup`: the restic repository this host backs up to (its password a
secret reference), what and when to back up, what to keep, and the repositories it
keeps for others (``serve``, ``absent_served``)."""

from __future__ import annotations

import base64
import binascii
import re
from typing import Annotated

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from infracms.modules.contract import ModuleSettings, SecretRef
from infracms.modules.fields import AbsolutePath, refuse_duplicates

# restic backends reachable from a Debian host without extra configuration files.
REPOSITORY_RE = re.compile(r"^(/|sftp:|rest:https?://|s3:|b2:|azure:|gs:|swift:)[^\s'\"\\`$]*$")
# What systemd's OnCalendar takes (see systemd.time(7)); `systemd-analyze calendar`
# checks the exact expression on the host.
CALENDAR_RE = re.compile(r"^[A-Za-z0-9 *:,./~-]{1,100}$")
EXCLUDE_RE = re.compile(r"^[^\n\r\x00]{1,500}$")
KEY_ID_RE = re.compile(r"^[A-Za-z0-9]{8,128}$")
# A served repository's name: its account, restic-NAME, must fit Linux's 32 characters.
NAME_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,24}$")
KEY_TYPES = ("ssh-ed25519", "ecdsa-sha2-nistp256", "ssh-rsa")
KEY_RE = re.compile(r"^(ssh-ed25519|ecdsa-sha2-nistp256|ssh-rsa) [A-Za-z0-9+/=]+( .*)?$")
SERVE_ROOT = "/srv/restic"


def _repository(value: str) -> str:
    if not REPOSITORY_RE.fullmatch(value):
        raise ValueError(
            "expected a restic repository: /local/path, sftp:user@host:/path, "
            "rest:https://host/path, s3:host/bucket, b2:bucket:path, ... "
            "(no spaces, quotes, backslashes or '$')"
        )
    return value


def _served_name(value: str) -> str:
    if not NAME_RE.fullmatch(value):
        raise ValueError("expected 1-25 of a-z, 0-9 and '-', starting with a letter or digit")
    return value


def _public_key(value: str) -> str:
    """One OpenSSH public key line, its data of the type it names; the comment dropped."""
    words = value.split()
    if not KEY_RE.fullmatch(value) or len(words) < 2:
        raise ValueError(
            f"expected an OpenSSH public key 'TYPE BASE64 [comment]', TYPE one of "
            f"{', '.join(KEY_TYPES)}"
        )
    try:
        blob = base64.b64decode(words[1], validate=True)
    except binascii.Error as exc:
        raise ValueError("the key data is not base64") from exc
    kind = words[0].encode()
    if blob[:4] != len(kind).to_bytes(4, "big") or blob[4 : 4 + len(kind)] != kind:
        raise ValueError(f"the key data is not a {words[0]} key")
    return f"{words[0]} {words[1]}"


def _key_id(value: str) -> str:
    if not KEY_ID_RE.fullmatch(value):
        raise ValueError("expected 8-128 letters and digits")
    return value


def _calendar(value: str) -> str:
    if not CALENDAR_RE.fullmatch(value):
        raise ValueError("expected a systemd calendar expression such as daily or *-*-* 02:30:00")
    return value


def _exclude(value: str) -> str:
    if not EXCLUDE_RE.fullmatch(value):
        raise ValueError("one pattern per item, on one line")
    return value


class ServedRepository(BaseModel):
    """A restic repository this host keeps for someone else, reached over SFTP."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, validate_default=True)

    name: Annotated[str, AfterValidator(_served_name)] = Field(
        description="its name: the account is restic-NAME, the directory /srv/restic/NAME"
    )
    ssh_public_key: Annotated[str, AfterValidator(_public_key)] = Field(
        description="the one key that may log in (OpenSSH public key)"
    )


class BackupSettings(ModuleSettings):
    """Settings of the `backup` module."""

    repository: Annotated[str, AfterValidator(_repository)] | None = Field(
        default=None,
        description="restic repository to back this host up to, e.g. "
        "sftp:backup@store.example:/srv/restic/web1 (none: no backup of this host)",
    )
    password: SecretRef | None = Field(
        default=None, description="the repository's encryption password"
    )
    s3_access_key_id: Annotated[str, AfterValidator(_key_id)] | None = Field(
        default=None, description="for s3: repositories, the access key id"
    )
    s3_secret_access_key: SecretRef | None = Field(
        default=None, description="for s3: repositories, the secret access key"
    )
    paths: list[AbsolutePath] = Field(
        default_factory=lambda: ["/etc", "/home", "/root", "/srv", "/var/lib"],
        min_length=1,
        max_length=100,
        description="what to back up",
    )
    module_data: bool = Field(
        default=True,
        description="also back up what the host's other modules keep (a calendar's events, "
        "a site's uploads), where paths do not hold it already",
    )
    exclude: list[Annotated[str, AfterValidator(_exclude)]] = Field(
        default_factory=lambda: ["/var/lib/apt", "/var/lib/docker", "*.tmp"],
        max_length=200,
        description="restic --exclude patterns, one an item",
    )
    one_file_system: bool = Field(default=True, description="do not cross into other file systems")
    schedule: Annotated[str, AfterValidator(_calendar)] = Field(
        default="daily", description="when to back up: a systemd OnCalendar expression"
    )
    randomized_delay_minutes: int = Field(
        default=30, ge=0, le=1440, description="start up to this many minutes late, at random"
    )
    keep_daily: int = Field(default=7, ge=0, le=3650, description="daily snapshots to keep")
    keep_weekly: int = Field(default=4, ge=0, le=520, description="weekly snapshots to keep")
    keep_monthly: int = Field(default=6, ge=0, le=240, description="monthly snapshots to keep")
    keep_yearly: int = Field(default=0, ge=0, le=100, description="yearly snapshots to keep")
    initialise: bool = Field(
        default=True, description="create the repository when it does not exist yet"
    )
    serve: list[ServedRepository] = Field(
        default_factory=list,
        max_length=500,
        description="restic repositories this host keeps for others, each reached over SFTP "
        "with its own key",
    )
    absent_served: list[Annotated[str, AfterValidator(_served_name)]] = Field(
        default_factory=list,
        max_length=500,
        description="served repositories to remove: their account, key and directory, "
        "the repository with it",
    )

    @field_validator("paths", "exclude")
    @classmethod
    def _unique(cls, value: list[str]) -> list[str]:
        refuse_duplicates(value, "items")
        return value

    @field_validator("s3_secret_access_key")
    @classmethod
    def _s3_pair(cls, value: dict[str, str] | None, info: ValidationInfo) -> dict[str, str] | None:
        key_id = info.data.get("s3_access_key_id", ...)  # absent: refused already
        if key_id is not ... and (value is None) != (key_id is None):
            raise ValueError("give both s3_access_key_id and s3_secret_access_key, or neither")
        return value

    @field_validator("serve")
    @classmethod
    def _unique_served(cls, value: list[ServedRepository]) -> list[ServedRepository]:
        refuse_duplicates((repository.name for repository in value), "repository names")
        return value

    @field_validator("absent_served")
    @classmethod
    def _absent_served(cls, value: list[str], info: ValidationInfo) -> list[str]:
        refuse_duplicates(value, "absent repository names")
        both = sorted({r.name for r in info.data.get("serve", [])} & set(value))
        if both:
            raise ValueError(f"listed both as served and as absent: {', '.join(both)}")
        return value

    @model_validator(mode="after")
    def _something_to_do(self) -> BackupSettings:
        if (self.repository is None) != (self.password is None):
            raise ValueError("give repository and password together")
        if self.repository is None and not self.serve and not self.absent_served:
            raise ValueError(
                "give a repository (back up this host) or serve (keep repositories for others)"
            )
        return self

    @field_validator("keep_yearly")
    @classmethod
    def _keeps_something(cls, value: int, info: ValidationInfo) -> int:
        kept = [info.data.get(f"keep_{period}") for period in ("daily", "weekly", "monthly")]
        if value == 0 and not any(kept):
            raise ValueError("keep at least one snapshot: set one of keep_daily ... keep_yearly")
        return value
