"""`backup`: scheduled, encrypted, deduplicated backups with restic.

Backs up some paths to a restic repository on a systemd timer, then forgets snapshots
beyond the retention policy and prunes. The repository password is a secret reference;
it lands on the host only in a root-only file.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated

from pydantic import AfterValidator, Field, ValidationInfo, field_validator

from infracms.hookspecs import hookimpl
from infracms.modules.contract import Module, ModuleSettings, Offering, Plan, SecretRef
from infracms.modules.fields import AbsolutePath, refuse_duplicates

# restic backends reachable from a Debian host without extra configuration files.
REPOSITORY_RE = re.compile(r"^(/|sftp:|rest:https?://|s3:|b2:|azure:|gs:|swift:)[^\s'\"\\`$]*$")
# What systemd's OnCalendar takes (see systemd.time(7)); `systemd-analyze calendar`
# checks the exact expression on the host.
CALENDAR_RE = re.compile(r"^[A-Za-z0-9 *:,./~-]{1,100}$")
EXCLUDE_RE = re.compile(r"^[^\n\r\x00]{1,500}$")
KEY_ID_RE = re.compile(r"^[A-Za-z0-9]{8,128}$")
NAME_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,39}$")


def _repository(value: str) -> str:
    if not REPOSITORY_RE.match(value):
        raise ValueError(
            "expected a restic repository: /local/path, sftp:user@host:/path, "
            "rest:https://host/path, s3:host/bucket, b2:bucket:path, ... "
            "(no spaces, quotes, backslashes or '$')"
        )
    return value


def _key_id(value: str) -> str:
    if not KEY_ID_RE.match(value):
        raise ValueError("expected 8-128 letters and digits")
    return value


def _calendar(value: str) -> str:
    if not CALENDAR_RE.match(value):
        raise ValueError("expected a systemd calendar expression such as daily or *-*-* 02:30:00")
    return value


def _exclude(value: str) -> str:
    if not EXCLUDE_RE.match(value):
        raise ValueError("one pattern per item, on one line")
    return value


class BackupSettings(ModuleSettings):
    """Settings of the `backup` module."""

    repository: Annotated[str, AfterValidator(_repository)] = Field(
        description="restic repository, e.g. sftp:backup@store.example:/srv/restic/web1"
    )
    password: SecretRef = Field(description="the repository's encryption password")
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

    @field_validator("keep_yearly")
    @classmethod
    def _keeps_something(cls, value: int, info: ValidationInfo) -> int:
        kept = [info.data.get(f"keep_{period}") for period in ("daily", "weekly", "monthly")]
        if value == 0 and not any(kept):
            raise ValueError("keep at least one snapshot: set one of keep_daily ... keep_yearly")
        return value


class Backup(Module):
    """restic backups on a timer."""

    name = "backup"
    version = "1.0.0"
    title = "Backup (restic)"
    description = (
        "Encrypted restic backups of chosen paths on a systemd timer, with a retention "
        "policy (daily, weekly, monthly, yearly)."
    )
    settings = BackupSettings
    role = Path(__file__).parent / "role"


def _plan_parameters(quota_gb: int) -> dict[str, object]:
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "additionalProperties": False,
        "required": ["name", "ssh_public_key"],
        "properties": {
            "name": {
                "type": "string",
                "pattern": NAME_RE.pattern,
                "description": "a name for the repository, unique within the requesting node",
            },
            "ssh_public_key": {
                "type": "string",
                "pattern": "^(ssh-ed25519|ecdsa-sha2-nistp256|ssh-rsa) [A-Za-z0-9+/=]+( .*)?$",
                "description": "the key the backed-up host uses to reach the repository (SFTP)",
            },
            "append_only": {
                "type": "boolean",
                "default": True,
                "description": "the client may add snapshots but not delete them",
            },
            "quota_gb": {"const": quota_gb, "description": "storage included in the plan"},
        },
    }


OFFERINGS = (
    Offering(
        name="offsite-backup",
        title="Offsite backup repository",
        description=(
            "Storage for a restic repository on the provider's hosts, reached over SFTP "
            "with the requester's SSH key; the data is encrypted before it leaves the "
            "requester, and the provider never holds the password."
        ),
        plans=(
            Plan(name="small", title="Small: 100 GB", parameters=_plan_parameters(100)),
            Plan(name="large", title="Large: 1 TB", parameters=_plan_parameters(1000)),
        ),
    ),
)


@hookimpl
def register_modules() -> list[type[Module]]:
    """Return the Module classes this package provides."""
    return [Backup]


@hookimpl
def catalog_offerings(module: type[Module]) -> list[Offering] | None:
    """Offer offsite backup repositories to peers."""
    if module.name != Backup.name:
        return None
    return list(OFFERINGS)
