"""Hosts and nested groups: the inventory of an organisation."""

from __future__ import annotations

import uuid
from collections import defaultdict
from datetime import datetime
from typing import Any

from sqlalchemy import case
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel import Session, col, func, select

from infracms.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from infracms.models.credential import Credential
from infracms.models.host import (
    GroupCreate,
    GroupPublic,
    GroupUpdate,
    Host,
    HostCreate,
    HostFilter,
    HostGroup,
    HostGroupLink,
    HostPublic,
    HostSort,
    HostUpdate,
)
from infracms.models.organisation import Organisation
from infracms.models.run import HostOutcome, HostRunState
from infracms.modules.render import group_distances
from infracms.services import audit, credential_scope, host_state, rendering
from infracms.services.authz import Action, authorize
from infracms.services.common import Fields, Page, commit, organisation_by_name, page, parse
from infracms.services.context import Actor
from infracms.services.targets import refuse_node_target
from infracms.sshkeys import host_key_fingerprint, normalise_host_key

HOST_FIELDS = ("name", "address", "ssh_port", "ssh_user", "host_key", "variables")
CONNECTION_FIELDS = ("address", "ssh_port", "ssh_user", "host_key")  # where ssh goes
GROUP_FIELDS: set[str] = {"name", "description", "parent", "variables"}


# --- hosts -------------------------------------------------------------------------


def create_host(
    *,
    session: Session,
    actor: Actor,
    organisation: str,
    data: HostCreate | Fields,
    allow_node_target: bool = False,
) -> HostPublic:
    """Add a host to an organisation's inventory.

    A new host has an address, so it decides where ssh goes: only roles that may use
    credentials (host.connect) add hosts; attaching a credential is credential.use."""
    org = organisation_by_name(session, name=organisation)
    authorize(actor, Action.host_write, org.id)
    authorize(actor, Action.host_connect, org.id)
    host_in = parse(HostCreate, data)
    if host_in.credential:
        authorize(actor, Action.credential_use, org.id)
    if _host(session, org.id, host_in.name) is not None:
        raise Conflict(
            f"a host called {host_in.name!r} exists already in {org.name}",
            errors={"name": "is already taken"},
        )
    refuse_node_target(host_in.address, allow=allow_node_target)
    credential = _credential(session, org.id, host_in.credential)
    host = Host.model_validate(
        host_in,
        update={
            "organisation_id": org.id,
            "credential_id": credential.id if credential else None,
        },
    )
    groups = _groups_named(session, org.id, host_in.groups)
    before = credential_scope.membership(session, organisation_id=org.id)
    after = before.with_host(host.id, host.name, (group.id for group in groups))
    if credential is not None:
        credential_scope.refuse_outside(session, credential=credential, host=host.id, members=after)
    _authorize_reach(session, actor, org, before, after)
    session.add(host)
    session.add_all(HostGroupLink(host_id=host.id, group_id=group.id) for group in groups)
    public = _host_public(host, host_in.credential, sorted(host_in.groups))
    audit.record(
        session,
        actor=actor,
        action="host.create",
        subject=f"host:{org.name}/{host.name}",
        organisation_id=org.id,
        payload={"after": _host_snapshot(public)},
    )
    commit(session, conflict=f"a host called {host.name!r} exists already in {org.name}")
    return public


