"""The settings each host of an organisation gets, from its published definitions."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from typing import Any

from sqlalchemy import case
from sqlmodel import Session, col, select

from infracms.errors import Conflict
from infracms.models.definition import Definition, Revision
from infracms.models.host import Host, HostGroup, HostGroupLink
from infracms.modules.render import DefinitionRow, ExtraVariables, HostRow, RenderConflict, render
from infracms.plugins import Plugins
from infracms.services.authz import Action, authorize
from infracms.services.common import organisation_by_name
from infracms.services.context import Actor


def host_settings(
    *,
    session: Session,
    actor: Actor,
    plugins: Plugins,
    organisation: str,
    pinned: Mapping[str, int] | None = None,
) -> dict[str, dict[str, Any]]:
    """{host: {module: settings}} for every host of the organisation a definition reaches:
    the published revisions, or with `pinned` ({definition: revision}) only those."""
    org = organisation_by_name(session, organisation)
    authorize(actor, Action.definition_read, org.id)
    hosts = _host_rows(session, org.id)
    parents = _group_parents(session, org.id)
    definitions = _definition_rows(session, org.id, pinned)
    multiple = {name: module.multiple for name, module in plugins.registry.modules.items()}
    try:
        return render(hosts, parents, definitions, multiple, extra_variables_of(plugins))
    except RenderConflict as exc:
        raise Conflict(str(exc)) from exc


def extra_variables_of(plugins: Plugins) -> ExtraVariables | None:
    """The extra_variables hook as a plain function, or None when no plugin implements it."""
    caller = plugins.hook.extra_variables
    if not caller.get_hookimpls():
        return None
    modules = plugins.registry.modules

    def extra(module: str, settings: Mapping[str, Any], host: Mapping[str, Any]) -> dict[str, Any]:
        merged: dict[str, Any] = {}
        if module in modules:
            for found in caller(module=modules[module], settings=settings, host=host):
                merged.update(found or {})
        return merged

    return extra


def _host_rows(session: Session, organisation_id: Any) -> list[HostRow]:
    links = session.exec(
        select(HostGroupLink.host_id, HostGroup.name)
        .join(HostGroup, HostGroupLink.group_id == HostGroup.id)  # type: ignore[arg-type]
        .where(HostGroup.organisation_id == organisation_id)
    ).all()
    groups: dict[Any, list[str]] = defaultdict(list)
    for host_id, group in links:
        groups[host_id].append(group)
    rows = session.exec(
        select(Host.id, Host.name, Host.variables).where(Host.organisation_id == organisation_id)
    ).all()
    return [HostRow(name, tuple(groups[host_id]), variables) for host_id, name, variables in rows]


def _group_parents(session: Session, organisation_id: Any) -> dict[str, str | None]:
    groups = session.exec(
        select(HostGroup.id, HostGroup.name, HostGroup.parent_id).where(
            HostGroup.organisation_id == organisation_id
        )
    ).all()
    names = {group_id: name for group_id, name, _ in groups}
    return {name: names[parent] if parent else None for _, name, parent in groups}


def _definition_rows(
    session: Session, organisation_id: Any, pinned: Mapping[str, int] | None = None
) -> list[DefinitionRow]:
    revision = Revision.number == Definition.published
    if pinned is not None and not pinned:
        return []
    if pinned is not None:
        revision = Revision.number == case(pinned, value=Definition.name, else_=-1)
    rows = session.exec(
        select(Definition, Revision.settings, Host.name, HostGroup.name)
        .join(
            Revision,
            (Revision.definition_id == Definition.id)  # type: ignore[arg-type]
            & revision,
        )
        .outerjoin(Host, Host.id == Definition.host_id)  # type: ignore[arg-type]
        .outerjoin(HostGroup, HostGroup.id == Definition.group_id)  # type: ignore[arg-type]
        .where(Definition.organisation_id == organisation_id, col(Definition.retired_at).is_(None))
    ).all()
    return [
        DefinitionRow(
            name=definition.name,
            module=definition.module,
            target_kind="host" if host else "group",
            target=host or group,
            settings=settings,
        )
        for definition, settings, host, group in rows
    ]
