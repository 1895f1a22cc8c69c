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

The settings are in ``settings.py``; the `offsite-backup` offering in ``offering.py``.
"""

from __future__ import annotations

from pathlib import Path

from infracms.hookspecs import hookimpl
from infracms.modules.backup.offering import OFFERINGS
from infracms.modules.backup.settings import BackupSettings
from infracms.modules.contract import Module
from infracms.modules.targets import HostFacts, Plain, PlainMapping

__all__ = ["Backup", "BackupSettings", "register_modules"]


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

    @classmethod
    def extra_variables(cls, settings: PlainMapping, host: HostFacts) -> dict[str, Plain]:
        """With a repository and `module_data`, add to `paths` the data paths of the host's
        other modules that no listed path holds already."""
        paths = settings.get("paths")
        if not settings.get("repository") or not settings.get("module_data", True):
            return {}
        if not isinstance(paths, list) or not host.data_paths:
            return {}
        listed = [str(path) for path in paths]
        missing = [path for path in host.data_paths if not _held(path, listed)]
        return {"paths": [*listed, *missing]} if missing else {}


def _held(path: str, listed: list[str]) -> bool:
    return any(path == p or path.startswith(p.rstrip("/") + "/") for p in listed)


@hookimpl
def register_modules() -> list[type[Module]]:
    """Return the Module classes this package provides."""
    return [Backup]