def update_host(
    *,
    session: Session,
    actor: Actor,
    organisation: str,
    name: str,
    data: HostUpdate | Fields,
    allow_node_target: bool = False,
) -> HostPublic:
    """Change a host's connection settings, groups or variables.

    Editors change groups and variables; a connection fact (address, port, user, a first
    pinned key) or the credential changes only with host.connect or credential.use. A
    pinned key is never replaced here: that is replace_host_key, with its fingerprint."""
    org = organisation_by_name(session, name=organisation)
    authorize(actor, Action.host_write, org.id)
    update = parse(HostUpdate, data)
    host = _host_or_404(session, org, name)
    changes = update.model_dump(exclude_unset=True, exclude={"credential", "groups"})
    changed = {key for key, value in changes.items() if getattr(host, key) != value}
    credential = _credential_by_id(session, host.credential_id)
    if "credential" in update.model_fields_set:
        credential = _credential(session, org.id, update.credential)
    credential_id = credential.id if credential else None
    credential_changed = credential_id != host.credential_id
    _authorize_connection(actor, org, host, changes, changed, credential_changed)
    if "address" in changed:
        refuse_node_target(changes["address"], allow=allow_node_target)
    groups = None if update.groups is None else _groups_named(session, org.id, update.groups)
    _check_scopes(session, actor, org, host, groups, credential if credential_changed else None)
    before = describe_host(session, host=host)
    host.sqlmodel_update({key: changes[key] for key in changed})
    host.credential_id = credential_id
    if groups is not None:
        _replace_groups(session, host, groups)
    session.add(host)
    session.flush()
    after = describe_host(session, host=host)
    audit.record(
        session,
        actor=actor,
        action="host.update",
        subject=f"host:{org.name}/{host.name}",
        organisation_id=org.id,
        payload=audit.changes(_host_snapshot(before), _host_snapshot(after)),
    )
    commit(session)
    return after


def _authorize_connection(
    actor: Actor,
    org: Organisation,
    host: Host,
    changes: dict[str, Any],
    changed: set[str],
    credential_changed: bool,
) -> None:
    """Refuse a change of where ssh goes, or with which secret, to roles that may not."""
    if changed & set(CONNECTION_FIELDS):
        authorize(actor, Action.host_connect, org.id)
    if credential_changed:
        authorize(actor, Action.credential_use, org.id)
    if "host_key" in changed and host.host_key:
        raise _pinned_conflict(org, host.name, host.host_key, changes["host_key"])


def _check_scopes(
    session: Session,
    actor: Actor,
    org: Organisation,
    host: Host,
    groups: list[HostGroup] | None,
    attached: Credential | None,
) -> None:
    """Refuse a host update that breaks or widens a credential's scope: a newly attached
    credential must reach the host (in its new groups); new groups that bring the host
    into a scoped credential's reach need credential.use."""
    if groups is None and attached is None:
        return  # nothing changes reach: skip reading the whole organisation under the lock
    before = credential_scope.membership(session, organisation_id=org.id)
    after = before
    if groups is not None:
        after = before.with_host(host.id, host.name, (group.id for group in groups))
    if attached is not None:
        credential_scope.refuse_outside(session, credential=attached, host=host.id, members=after)
    _authorize_reach(session, actor, org, before, after)


def _authorize_reach(
    session: Session,
    actor: Actor,
    org: Organisation,
    before: credential_scope.Membership,
    after: credential_scope.Membership,
) -> None:
    """A change of membership that lets a scoped credential reach more hosts is a use of
    that credential: it needs credential.use, whatever else the change needs."""
    grown = credential_scope.widened(session, organisation_id=org.id, before=before, after=after)
    if not grown:
        return
    try:
        authorize(actor, Action.credential_use, org.id)
    except PermissionDenied as denied:
        reach = "; ".join(
            f"credential {name} to {', '.join(hosts)}" for name, hosts in sorted(grown.items())
        )
        raise PermissionDenied(
            f"this change would widen where scoped credentials may be sent ({reach}): "
            f"{denied.detail}; ask an owner or operator"
        ) from denied


def _pinned_conflict(org: Organisation, name: str, pinned: str, given: str | None) -> Conflict:
    old = host_key_fingerprint(pinned)
    new = host_key_fingerprint(given) if given else None
    how = (
        f"replace it explicitly after checking what the host presents: "
        f"`infracms host rekey {org.name} {name} --fingerprint "
        f"{new or 'SHA256:…'}` or POST /api/v1/orgs/{org.name}/hosts/{name}/host-key"
    )
    said = f"{new} is a different key" if new else "an update cannot remove it"
    message = f"host {name} has the pinned key {old}; {said}: {how}"
    return Conflict(message, errors={"host_key": message})


