"""`offsite-backup`: each instance is a served repository, an SFTP-only account
``restic-NAME`` that the requester's key logs in to; an update changes the key, and
deprovisioning removes the account with its repository. The steps it shares with
postgresql's offering are in ``infracms/modules/instances.py``."""

from __future__ import annotations

from collections.abc import Sequence

from infracms.modules.backup.settings import KEY_RE, NAME_RE
from infracms.modules.instances import NamedEntryOffering, entries
from infracms.modules.offerings import Plan, ProvidedOffering, ServiceHost
from infracms.modules.targets import Plain, PlainMapping


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


def _sftp_url(user: str, address: str, port: int) -> str:
    """restic's SFTP repository URL; the account is jailed in its directory, so /repo."""
    if port == 22 and ":" not in address:
        return f"sftp:{user}@{address}:/repo"
    host = f"[{address}]" if ":" in address else address
    return f"sftp://{user}@{host}:{port}//repo"
