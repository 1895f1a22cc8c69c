"""The hosts of a group, seen and changed from the group's side.

Putting hosts into a group (or taking them out) is a change of their groups: editors
may (group.write and host.write), and a change that brings a host into the reach of a
scoped credential is a use of that credential (credential.use), as when the host's
groups are edited from the host's side. One audit entry records the hosts changed.
"""

from __future__ import annotations

from sqlmodel import Session, col, select

from infracms.errors import InvalidInput
from infracms.models.host import GroupHosts, Host, HostGroup, HostGroupLink, HostPublic
from infracms.models.organisation import Organisation
from infracms.services import audit, credential_scope
from infracms.services.authz import Action, authorize
from infracms.services.common import Fields, commit, organisation_by_name, parse
from infracms.services.context import Actor
from infracms.services.inventory import _authorize_reach, _describe_hosts, _group_or_404


def group_hosts(
    *, session: Session, actor: Actor, organisation: str, name: str
) -> list[HostPublic]:
    """The hosts directly in a group, by name (those of its child groups are theirs)."""
    org = organisation_by_name(session, name=organisation)
    authorize(actor, Action.group_read, org.id)
    authorize(actor, Action.host_read, org.id)
    group = _group_or_404(session, org, name)
    hosts = session.exec(
        select(Host)
        .join(HostGroupLink, HostGroupLink.host_id == Host.id)  # type: ignore[arg-type]
        .where(HostGroupLink.group_id == group.id)
        .order_by(Host.name)
    ).all()
    return _describe_hosts(session, list(hosts))


def add_hosts(
    *, session: Session, actor: Actor, organisation: str, name: str, data: GroupHosts | Fields
) -> list[str]:
    """Put hosts into a group (those already in it stay); the names added."""
    hosts = parse(GroupHosts, data).hosts
    return _change(session, actor, organisation, name, hosts, adding=True)


def remove_hosts(
    *, session: Session, actor: Actor, organisation: str, name: str, data: GroupHosts | Fields
) -> list[str]:
    """Take hosts out of a group (the hosts stay in the inventory); the names removed."""
    hosts = parse(GroupHosts, data).hosts
    return _change(session, actor, organisation, name, hosts, adding=False)


def _change(
    session: Session, actor: Actor, organisation: str, name: str, names: list[str], adding: bool
) -> list[str]:
    org = organisation_by_name(session, name=organisation)
    authorize(actor, Action.group_write, org.id)
    authorize(actor, Action.host_write, org.id)
    group = _group_or_404(session, org, name)
    hosts = _hosts_named(session, org, names)
    before = credential_scope.membership(session, organisation_id=org.id)
    after, changed = before, []
    for host in hosts:
        now = before.groups.get(host.id, frozenset())
        wanted = now | {group.id} if adding else now - {group.id}
        if wanted != now:
            after = after.with_host(host.id, host.name, wanted)
            changed.append(host)
    if not changed:
        return []
    _authorize_reach(session, actor, org, before, after)
    _write_links(session, group, changed, adding)
    audit.record(
        session,
        actor=actor,
        action="group.add_hosts" if adding else "group.remove_hosts",
        subject=f"group:{org.name}/{group.name}",
        organisation_id=org.id,
        payload={"hosts": sorted(host.name for host in changed)},
    )
    commit(session)
    return sorted(host.name for host in changed)


def _write_links(session: Session, group: HostGroup, hosts: list[Host], adding: bool) -> None:
    if adding:
        session.add_all(HostGroupLink(host_id=host.id, group_id=group.id) for host in hosts)
        return
    for link in session.exec(
        select(HostGroupLink).where(
            HostGroupLink.group_id == group.id,
            col(HostGroupLink.host_id).in_([host.id for host in hosts]),
        )
    ):
        session.delete(link)


def _hosts_named(session: Session, org: Organisation, names: list[str]) -> list[Host]:
    found = session.exec(
        select(Host).where(Host.organisation_id == org.id, col(Host.name).in_(names))
    ).all()
    missing = sorted(set(names) - {host.name for host in found})
    if missing:
        raise InvalidInput(
            f"no such hosts in {org.name}: {', '.join(missing)}",
            errors={"hosts": f"unknown host(s): {', '.join(missing)}"},
        )
    return sorted(found, key=lambda host: host.name)