def pin_host_key(
    *, session: Session, actor: Actor, organisation: str, name: str, host_key: str, source: str
) -> HostPublic:
    """Pin a host's first SSH key (learned at bootstrap, or given), refusing a different one."""
    org = organisation_by_name(session, name=organisation)
    authorize(actor, Action.host_connect, org.id)
    host = _host_or_404(session, org, name)
    key = normalise_host_key(host_key)
    if host.host_key and host.host_key != key:
        raise _pinned_conflict(org, name, host.host_key, key)
    if host.host_key == key:
        return describe_host(session, host=host)
    host.host_key = key
    session.add(host)
    audit.record(
        session,
        actor=actor,
        action="host.pin_key",
        subject=f"host:{org.name}/{host.name}",
        organisation_id=org.id,
        payload={"fingerprint": host_key_fingerprint(key), "source": source},
    )
    commit(session)
    return describe_host(session, host=host)


def replace_host_key(
    *,
    session: Session,
    actor: Actor,
    organisation: str,
    name: str,
    host_key: str,
    confirmed: str,
    source: str,
) -> HostPublic:
    """Replace a host's pinned key with the one it presents (`host_key`, as scanned),
    only when the caller confirmed that key's fingerprint; audited with both."""
    org = organisation_by_name(session, name=organisation)
    authorize(actor, Action.host_connect, org.id)
    host = _host_or_404(session, org, name)
    key = normalise_host_key(host_key)
    new = host_key_fingerprint(key)
    old = host_key_fingerprint(host.host_key) if host.host_key else None
    if confirmed != new:
        raise Conflict(
            f"{name} presents {new}, not the confirmed {confirmed}: the pinned key "
            f"{old or '(none)'} was kept",
            errors={"fingerprint": f"the host presents {new}"},
        )
    if host.host_key == key:
        return describe_host(session, host=host)
    host.host_key = key
    session.add(host)
    audit.record(
        session,
        actor=actor,
        action="host.replace_key",
        subject=f"host:{org.name}/{host.name}",
        organisation_id=org.id,
        payload={"old_fingerprint": old, "new_fingerprint": new, "source": source},
    )
    commit(session)
    return describe_host(session, host=host)


def record_bootstrap(
    *, session: Session, actor: Actor, organisation: str, name: str, fingerprint: str, status: str
) -> None:
    """Audit that a host was bootstrapped (the node's key installed), or that it failed."""
    org = organisation_by_name(session, name=organisation)
    authorize(actor, Action.host_connect, org.id)
    host = _host_or_404(session, org, name)
    audit.record(
        session,
        actor=actor,
        action="host.bootstrap",
        subject=f"host:{org.name}/{host.name}",
        organisation_id=org.id,
        payload={"fingerprint": fingerprint, "status": status},
    )
    commit(session)


def delete_host(*, session: Session, actor: Actor, organisation: str, name: str) -> None:
    """Remove a host from the inventory (nothing is done to the machine)."""
    org = organisation_by_name(session, name=organisation)
    authorize(actor, Action.host_write, org.id)
    host = _host_or_404(session, org, name)
    audit.record(
        session,
        actor=actor,
        action="host.delete",
        subject=f"host:{org.name}/{host.name}",
        organisation_id=org.id,
        payload={"before": _host_snapshot(describe_host(session, host=host))},
    )
    _replace_groups(session, host, [])
    session.delete(host)
    commit(session)


def get_host(*, session: Session, actor: Actor, organisation: str, name: str) -> HostPublic:
    """One host, as the API and pages show it."""
    org = organisation_by_name(session, name=organisation)
    authorize(actor, Action.host_read, org.id)
    return describe_host(session, host=_host_or_404(session, org, name))


