"""Which ``$env`` and ``$file`` secret sources an organisation's definitions may read.

A node admin grants them per organisation (``secret_source.grant``): exact
``INFRACMS_VAR_*`` variable names; exact file paths, or directories (a name ending in
``/``: every file below it), under the node's ``secrets/`` directory. A definition's
settings are checked when they are saved, and again when a run resolves them (a grant
may have been revoked since). The check reads only the grants, never the environment
or the file system, and says the same for every name not granted, so it never tells
whether such a variable or file exists.
"""

from __future__ import annotations

import os
import posixpath
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlmodel import Session, col, select

from infracms.config import Settings
from infracms.errors import Conflict, InvalidInput, NotFound
from infracms.models.organisation import (
    Organisation,
    SecretGrant,
    SecretGrantCreate,
    SecretSourceKind,
)
from infracms.modules.contract import secret_references
from infracms.services import audit
from infracms.services.authz import Action, authorize
from infracms.services.common import Fields, commit, organisation_by_name, parse
from infracms.services.context import Actor

NOT_GRANTED = (
    "this {kind} reference is not granted to the organisation; "
    "a node administrator grants secret sources (infracms org grant-secret)"
)


MAX_NAME = 1024  # the column's width


def not_granted(kind: str) -> str:
    """The one answer for every $env or $file reference that is not granted."""
    return NOT_GRANTED.format(kind=kind)


@dataclass(frozen=True)
class Grants:
    """An organisation's grants, ready for checking references."""

    env: frozenset[str] = frozenset()
    files: frozenset[str] = frozenset()
    directories: tuple[str, ...] = ()  # each ends in "/"

    def allows(self, kind: str, target: str) -> bool:
        """Whether a reference may be resolved ($credential references are not sources)."""
        if kind == "$env":
            return target in self.env
        if kind == "$file":
            path = normalised(target)
            return path is not None and (path in self.files or path.startswith(self.directories))
        return kind == "$credential"


def normalised(path: str) -> str | None:
    """An absolute path with `.` and `..` worked out on the text alone; None if relative."""
    if not path.startswith("/") or "\x00" in path:
        return None
    return posixpath.normpath(path)


def grants_of(session: Session, *, organisation_id: uuid.UUID) -> Grants:
    """What the organisation was granted."""
    rows = session.exec(
        select(SecretGrant.kind, SecretGrant.name).where(
            SecretGrant.organisation_id == organisation_id
        )
    ).all()
    names = {kind: {name for k, name in rows if k == kind} for kind in SecretSourceKind}
    files = names[SecretSourceKind.file]
    return Grants(
        env=frozenset(names[SecretSourceKind.env]),
        files=frozenset(name for name in files if not name.endswith("/")),
        directories=tuple(sorted(name for name in files if name.endswith("/"))),
    )


def refused(settings: Any, grants: Grants, prefix: str = "settings") -> dict[str, str]:
    """{field path: why} for each $env/$file reference in `settings` not granted."""
    return {
        f"{prefix}.{path}" if path else prefix: not_granted(kind)
        for path, kind, target in secret_references(settings)
        if not grants.allows(kind, target)
    }


def check_settings(session: Session, *, org: Organisation, settings: Any) -> None:
    """Refuse settings that refer to a secret source not granted to `org`."""
    problems = refused(settings, grants_of(session, organisation_id=org.id))
    if problems:
        raise InvalidInput(
            "the settings refer to secret sources not granted to the organisation",
            errors=problems,
        )


def grant_source(
    *,
    session: Session,
    actor: Actor,
    settings: Settings,
    organisation: str,
    data: SecretGrantCreate | Fields,
) -> SecretGrant:
    """Let an organisation's definitions refer to a variable or file (node admins)."""
    org = organisation_by_name(session, name=organisation)
    authorize(actor, Action.secret_source_grant, org.id)
    wanted = parse(SecretGrantCreate, data)
    name = stored_name(settings, wanted)
    if _grant(session, org.id, wanted.kind, name) is not None:
        raise Conflict(f"{organisation} has that grant already", errors={"name": "granted"})
    row = SecretGrant(organisation_id=org.id, kind=wanted.kind, name=name)
    session.add(row)
    _record(session, actor, org, "secret_source.grant", row)
    commit(session, conflict=f"{organisation} has that grant already")
    return row


def revoke_source(
    *,
    session: Session,
    actor: Actor,
    settings: Settings,
    organisation: str,
    data: SecretGrantCreate | Fields,
) -> None:
    """Take a grant back (node admins); runs that need it are refused from now on."""
    org = organisation_by_name(session, name=organisation)
    authorize(actor, Action.secret_source_grant, org.id)
    wanted = parse(SecretGrantCreate, data)
    row = _grant(session, org.id, wanted.kind, stored_name(settings, wanted))
    if row is None:
        raise NotFound(f"{organisation} has no such {wanted.kind} grant")
    _record(session, actor, org, "secret_source.revoke", row)
    session.delete(row)
    commit(session)


def list_sources(*, session: Session, actor: Actor, organisation: str) -> list[SecretGrant]:
    """An organisation's grants: what its definitions may refer to (not the values)."""
    org = organisation_by_name(session, name=organisation)
    authorize(actor, Action.definition_read, org.id)
    query = select(SecretGrant).where(SecretGrant.organisation_id == org.id)
    return list(session.exec(query.order_by(col(SecretGrant.kind), col(SecretGrant.name))).all())


def stored_name(settings: Settings, grant: SecretGrantCreate) -> str:
    """The name as kept: a file as an absolute path under the node's secrets directory
    (a relative one is taken from there), a directory ending in `/`."""
    if grant.kind is SecretSourceKind.env:
        return grant.name
    base = posixpath.normpath(str(secrets_dir(settings)))
    given = grant.name if grant.name.startswith("/") else f"{base}/{grant.name}"
    path = posixpath.normpath(given)
    if path != base and not path.startswith(base + "/"):
        raise InvalidInput(
            f"$file grants must be under {base}/", errors={"name": f"must be under {base}/"}
        )
    directory = grant.name.endswith("/") or path == base
    stored = path.rstrip("/") + "/" if directory else path
    if len(stored) > MAX_NAME:
        raise InvalidInput("the path is too long", errors={"name": f"over {MAX_NAME} characters"})
    return stored


def secrets_dir(settings: Settings) -> Path:
    """The node's directory of secret files (``secrets/`` in the data dir)."""
    return Path(os.path.realpath(settings.data_dir / "secrets"))


def _grant(
    session: Session, organisation_id: uuid.UUID, kind: SecretSourceKind, name: str
) -> SecretGrant | None:
    return session.exec(
        select(SecretGrant).where(
            SecretGrant.organisation_id == organisation_id,
            SecretGrant.kind == kind,
            SecretGrant.name == name,
        )
    ).first()


def _record(
    session: Session, actor: Actor, org: Organisation, action: str, row: SecretGrant
) -> None:
    audit.record(
        session,
        actor=actor,
        action=action,
        subject=f"org:{org.name}",
        organisation_id=org.id,
        payload={"kind": str(row.kind), "name": row.name},
    )
