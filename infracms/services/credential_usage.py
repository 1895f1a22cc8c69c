"""Where a credential is used: the hosts that connect with it and the definitions whose
published settings refer to it (``{"$credential": NAME}``), beside its scope."""

from __future__ import annotations

from dataclasses import dataclass

from sqlmodel import Session, col, select

from infracms.models.credential import Credential
from infracms.models.definition import Definition, Revision
from infracms.models.host import Host, HostGroup
from infracms.modules.contract import secret_references


@dataclass(frozen=True)
class Usage:
    """Hosts connecting with a credential; definitions (name, target) referring to it."""

    hosts: list[str]
    definitions: list[tuple[str, str]]


def credential_usage(session: Session, credential: Credential) -> Usage:
    """Where `credential` is used in its organisation (read by whoever may read it)."""
    hosts = session.exec(
        select(Host.name).where(Host.credential_id == credential.id).order_by(Host.name)
    ).all()
    return Usage(hosts=list(hosts), definitions=_definitions(session, credential))


def _definitions(session: Session, credential: Credential) -> list[tuple[str, str]]:
    """The live definitions whose published revision refers to the credential by name."""
    rows = session.exec(
        select(Definition, Revision.settings)
        .join(Revision, col(Revision.definition_id) == Definition.id)
        .where(
            Definition.organisation_id == credential.organisation_id,
            col(Definition.retired_at).is_(None),
            col(Definition.published).is_not(None),
            Revision.number == Definition.published,
        )
        .order_by(Definition.name)
    ).all()
    found = []
    for definition, settings in rows:
        if any(
            kind == "$credential" and target == credential.name
            for _, kind, target in secret_references(settings)
        ):
            found.append((definition.name, _target(session, definition)))
    return found


def _target(session: Session, definition: Definition) -> str:
    if definition.host_id is not None:
        host = session.get(Host, definition.host_id)
        return f"host {host.name}" if host else "host (deleted)"
    group = session.get(HostGroup, definition.group_id) if definition.group_id else None
    return f"group {group.name}" if group else "group (deleted)"