def list_hosts(
    *,
    session: Session,
    actor: Actor,
    organisation: str,
    limit: int = 50,
    offset: int = 0,
    search: str | None = None,
    filters: HostFilter | None = None,
    sort: HostSort = "name",
) -> Page[HostPublic]:
    """A page of an organisation's hosts narrowed by `filters`, in the order `sort` names
    (see ``HostSort``; ties by name, so that pages neither overlap nor skip)."""
    org = organisation_by_name(session, name=organisation)
    authorize(actor, Action.host_read, org.id)
    given = filters or HostFilter()
    if search:
        given = given.model_copy(update={"search": search})
    where = [col(Host.organisation_id) == org.id, *_host_filters(session, org, given)]
    order = _host_order(sort)
    rows = page(session, table=Host, where=where, order_by=order, limit=limit, offset=offset)
    items = _describe_hosts(session, rows.items)
    return Page(items=items, total=rows.total, limit=rows.limit, offset=rows.offset)


_OUTCOME_RANK = (
    HostOutcome.unreachable,
    HostOutcome.failed,
    HostOutcome.not_reached,
    HostOutcome.changed,
    HostOutcome.ok,
)


def _host_order(sort: HostSort) -> list[Any]:
    """ORDER BY terms for `sort`: the key (missing values last either way), then the name."""
    descending = sort.startswith("-")
    key = sort.removeprefix("-")
    if key == "name":
        return [col(Host.name).desc() if descending else col(Host.name)]
    value: Any
    if key == "address":
        value = col(Host.address)
    elif key == "group":
        value = (
            select(func.min(HostGroup.name))
            .join(HostGroupLink, col(HostGroupLink.group_id) == col(HostGroup.id))
            .where(col(HostGroupLink.host_id) == col(Host.id))
            .scalar_subquery()
        )
    else:
        column = col(getattr(HostRunState, key))
        state = select(column).where(col(HostRunState.host_id) == col(Host.id)).scalar_subquery()
        value = state
        if key == "last_outcome":
            value = case(*((state == outcome, rank) for rank, outcome in enumerate(_OUTCOME_RANK)))
    ordered = value.desc() if descending else value.asc()
    return [ordered.nulls_last(), col(Host.name)]


def _host_filters(
    session: Session, org: Organisation, filters: HostFilter
) -> list[ColumnElement[bool]]:
    where: list[ColumnElement[bool]] = []
    if filters.search:
        where.append(col(Host.name).contains(filters.search.lower()))
    if filters.key is not None:
        pinned = col(Host.host_key).is_not(None)
        where.append(pinned if filters.key == "pinned" else col(Host.host_key).is_(None))
    if filters.group is not None:
        where.append(col(Host.id).in_(_hosts_under(session, org, filters.group)))
    if filters.standing is not None:
        names = host_state.standing(session, organisation_id=org.id).hosts[filters.standing]
        where.append(col(Host.name).in_(names))
    return where


def _hosts_under(session: Session, org: Organisation, group: str) -> Any:
    """The ids of the hosts in `group` or a group inside it (a query)."""
    parents = rendering.group_parents(session, organisation_id=org.id)
    if group not in parents:
        raise NotFound(f"no group called {group!r} in {org.name}")
    distances = group_distances(parents)
    under = {name for name in parents if group in distances.get(name, {})}
    return (
        select(HostGroupLink.host_id)
        .join(HostGroup, col(HostGroup.id) == col(HostGroupLink.group_id))
        .where(HostGroup.organisation_id == org.id, col(HostGroup.name).in_(under))
    )


def describe_host(session: Session, *, host: Host) -> HostPublic:
    """A host with its credential's name and its groups' names."""
    return _describe_hosts(session, [host])[0]


