"""`backup`: scheduled, encrypted, deduplicated backups with restic.

Backs up some paths to a restic repository on a systemd timer, then forgets snapshots
beyond the retention policy and prunes. The repository password is a secret reference;
it lands on the host only in a root-only file.

A host can also keep restic repositories for others (``serve``): each is an account
``restic-NAME`` that logs in with one SSH key, for SFTP only, jailed (chroot) in
``/srv/restic/NAME``, with the repository in ``/srv/restic/NAME/repo``. That is what
the `offsite-backup` offering provisions: the requester's restic encrypts before
anything leaves its host, so the provider never holds the repository's password. A
repository listed in ``absent_served`` is removed: its account, its key, and its
directory with the repository; once none is served, sshd stops letting such accounts
in. An update of an instance changes the key that logs in; deprovisioning removes it.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Sequence
from pathlib import Path
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

from infracms.hookspecs import hookimpl
from infracms.modules.contract import Module, ModuleSettings, SecretRef
from infracms.modules.fields import AbsolutePath, refuse_duplicates
from infracms.modules.instances import NamedEntryOffering, entries
from infracms.modules.offerings import Plan, ProvidedOffering, ServiceHost
from infracms.modules.targets import Plain, PlainMapping

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
                "description": "a name for the repository (its account is restic-NAME)",
            },
            "ssh_public_key": {
                "type": "string",
                "pattern": KEY_RE.pattern,
                "maxLength": 4096,
                "description": "the key the backed-up host uses to reach the repository (SFTP)",
            },
            "quota_gb": {"const": quota_gb, "description": "storage included in the plan"},
        },
    }


class OffsiteBackup(NamedEntryOffering):
    """An instance is a served repository named by `name`, reached with the
    requester's key."""

    key = "name"
    noun = "repository"
    place = "on this host"
    lists = {"serve": "absent_served"}

    def provision(
        self, settings: dict[str, Plain], name: str, *, provided: ProvidedOffering,
        parameters: PlainMapping,
    ) -> dict[str, Plain]:  # fmt: skip
        """A served repository for the requester's key, over the provider's base settings."""
        served = {"name": name, "ssh_public_key": str(parameters["ssh_public_key"])}
        return settings | {"serve": [*entries(settings, "serve"), served]}

    def update(
        self, settings: dict[str, Plain], name: str, *, provided: ProvidedOffering,
        parameters: PlainMapping,
    ) -> dict[str, Plain]:  # fmt: skip
        """The served repository with the key now given; it keeps its name (and its data)."""
        key = str(parameters["ssh_public_key"])
        served = [
            {**repository, "ssh_public_key": key} if repository.get("name") == name else repository
            for repository in entries(settings, "serve")
        ]
        return settings | {"serve": served}

    def connection_details(
        self,
        *,
        provided: ProvidedOffering,
        plan: Plan,
        settings: PlainMapping,
        hosts: Sequence[ServiceHost],
    ) -> dict[str, Plain] | None:
        """The repository's restic URL, its account, and the host key to pin (no password:
        the requester's SSH key logs in, and its own restic password encrypts)."""
        served, host = self.last_entry(settings, "serve", hosts), hosts[0]
        user = f"restic-{served.get('name')}"
        where = host.address if host.ssh_port == 22 else f"[{host.address}]:{host.ssh_port}"
        return {
            "repository": _sftp_url(user, host.address, host.ssh_port),
            "host": host.address,
            "port": host.ssh_port,
            "username": user,
            "path": "/repo",
            "ssh_public_key": served.get("ssh_public_key"),
            "known_hosts": f"{where} {host.host_key}" if host.host_key else None,
        }


OFFSITE = "offsite-backup"
OFFERINGS = (
    OffsiteBackup(
        name=OFFSITE,
        title="Offsite backup repository",
        description=(
            "Storage for a restic repository on the provider's hosts, reached over SFTP "
            "with the requester's SSH key; the data is encrypted before it leaves the "
            "requester, and the provider never holds the password."
        ),
        plan_updateable=True,
        plans=(
            Plan(name="small", title="Small: 100 GB", parameters=_plan_parameters(100)),
            Plan(name="large", title="Large: 1 TB", parameters=_plan_parameters(1000)),
        ),
    ),
)


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
    offerings = OFFERINGS


@hookimpl
def register_modules() -> list[type[Module]]:
    """Return the Module classes this package provides."""
    return [Backup]


def _sftp_url(user: str, address: str, port: int) -> str:
    """restic's SFTP repository URL; the account is jailed in its directory, so /repo."""
    if port == 22 and ":" not in address:
        return f"sftp:{user}@{address}:/repo"
    host = f"[{address}]" if ":" in address else address
    return f"sftp://{user}@{host}:{port}//repo"
