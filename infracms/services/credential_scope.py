"""Where a credential may be sent: its scope, stored by id, shown by name, checked per host.

A scope names hosts and groups; a host is in it when it is named, or when it is in a
named group or in a group nested (at any depth) in one. A credential without a scope
may be sent to any host of its organisation. Scopes are stored as ids, so a host or
group deleted and created again under the same name is not let in by its name.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from sqlmodel import Session, col, select

from infracms.errors import InvalidInput
from infracms.models.credential import Credential, CredentialScope
from infracms.models.host import Host, HostGroup, HostGroupLink
from infracms.modules.render import HostRow, reached


def scope_ids(
    session: Session, *, organisation_id: uuid.UUID, scope: CredentialScope | None
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


def scope_names(session: Session, *, credential: Credential) -> CredentialScope | None:
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


# --- reach under a change of the inventory -------------------------------------------
#
# A group scope follows group membership, so a change of a host's groups or of a group's
# parent can widen a credential's reach without touching the credential. The inventory
# asks these helpers what a change would do before it makes it.


@dataclass(frozen=True)
class Membership:
    """An organisation's hosts (id → name, and the groups each is directly in) and each
    group's parent, by id: what a scope's reach is worked out from."""

    names: Mapping[uuid.UUID, str]
    groups: Mapping[uuid.UUID, frozenset[uuid.UUID]]
    parents: Mapping[uuid.UUID, uuid.UUID | None]

    def with_host(self, host: uuid.UUID, name: str, groups: Iterable[uuid.UUID]) -> Membership:
        """This membership with `host` directly in exactly `groups`."""
        return replace(
            self,
            names={**self.names, host: name},
            groups={**self.groups, host: frozenset(groups)},
        )

    def with_parent(self, group: uuid.UUID, parent: uuid.UUID | None) -> Membership:
        """This membership with `group` nested in `parent` (None: at the top)."""
        return replace(self, parents={**self.parents, group: parent})

    def reach(self, scope: Mapping[str, Any]) -> frozenset[uuid.UUID]:
        """The hosts a stored scope lets in: named, or in a named group or one under it."""
        named = {uuid.UUID(i) for i in scope.get("hosts", [])}
        under = self._under({uuid.UUID(i) for i in scope.get("groups", [])})
        return frozenset(
            host for host, groups in self.groups.items() if host in named or groups & under
        )

    def _under(self, named: set[uuid.UUID]) -> set[uuid.UUID]:
        under = set()
        for group in self.parents:
            current: uuid.UUID | None = group
            seen: set[uuid.UUID] = set()
            while current is not None and current not in seen:  # a cycle is refused, still
                if current in named:
                    under.add(group)
                    break
                seen.add(current)
                current = self.parents.get(current)
        return under


def membership(session: Session, *, organisation_id: uuid.UUID) -> Membership:
    """The organisation's membership as stored now."""
    hosts = session.exec(
        select(Host.id, Host.name).where(Host.organisation_id == organisation_id)
    ).all()
    links = session.exec(
        select(HostGroupLink.host_id, HostGroupLink.group_id)
        .join(Host, HostGroupLink.host_id == Host.id)  # type: ignore[arg-type]
        .where(Host.organisation_id == organisation_id)
    ).all()
    groups: dict[uuid.UUID, set[uuid.UUID]] = {host_id: set() for host_id, _ in hosts}
    for host_id, group_id in links:
        groups[host_id].add(group_id)
    parents = session.exec(
        select(HostGroup.id, HostGroup.parent_id).where(
            HostGroup.organisation_id == organisation_id
        )
    ).all()
    return Membership(
        names=dict(hosts),
        groups={host: frozenset(ids) for host, ids in groups.items()},
        parents=dict(parents),
    )


def widened(
    session: Session, *, organisation_id: uuid.UUID, before: Membership, after: Membership
) -> dict[str, list[str]]:
    """{credential: the hosts it would newly reach} for each scoped credential of the
    organisation whose reach `after` is wider than `before` (unscoped ones reach all)."""
    grown: dict[str, list[str]] = {}
    for credential in _scoped(session, organisation_id):
        scope = credential.scope
        if scope is None:  # _scoped selects scoped credentials only
            raise RuntimeError(f"credential {credential.name} has no scope")
        new = after.reach(scope) - before.reach(scope)
        if new:
            grown[credential.name] = sorted(after.names[host] for host in new)
    return grown


def refuse_outside(
    session: Session, *, credential: Credential, host: uuid.UUID, members: Membership
) -> None:
    """Refuse to attach `credential` to `host` (in `members`) when its scope leaves it out."""
    if credential.scope is None or host in members.reach(credential.scope):
        return
    scope = describe_scope(session, credential=credential)
    message = (
        f"credential {credential.name} may be sent only to {scope}"
        f" (its scope); host {members.names[host]} is not in it"
    )
    raise InvalidInput(message, errors={"credential": message})


def stranded(
    session: Session, *, credential: Credential, scope: Mapping[str, Any] | None
) -> list[str]:
    """The hosts using `credential` to connect that `scope` would leave out."""
    if scope is None:
        return []
    users = set(session.exec(select(Host.id).where(Host.credential_id == credential.id)).all())
    if not users:
        return []
    members = membership(session, organisation_id=credential.organisation_id)
    return sorted(members.names[host] for host in users - members.reach(scope))


def describe_scope(session: Session, *, credential: Credential) -> str:
    """A credential's scope in words: 'hosts a, b and groups g (and groups under them)'."""
    scope = scope_names(session, credential=credential)
    if scope is None:
        return "any host of its organisation"
    parts = [f"hosts {', '.join(scope.hosts)}"] if scope.hosts else []
    if scope.groups:
        parts.append(f"groups {', '.join(scope.groups)} (and groups under them)")
    return " and ".join(parts) or "no host"


def _scoped(session: Session, organisation_id: uuid.UUID) -> list[Credential]:
    rows = session.exec(
        select(Credential).where(Credential.organisation_id == organisation_id)
    ).all()
    return [credential for credential in rows if credential.scope is not None]