def _describe_hosts(session: Session, hosts: list[Host]) -> list[HostPublic]:
    ids = [host.id for host in hosts]
    groups: dict[uuid.UUID, list[str]] = defaultdict(list)
    if ids:
        links = session.exec(
            select(HostGroupLink.host_id, HostGroup.name)
            .join(HostGroup, HostGroupLink.group_id == HostGroup.id)  # type: ignore[arg-type]
            .where(col(HostGroupLink.host_id).in_(ids))
        ).all()
        for host_id, group_name in links:
            groups[host_id].append(group_name)
    credential_ids = {host.credential_id for host in hosts if host.credential_id}
    names = dict(
        session.exec(
            select(Credential.id, Credential.name).where(col(Credential.id).in_(credential_ids))
        ).all()
        if credential_ids
        else []
    )
    states = _last_runs(session, ids)
    return [
        _host_public(
            host,
            names[host.credential_id] if host.credential_id else None,
            sorted(groups[host.id]),
            states.get(host.id),
        )
        for host in hosts
    ]


def _last_runs(
    session: Session, ids: list[uuid.UUID]
) -> dict[uuid.UUID, tuple[HostOutcome, datetime]]:
    """How the last run went on each of the hosts that have run, and when it ended."""
    if not ids:
        return {}
    rows = session.exec(
        select(HostRunState.host_id, HostRunState.last_outcome, HostRunState.last_run_at).where(
            col(HostRunState.host_id).in_(ids)
        )
    ).all()
    return {host_id: (HostOutcome(outcome), at) for host_id, outcome, at in rows}


def _host_public(
    host: Host,
    credential: str | None,
    groups: list[str],
    last_run: tuple[HostOutcome, datetime] | None = None,
) -> HostPublic:
    # the row was validated when it was written: build the public shape without re-checking
    fingerprint = host_key_fingerprint(host.host_key) if host.host_key else None
    outcome, at = last_run or (None, None)
    return HostPublic.model_construct(
        id=host.id,
        organisation_id=host.organisation_id,
        name=host.name,
        address=host.address,
        ssh_port=host.ssh_port,
        ssh_user=host.ssh_user,
        host_key=host.host_key,
        credential=credential,
        groups=groups,
        variables=host.variables,
        host_key_fingerprint=fingerprint,
        created_at=host.created_at,
        last_outcome=outcome,
        last_run_at=at,
    )


def _host_snapshot(host: HostPublic) -> dict[str, Any]:
    return host.model_dump(include={*HOST_FIELDS, "credential", "groups"})


def _host(session: Session, organisation_id: uuid.UUID, name: str) -> Host | None:
    return session.exec(
        select(Host).where(Host.organisation_id == organisation_id, Host.name == name)
    ).first()


def _host_or_404(session: Session, org: Organisation, name: str) -> Host:
    host = _host(session, org.id, name)
    if host is None:
        raise NotFound(f"no host called {name!r} in {org.name}")
    return host


def _credential(
    session: Session, organisation_id: uuid.UUID, name: str | None
) -> Credential | None:
    if not name:
        return None
    found = session.exec(
        select(Credential).where(
            Credential.organisation_id == organisation_id, Credential.name == name
        )
    ).first()
    if found is None:
        raise InvalidInput(
            f"no credential called {name!r}", errors={"credential": "no such credential"}
        )
    return found


def _credential_by_id(session: Session, credential_id: uuid.UUID | None) -> Credential | None:
    return session.get(Credential, credential_id) if credential_id else None


def _groups_named(
    session: Session, organisation_id: uuid.UUID, names: list[str]
) -> list[HostGroup]:
    if not names:
        return []
    found = session.exec(
        select(HostGroup).where(
            HostGroup.organisation_id == organisation_id, col(HostGroup.name).in_(names)
        )
    ).all()
    missing = sorted(set(names) - {group.name for group in found})
    if missing:
        raise InvalidInput(
            f"no such groups: {', '.join(missing)}",
            errors={"groups": f"unknown group(s): {', '.join(missing)}"},
        )
    return list(found)


