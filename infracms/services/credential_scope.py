"""Where a credential may be sent: its scope, stored by id, shown by name, checked per host.

A scope names hosts and groups; a host is in it when it is named, or when it is in a
named group or in a group nested (at any depth) in one. A credential without a scope
may be sent to any host of its organisation. Scopes are stored as ids, so a host or
group deleted and created again under the same name is not let in by its name.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from typing import Any

from sqlmodel import Session, col, select

from infracms.errors import InvalidInput
from infracms.models.credential import Credential, CredentialScope
from infracms.models.host import Host, HostGroup
from infracms.modules.render import HostRow, reached


def scope_ids(
    session: Session, organisation_id: uuid.UUID, scope: CredentialScope | None
) -> dict[str, list[str]] | None:
    """The stored form of `scope` (ids); refuses names that are not in the organisation."""
    if scope is None:
        return None
    if not scope.hosts and not scope.groups:
        raise InvalidInput(
            "a scope must name a host or a group",
            errors={"scope": "name hosts or groups, or give no scope for any host"},
        )
    hosts = _ids(session, Host, organisation_id, scope.hosts, "scope.hosts", "host")
    groups = _ids(session, HostGroup, organisation_id, scope.groups, "scope.groups", "group")
    return {"hosts": hosts, "groups": groups}


def scope_names(session: Session, credential: Credential) -> CredentialScope | None:
    """A credential's scope by name (hosts and groups deleted since drop out)."""
    if credential.scope is None:
        return None
    hosts = _names(session, Host, credential.scope.get("hosts", []))
    groups = _names(session, HostGroup, credential.scope.get("groups", []))
    return CredentialScope(hosts=hosts, groups=groups)


class Scopes:
    """Which of a run's hosts each credential of the organisation may be sent to, worked
    out the first time a credential is asked about (a run uses few of them)."""

    def __init__(
        self,
        session: Session,
        organisation_id: uuid.UUID,
        credentials: Iterable[Credential],
        hosts: list[HostRow],
        parents: Mapping[str, str | None],
    ) -> None:
        self.session, self.organisation_id = session, organisation_id
        self.hosts, self.parents = hosts, parents
        self.scopes = {credential.name: credential.scope for credential in credentials}
        self.reaches: dict[str, frozenset[str] | None] = {}
        self.names: tuple[dict[str, str], dict[str, str]] | None = None

    def known(self, credential: str) -> bool:
        """Whether the organisation has a credential called `credential`."""
        return credential in self.scopes

    def allows(self, credential: str, host: str) -> bool:
        """Whether `credential` may be sent to `host` (an unknown credential: no)."""
        if credential not in self.scopes:
            return False
        if credential not in self.reaches:
            self.reaches[credential] = self._reach(self.scopes[credential])
        allowed = self.reaches[credential]
        return allowed is None or host in allowed

    def _reach(self, scope: dict[str, Any] | None) -> frozenset[str] | None:
        if scope is None:
            return None
        if self.names is None:
            self.names = (
                _all_names(self.session, Host, self.organisation_id),
                _all_names(self.session, HostGroup, self.organisation_id),
            )
        host_names, group_names = self.names
        targets = [("host", host_names[i]) for i in scope["hosts"] if i in host_names]
        targets += [("group", group_names[i]) for i in scope["groups"] if i in group_names]
        return frozenset(reached(self.hosts, self.parents, targets))


def _ids(
    session: Session,
    table: type[Host] | type[HostGroup],
    organisation_id: uuid.UUID,
    names: list[str],
    field: str,
    what: str,
) -> list[str]:
    if not names:
        return []
    rows = session.exec(
        select(table.id, table.name).where(
            table.organisation_id == organisation_id, col(table.name).in_(names)
        )
    ).all()
    found = {name: str(row_id) for row_id, name in rows}
    missing = sorted(set(names) - set(found))
    if missing:
        raise InvalidInput(
            f"no {what} called {missing[0]!r}", errors={field: f"no {what} called {missing[0]!r}"}
        )
    return sorted(found[name] for name in names)


def _names(session: Session, table: type[Host] | type[HostGroup], ids: list[str]) -> list[str]:
    if not ids:
        return []
    wanted = [uuid.UUID(i) for i in ids]
    rows = session.exec(select(table.name).where(col(table.id).in_(wanted))).all()
    return sorted(rows)


def _all_names(
    session: Session, table: type[Host] | type[HostGroup], organisation_id: uuid.UUID
) -> dict[str, str]:
    rows: Any = session.exec(
        select(table.id, table.name).where(table.organisation_id == organisation_id)
    ).all()
    return {str(row_id): name for row_id, name in rows}
