"""The settings each host of an organisation gets, from its published definitions."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import case
from sqlmodel import Session, col, select

from infracms.errors import Conflict, InvalidInput
from infracms.models.definition import Definition, Revision
from infracms.models.host import Host, HostGroup, HostGroupLink
from infracms.modules.contract import secret_references
from infracms.modules.render import (
    DefinitionRow,
    ExtraVariables,
    HostRow,
    Prepare,
    RenderConflict,
    Shape,
    settle,
    shapes,
)
from infracms.modules.targets import HostFacts
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
    org = organisation_by_name(session, name=organisation)
    authorize(actor, Action.definition_read, org.id)
    hosts = [
        HostRow(name, groups, variables, ssh_user, ssh_port)
        for (name, variables, ssh_user, ssh_port), groups in hosts_with_groups(
            session,
            organisation_id=org.id,
            columns=(Host.variables, Host.ssh_user, Host.ssh_port),
        )
    ]
    found = resolve(
        plugins,
        hosts,
        group_parents(session, organisation_id=org.id),
        definition_rows(session, organisation_id=org.id, pinned=pinned),
    )
    return settings_of(plugins, found)


def resolve(
    plugins: Plugins,
    hosts: list[HostRow],
    parents: Mapping[str, str | None],
    definitions: list[DefinitionRow],
) -> list[Shape]:
    """The hosts some definition reaches, by shape, with what wins; a tie is a Conflict."""
    multiple = {name: module.multiple for name, module in plugins.registry.modules.items()}
    try:
        return shapes(hosts, parents, definitions, multiple)
    except RenderConflict as exc:
        raise Conflict(str(exc)) from exc


def settings_of(
    plugins: Plugins, found: list[Shape], prepare: Prepare | None = None
) -> dict[str, dict[str, Any]]:
    """{host: {module: settings}} with the modules' extra_variables merged in;
    equal values are shared objects (see modules.render.settle)."""
    modules = plugins.registry.modules.items()
    data_paths = {name: module.data_paths for name, module in modules if module.data_paths}
    return settle(found, extra_variables_of(plugins), prepare, data_paths)


def extra_variables_of(plugins: Plugins) -> ExtraVariables | None:
    """Each module's extra_variables as one function, or None when no module derives any."""
    deriving = {name: m for name, m in plugins.registry.modules.items() if m.derives_variables()}
    if not deriving:
        return None

    def extra(module: str, settings: Mapping[str, Any], host: HostFacts) -> dict[str, Any] | None:
        found = deriving.get(module)
        if found is None:
            return None
        merged = dict(found.extra_variables(settings=settings, host=host))
        _refuse_references(module, merged)
        return merged

    return extra


def _refuse_references(module: str, extra: Mapping[str, Any]) -> None:
    """A hook adds no secret reference: it would be resolved without the scope and grant
    checks a definition's references get, and a hook may pass on host variables, which
    editors write (a host variable `{"$credential": …}` would reach any host)."""
    found = [path for path, _, _ in secret_references(extra)]
    if found:
        raise InvalidInput(
            f"the extra_variables of {module} returned a secret reference "
            f"({', '.join(found)}); secrets reach settings only from definitions"
        )


def hosts_with_groups(
    session: Session, *, organisation_id: Any, columns: Sequence[Any] = ()
) -> list[tuple[tuple[Any, ...], tuple[str, ...]]]:
    """The organisation's hosts by name, each as (its name and `columns`, the names of the
    groups it is directly in): one query."""
    rows = session.execute(
        select(Host.name, *columns, HostGroup.name)  # type: ignore[call-overload]
        .outerjoin(HostGroupLink, HostGroupLink.host_id == Host.id)
        .outerjoin(HostGroup, HostGroup.id == HostGroupLink.group_id)
        .where(Host.organisation_id == organisation_id)
        .order_by(Host.name)
    )
    found: dict[str, tuple[tuple[Any, ...], list[str]]] = {}
    for *host, group in rows:
        entry = found.get(host[0])
        if entry is None:
            entry = found[host[0]] = (tuple(host), [])
        if group is not None:
            entry[1].append(group)
    return [(host, tuple(groups)) for host, groups in found.values()]


def group_parents(session: Session, *, organisation_id: Any) -> dict[str, str | None]:
    """{group: its parent group, or None}."""
    groups = session.exec(
        select(HostGroup.id, HostGroup.name, HostGroup.parent_id).where(
            HostGroup.organisation_id == organisation_id
        )
    ).all()
    names = {group_id: name for group_id, name, _ in groups}
    return {name: names[parent] if parent else None for _, name, parent in groups}


def definition_rows(
    session: Session, *, organisation_id: Any, pinned: Mapping[str, int] | None = None
) -> list[DefinitionRow]:
    """The live definitions with their published settings, or with `pinned`
    ({definition: revision}) only those, at those revisions."""
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