def _replace_groups(session: Session, host: Host, groups: list[HostGroup]) -> None:
    for link in session.exec(select(HostGroupLink).where(HostGroupLink.host_id == host.id)):
        session.delete(link)
    session.flush()
    session.add_all(HostGroupLink(host_id=host.id, group_id=group.id) for group in groups)


# --- groups ------------------------------------------------------------------------


def create_group(
    *, session: Session, actor: Actor, organisation: str, data: GroupCreate | Fields
) -> GroupPublic:
    """Add a group, optionally inside a parent group."""
    org = organisation_by_name(session, name=organisation)
    authorize(actor, Action.group_write, org.id)
    group_in = parse(GroupCreate, data)
    if _group(session, org.id, group_in.name) is not None:
        raise Conflict(
            f"a group called {group_in.name!r} exists already in {org.name}",
            errors={"name": "is already taken"},
        )
    parent = _parent(session, org.id, group_in.parent)
    group = HostGroup.model_validate(
        group_in,
        update={"organisation_id": org.id, "parent_id": parent.id if parent else None},
    )
    # a new group has no hosts yet, so this widens nothing today; it stays checked so
    # that a group made with members could not bypass the rule
    before = credential_scope.membership(session, organisation_id=org.id)
    _authorize_reach(session, actor, org, before, before.with_parent(group.id, group.parent_id))
    session.add(group)
    session.flush()
    public = describe_group(session, group=group)
    audit.record(
        session,
        actor=actor,
        action="group.create",
        subject=f"group:{org.name}/{group.name}",
        organisation_id=org.id,
        payload={"after": public.model_dump(include=GROUP_FIELDS)},
    )
    commit(session)
    return public


def update_group(
    *, session: Session, actor: Actor, organisation: str, name: str, data: GroupUpdate | Fields
) -> GroupPublic:
    """Change a group's description, parent or variables; refuses to make a cycle."""
    org = organisation_by_name(session, name=organisation)
    authorize(actor, Action.group_write, org.id)
    update = parse(GroupUpdate, data)
    group = _group_or_404(session, org, name)
    before = describe_group(session, group=group).model_dump(include=GROUP_FIELDS)
    if "parent" in update.model_fields_set:
        parent = _parent(session, org.id, update.parent)
        _refuse_cycle(session, group, parent)
        parent_id = parent.id if parent else None
        members = credential_scope.membership(session, organisation_id=org.id)
        _authorize_reach(session, actor, org, members, members.with_parent(group.id, parent_id))
        group.parent_id = parent_id
    group.sqlmodel_update(update.model_dump(exclude_unset=True, exclude={"parent"}))
    session.add(group)
    session.flush()
    public = describe_group(session, group=group)
    audit.record(
        session,
        actor=actor,
        action="group.update",
        subject=f"group:{org.name}/{group.name}",
        organisation_id=org.id,
        payload=audit.changes(before, public.model_dump(include=GROUP_FIELDS)),
    )
    commit(session)
    return public


def delete_group(*, session: Session, actor: Actor, organisation: str, name: str) -> None:
    """Delete a group with no child groups; its hosts stay."""
    org = organisation_by_name(session, name=organisation)
    authorize(actor, Action.group_write, org.id)
    group = _group_or_404(session, org, name)
    public = describe_group(session, group=group)
    if public.children:
        raise Conflict(f"group {name!r} has child groups: {', '.join(public.children)}")
    audit.record(
        session,
        actor=actor,
        action="group.delete",
        subject=f"group:{org.name}/{group.name}",
        organisation_id=org.id,
        payload={"before": public.model_dump(include={"name", "description", "parent"})},
    )
    for link in session.exec(select(HostGroupLink).where(HostGroupLink.group_id == group.id)):
        session.delete(link)
    session.flush()  # the links first: deleting the group first would cascade to them
    session.delete(group)
    commit(session)


