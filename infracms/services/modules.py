"""Modules: made available by the node admin, enabled by an organisation's owner.

Enabling resolves dependencies: every required module is enabled too (depth first), a
missing one, one not made available, a version outside the required range, or a cycle
is refused with the whole chain named, and nothing is enabled.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlmodel import Session, col, select

from infracms.errors import Conflict, InvalidInput, NotFound
from infracms.models.definition import AvailableModule, Definition, EnabledModule
from infracms.modules.contract import Module
from infracms.modules.targets import DefinitionUse
from infracms.plugins import Plugins
from infracms.services import audit
from infracms.services.authz import Action, authorize
from infracms.services.common import commit, organisation_by_name
from infracms.services.context import Actor


@dataclass(frozen=True)
class ModuleInfo:
    """A module as the modules page and API show it."""

    name: str
    version: str
    title: str
    description: str
    requires: list[dict[str, str]]
    multiple: bool
    available: bool
    enabled: bool
    enabled_version: str | None
    settings_schema: dict[str, Any]


def list_modules(
    *, session: Session, actor: Actor, plugins: Plugins, organisation: str | None = None
) -> list[ModuleInfo]:
    """Every known module, with whether it is available and (for an organisation) enabled."""
    available = set(session.exec(select(AvailableModule.name)).all())
    enabled: dict[str, str] = {}
    if organisation is not None:
        org = organisation_by_name(session, name=organisation)
        authorize(actor, Action.definition_read, org.id)
        rows = session.exec(select(EnabledModule).where(EnabledModule.organisation_id == org.id))
        enabled = {row.name: row.version for row in rows}
    return [
        _info(module, module.name in available, enabled.get(module.name))
        for module in sorted(plugins.registry.modules.values(), key=lambda m: m.name)
    ]


def _info(module: type[Module], available: bool, enabled_version: str | None) -> ModuleInfo:
    return ModuleInfo(
        name=module.name,
        version=module.version,
        title=module.title,
        description=module.description,
        requires=[{"name": d.name, "versions": d.versions} for d in module.requires],
        multiple=module.multiple,
        available=available,
        enabled=enabled_version is not None,
        enabled_version=enabled_version,
        settings_schema=module.settings_schema(),
    )


def module_or_404(plugins: Plugins, name: str) -> type[Module]:
    """The module called `name`, or NotFound."""
    module = plugins.registry.get(name)
    if module is None:
        raise NotFound(f"no module called {name!r} on this node")
    return module


def set_available(
    *, session: Session, actor: Actor, plugins: Plugins, name: str, available: bool
) -> list[str]:
    """Make a module available to organisations with what it requires, or withdraw it
    (node admins); the names whose availability changed.

    A module whose requirement is not available could never be enabled: making it
    available makes its requirements available too (each audited), and a module that an
    available one requires cannot be withdrawn before it."""
    authorize(actor, Action.module_make_available, None)
    module_or_404(plugins, name)
    current = set(session.exec(select(AvailableModule.name)).all())
    if available == (name in current):
        return []
    changed = (
        _make_available(plugins, name, current)
        if available
        else _withdraw(session, plugins, name, current)
    )
    for changed_name in changed:
        audit.record(
            session,
            actor=actor,
            action="module.available" if available else "module.unavailable",
            subject=f"module:{changed_name}",
            payload={"requested": name} if changed_name != name else None,
        )
        if available:
            session.add(AvailableModule(name=changed_name))
        else:
            session.delete(session.get(AvailableModule, changed_name))
    commit(session)
    return changed


def _make_available(plugins: Plugins, name: str, current: set[str]) -> list[str]:
    """`name` and the requirements not yet available, requirements first."""
    order = _resolve(plugins, name, current | _requirements(plugins, name), {})
    return [module.name for module in order if module.name not in current]


def _requirements(plugins: Plugins, name: str) -> set[str]:
    found: set[str] = set()
    pending = [name]
    while pending:
        module = plugins.registry.get(pending.pop())
        for dependency in module.requires if module else ():
            if dependency.name not in found:
                found.add(dependency.name)
                pending.append(dependency.name)
    return found | {name}


def _withdraw(session: Session, plugins: Plugins, name: str, current: set[str]) -> list[str]:
    users = session.exec(select(EnabledModule).where(EnabledModule.name == name)).all()
    if users:
        raise Conflict(f"module {name!r} is enabled in {len(users)} organisation(s)")
    needers = sorted(
        other
        for other in current - {name}
        if (module := plugins.registry.get(other)) is not None
        and any(dependency.name == name for dependency in module.requires)
    )
    if needers:
        raise Conflict(f"module {name!r} is required by {', '.join(needers)}: withdraw them first")
    return [name]


def enable_module(
    *, session: Session, actor: Actor, plugins: Plugins, organisation: str, name: str
) -> list[str]:
    """Enable a module and what it requires in an organisation; the names newly enabled."""
    org = organisation_by_name(session, name=organisation)
    authorize(actor, Action.module_enable, org.id)
    module_or_404(plugins, name)
    available = set(session.exec(select(AvailableModule.name)).all())
    rows = session.exec(select(EnabledModule).where(EnabledModule.organisation_id == org.id))
    enabled = {row.name: row.version for row in rows}
    order = _resolve(plugins, name, available, enabled)
    newly = [module.name for module in order if module.name not in enabled]
    for module in order:
        if module.name in enabled:
            continue
        session.add(EnabledModule(organisation_id=org.id, name=module.name, version=module.version))
        audit.record(
            session,
            actor=actor,
            action="module.enable",
            subject=f"module:{org.name}/{module.name}",
            organisation_id=org.id,
            payload={"version": module.version, "requested": name},
        )
    commit(session)
    return newly


def _resolve(
    plugins: Plugins, name: str, available: set[str], enabled: dict[str, str]
) -> list[type[Module]]:
    """Modules in dependency order (dependencies first), or InvalidInput naming the chain."""
    order: list[type[Module]] = []
    done: set[str] = set()

    def visit(current: str, chain: tuple[str, ...]) -> None:
        if current in chain:
            raise InvalidInput("dependency cycle", errors={"module": " → ".join((*chain, current))})
        if current in done:
            return
        module = plugins.registry.get(current)
        path = " → ".join((*chain, current))
        if module is None:
            raise InvalidInput("missing dependency", errors={"module": f"{path}: not installed"})
        if current not in available:
            raise InvalidInput(
                "module not available",
                errors={"module": f"{path}: not made available by the node admin"},
            )
        for dependency in module.requires:
            _check_version(plugins, dependency, current, enabled, (*chain, current))
            visit(dependency.name, (*chain, current))
        done.add(current)
        order.append(module)

    visit(name, ())
    return order


def _check_version(
    plugins: Plugins, dependency: Any, needer: str, enabled: dict[str, str], chain: tuple[str, ...]
) -> None:
    provided = plugins.registry.get(dependency.name)
    version = enabled.get(dependency.name) or (provided.version if provided else None)
    if version is not None and not dependency.allows(version):
        raise InvalidInput(
            "version conflict",
            errors={
                "module": f"{' → '.join(chain)} needs {dependency.name} {dependency.versions}, "
                f"found {version}"
            },
        )


def disable_module(
    *, session: Session, actor: Actor, plugins: Plugins, organisation: str, name: str
) -> None:
    """Disable a module, refused while definitions or other enabled modules use it."""
    org = organisation_by_name(session, name=organisation)
    authorize(actor, Action.module_enable, org.id)
    row = session.get(EnabledModule, (org.id, name))
    if row is None:
        raise NotFound(f"module {name!r} is not enabled in {org.name}")
    uses = _definitions_using(session, org.id, name)
    if uses:
        names = ", ".join(use.name for use in uses)
        raise Conflict(f"module {name!r} is used by definitions: {names}")
    _refuse_if_required(session, plugins, org.id, name)
    module = plugins.registry.get(name)
    if module is not None:
        reason = module.refuse_disable(organisation=org.name, definitions=uses)
        if reason:
            raise Conflict(f"module {name!r} cannot be disabled: {reason}")
    audit.record(
        session,
        actor=actor,
        action="module.disable",
        subject=f"module:{org.name}/{name}",
        organisation_id=org.id,
        payload={"version": row.version},
    )
    session.delete(row)
    commit(session)


def _definitions_using(session: Session, organisation_id: Any, name: str) -> list[DefinitionUse]:
    rows = session.exec(
        select(Definition).where(
            Definition.organisation_id == organisation_id,
            Definition.module == name,
            col(Definition.retired_at).is_(None),
        )
    ).all()
    return [DefinitionUse(name=row.name, target=str(row.host_id or row.group_id)) for row in rows]


def _refuse_if_required(
    session: Session, plugins: Plugins, organisation_id: Any, name: str
) -> None:
    enabled = session.exec(
        select(EnabledModule.name).where(EnabledModule.organisation_id == organisation_id)
    ).all()
    needers = sorted(
        other
        for other in enabled
        if (module := plugins.registry.get(other)) is not None
        and any(dependency.name == name for dependency in module.requires)
    )
    if needers:
        raise Conflict(f"module {name!r} is required by enabled modules: {', '.join(needers)}")


def require_enabled(session: Session, *, organisation_id: Any, name: str) -> None:
    """Refuse to use a module the organisation has not enabled."""
    if session.get(EnabledModule, (organisation_id, name)) is None:
        raise InvalidInput(
            f"module {name!r} is not enabled in this organisation",
            errors={"module": "is not enabled here: an owner enables it on the modules page"},
        )