def list_groups(*, session: Session, actor: Actor, organisation: str) -> list[GroupPublic]:
    """An organisation's groups, by name."""
    org = organisation_by_name(session, name=organisation)
    authorize(actor, Action.group_read, org.id)
    groups = session.exec(
        select(HostGroup).where(HostGroup.organisation_id == org.id).order_by(HostGroup.name)
    ).all()
    counts = _host_counts(session, org.id)
    names = {group.id: group.name for group in groups}
    children: dict[uuid.UUID, list[str]] = defaultdict(list)
    for group in groups:
        if group.parent_id is not None:
            children[group.parent_id].append(group.name)
    return [
        GroupPublic(
            **group.model_dump(),
            parent=names.get(group.parent_id) if group.parent_id else None,
            children=sorted(children[group.id]),
            host_count=counts.get(group.id, 0),
        )
        for group in groups
    ]


def get_group(*, session: Session, actor: Actor, organisation: str, name: str) -> GroupPublic:
    """One group, with its parent and children."""
    org = organisation_by_name(session, name=organisation)
    authorize(actor, Action.group_read, org.id)
    return describe_group(session, group=_group_or_404(session, org, name))


def describe_group(session: Session, *, group: HostGroup) -> GroupPublic:
    """A group with its parent's and children's names."""
    siblings = session.exec(
        select(HostGroup).where(HostGroup.organisation_id == group.organisation_id)
    ).all()
    count = session.exec(
        select(func.count()).select_from(HostGroupLink).where(HostGroupLink.group_id == group.id)
    ).one()
    return _group_public(group, siblings, int(count))


def _group_public(group: HostGroup, all_groups: Any, host_count: int = 0) -> GroupPublic:
    by_id = {other.id: other for other in all_groups}
    parent = by_id.get(group.parent_id) if group.parent_id else None
    children = sorted(other.name for other in all_groups if other.parent_id == group.id)
    return GroupPublic(
        **group.model_dump(),
        parent=parent.name if parent else None,
        children=children,
        host_count=host_count,
    )


def _host_counts(session: Session, organisation_id: uuid.UUID) -> dict[uuid.UUID, int]:
    """How many hosts are directly in each group of an organisation: one query."""
    rows = session.exec(
        select(HostGroupLink.group_id, func.count())
        .join(HostGroup, HostGroupLink.group_id == HostGroup.id)  # type: ignore[arg-type]
        .where(HostGroup.organisation_id == organisation_id)
        .group_by(col(HostGroupLink.group_id))
    ).all()
    return {group_id: int(count) for group_id, count in rows}


def _group(session: Session, organisation_id: uuid.UUID, name: str) -> HostGroup | None:
    return session.exec(
        select(HostGroup).where(
            HostGroup.organisation_id == organisation_id, HostGroup.name == name
        )
    ).first()


def _group_or_404(session: Session, org: Organisation, name: str) -> HostGroup:
    group = _group(session, org.id, name)
    if group is None:
        raise NotFound(f"no group called {name!r} in {org.name}")
    return group


def _parent(session: Session, organisation_id: uuid.UUID, name: str | None) -> HostGroup | None:
    if not name:
        return None
    parent = _group(session, organisation_id, name)
    if parent is None:
        raise InvalidInput(f"no group called {name!r}", errors={"parent": "no such group"})
    return parent


def _refuse_cycle(session: Session, group: HostGroup, parent: HostGroup | None) -> None:
    seen: set[uuid.UUID] = set()
    while parent is not None and parent.id not in seen:
        if parent.id == group.id:
            raise InvalidInput(
                "a group cannot be inside itself",
                errors={"parent": f"{group.name} would contain itself"},
            )
        seen.add(parent.id)
        parent = session.get(HostGroup, parent.parent_id) if parent.parent_id else None
