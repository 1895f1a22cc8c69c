"""Definitions: a module applied to a host or a group with settings, kept as revisions.

Every save appends an immutable revision; one revision is published. Rolling back
publishes an older revision's settings again, as a new revision: nothing is ever
overwritten. Settings are validated by the module's settings model and its
``validate_settings`` hooks before anything is written.
"""

from __future__ import annotations

import difflib
import uuid
from typing import Any

import yaml
from pydantic import ValidationError
from sqlmodel import Session, col, select

from infracms.errors import Conflict, InvalidInput, NotFound
from infracms.models.definition import (
    Definition,
    DefinitionCreate,
    DefinitionPublic,
    Revision,
    RevisionCreate,
    RevisionPublic,
    Rollback,
    TargetRef,
)
from infracms.models.host import Host, HostGroup, HostGroupLink
from infracms.models.organisation import Organisation
from infracms.modules.targets import Target
from infracms.plugins import Plugins
from infracms.services import audit, secret_sources
from infracms.services.authz import Action, authorize
from infracms.services.common import Fields, commit, organisation_by_name, parse
from infracms.services.context import Actor
from infracms.services.modules import module_or_404, require_enabled


def create_definition(
    *,
    session: Session,
    actor: Actor,
    plugins: Plugins,
    organisation: str,
    data: DefinitionCreate | Fields,
) -> DefinitionPublic:
    """Create a definition and its first revision, published."""
    definition = add_definition(
        session, actor=actor, plugins=plugins, organisation=organisation, data=data
    )
    commit(session)
    return describe(session, definition=definition)


def add_definition(
    session: Session,
    *,
    actor: Actor,
    plugins: Plugins,
    organisation: str,
    data: DefinitionCreate | Fields,
) -> Definition:
    """Create a definition in the caller's transaction (see create_definition)."""
    org = organisation_by_name(session, name=organisation)
    authorize(actor, Action.definition_write, org.id)
    definition_in = parse(DefinitionCreate, data)
    if _definition(session, org.id, definition_in.name) is not None:
        raise Conflict(
            f"a definition called {definition_in.name!r} exists already",
            errors={"name": "is already taken"},
        )
    module_or_404(plugins, definition_in.module)
    require_enabled(session, organisation_id=org.id, name=definition_in.module)
    host_id, group_id = _target_ids(session, org.id, definition_in.target)
    definition = Definition(
        organisation_id=org.id,
        name=definition_in.name,
        module=definition_in.module,
        description=definition_in.description,
        host_id=host_id,
        group_id=group_id,
    )
    settings = validate_settings(
        session,
        plugins=plugins,
        org=org,
        module_name=definition_in.module,
        target=definition_in.target,
        settings=definition_in.settings,
    )
    session.add(definition)
    _append(session, actor, org, definition, settings, definition_in.message, publish=True)
    return definition


def save_revision(
    *,
    session: Session,
    actor: Actor,
    plugins: Plugins,
    organisation: str,
    name: str,
    data: RevisionCreate | Fields,
) -> DefinitionPublic:
    """Save new settings as the next revision (published unless told otherwise)."""
    definition = add_revision(
        session, actor=actor, plugins=plugins, organisation=organisation, name=name, data=data
    )
    commit(session)
    return describe(session, definition=definition)


def add_revision(
    session: Session,
    *,
    actor: Actor,
    plugins: Plugins,
    organisation: str,
    name: str,
    data: RevisionCreate | Fields,
) -> Definition:
    """Save a revision in the caller's transaction (see save_revision)."""
    org, definition = _editable(session, actor, organisation, name)
    revision_in = parse(RevisionCreate, data)
    target = target_of(session, definition=definition)
    settings = validate_settings(
        session,
        plugins=plugins,
        org=org,
        module_name=definition.module,
        target=target,
        settings=revision_in.settings,
    )
    _append(session, actor, org, definition, settings, revision_in.message, revision_in.publish)
    return definition


def publish_revision(
    *, session: Session, actor: Actor, organisation: str, name: str, number: int
) -> DefinitionPublic:
    """Publish an existing revision as it is (e.g. a draft saved unpublished)."""
    org, definition = _editable(session, actor, organisation, name)
    _revision(session, definition, number)
    before = definition.published
    definition.published = number
    session.add(definition)
    audit.record(
        session,
        actor=actor,
        action="definition.publish",
        subject=f"definition:{org.name}/{definition.name}",
        organisation_id=org.id,
        payload={"before": {"published": before}, "after": {"published": number}},
    )
    commit(session)
    return describe(session, definition=definition)


def rollback(
    *,
    session: Session,
    actor: Actor,
    plugins: Plugins,
    organisation: str,
    name: str,
    data: Rollback | Fields,
) -> DefinitionPublic:
    """Publish an older revision's settings again, as a new revision."""
    org, definition = _editable(session, actor, organisation, name)
    rollback_in = parse(Rollback, data)
    old = _revision(session, definition, rollback_in.revision)
    settings = validate_settings(
        session,
        plugins=plugins,
        org=org,
        module_name=definition.module,
        target=target_of(session, definition=definition),
        settings=old.settings,
    )
    message = rollback_in.message or f"roll back to revision {old.number}"
    _append(
        session, actor, org, definition, settings, message, publish=True, rolled_back_to=old.number
    )
    commit(session)
    return describe(session, definition=definition)


def retire_definition(*, session: Session, actor: Actor, organisation: str, name: str) -> None:
    """Stop applying a definition; its history stays."""
    org, definition = _editable(session, actor, organisation, name)
    from infracms.models.base import utcnow

    definition.retired_at = utcnow()
    session.add(definition)
    audit.record(
        session,
        actor=actor,
        action="definition.retire",
        subject=f"definition:{org.name}/{definition.name}",
        organisation_id=org.id,
    )
    commit(session)


def get_definition(
    *, session: Session, actor: Actor, organisation: str, name: str
) -> DefinitionPublic:
    """One definition with its published settings."""
    org = organisation_by_name(session, name=organisation)
    authorize(actor, Action.definition_read, org.id)
    return describe(session, definition=_definition_or_404(session, org, name))


def list_definitions(
    *, session: Session, actor: Actor, organisation: str, include_retired: bool = False
) -> list[DefinitionPublic]:
    """An organisation's definitions, by name."""
    org = organisation_by_name(session, name=organisation)
    authorize(actor, Action.definition_read, org.id)
    query = select(Definition).where(Definition.organisation_id == org.id)
    if not include_retired:
        query = query.where(col(Definition.retired_at).is_(None))
    return [
        describe(session, definition=d) for d in session.exec(query.order_by(Definition.name)).all()
    ]


def history(
    *, session: Session, actor: Actor, organisation: str, name: str
) -> list[RevisionPublic]:
    """Every revision of a definition, newest first."""
    org = organisation_by_name(session, name=organisation)
    authorize(actor, Action.definition_read, org.id)
    definition = _definition_or_404(session, org, name)
    revisions = session.exec(
        select(Revision)
        .where(Revision.definition_id == definition.id)
        .order_by(col(Revision.number).desc())
    ).all()
    return [
        RevisionPublic(**r.model_dump(), published=r.number == definition.published)
        for r in revisions
    ]


def diff(
    *, session: Session, actor: Actor, organisation: str, name: str, old: int, new: int
) -> dict[str, Any]:
    """What changed between two revisions: field by field, and as a unified text diff."""
    org = organisation_by_name(session, name=organisation)
    authorize(actor, Action.definition_read, org.id)
    definition = _definition_or_404(session, org, name)
    before = _revision(session, definition, old).settings
    after = _revision(session, definition, new).settings
    return {
        "old": old,
        "new": new,
        "changes": field_changes(before, after),
        "text": text_diff(before, after, old, new),
    }


def field_changes(before: dict[str, Any], after: dict[str, Any]) -> list[dict[str, Any]]:
    """The dotted paths whose values differ, with the value on each side."""
    flat_before, flat_after = _flatten(before), _flatten(after)
    return [
        {"field": path, "before": flat_before.get(path), "after": flat_after.get(path)}
        for path in sorted(flat_before.keys() | flat_after.keys())
        if flat_before.get(path, _MISSING) != flat_after.get(path, _MISSING)
    ]


_MISSING = object()


def _flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, dict) and (value or not prefix):
        flat: dict[str, Any] = {}
        for key, item in value.items():
            flat.update(_flatten(item, f"{prefix}.{key}" if prefix else str(key)))
        return flat
    return {prefix: value}


def text_diff(before: dict[str, Any], after: dict[str, Any], old: int, new: int) -> str:
    """A unified diff of the two settings as YAML."""
    lines_before = yaml.safe_dump(before, sort_keys=True).splitlines(keepends=True)
    lines_after = yaml.safe_dump(after, sort_keys=True).splitlines(keepends=True)
    return "".join(
        difflib.unified_diff(lines_before, lines_after, f"revision {old}", f"revision {new}")
    )


def validate_settings(
    session: Session,
    *,
    plugins: Plugins,
    org: Organisation,
    module_name: str,
    target: TargetRef,
    settings: dict[str, Any],
) -> dict[str, Any]:
    """Settings checked by the module's model and hooks, with defaults filled in; their
    $env/$file references must be granted to the organisation (secret_sources)."""
    module = module_or_404(plugins, module_name)
    try:
        model = module.settings.model_validate(settings)
    except ValidationError as exc:
        raise InvalidInput(
            f"the settings of {module_name} are invalid",
            errors={
                "settings." + ".".join(str(p) for p in e["loc"]): e["msg"].removeprefix(
                    "Value error, "
                )
                for e in exc.errors()
            },
        ) from exc
    hook_target = Target(
        kind=target.kind,
        name=target.name,
        organisation=org.name,
        hosts=hosts_of(session, org=org, target=target),
    )
    found = module.validate_settings(settings=model, target=hook_target)
    problems = {f"settings.{k}": v for k, v in found.items()}
    if problems:
        raise InvalidInput(
            f"the settings of {module_name} do not fit {target.name}", errors=problems
        )
    dumped: dict[str, Any] = model.model_dump(mode="json")
    secret_sources.check_settings(session, org=org, settings=dumped)
    return dumped


def _append(
    session: Session,
    actor: Actor,
    org: Organisation,
    definition: Definition,
    settings: dict[str, Any],
    message: str,
    publish: bool,
    rolled_back_to: int | None = None,
) -> Revision:
    previous = (
        _revision(session, definition, definition.published).settings
        if definition.published
        else {}
    )
    definition.latest += 1
    revision = Revision(
        definition_id=definition.id,
        number=definition.latest,
        settings=settings,
        message=message,
        author=actor.name,
    )
    if publish:
        definition.published = revision.number
    session.add(definition)
    session.add(revision)
    audit.record(
        session,
        actor=actor,
        action="definition.save" if revision.number > 1 else "definition.create",
        subject=f"definition:{org.name}/{definition.name}",
        organisation_id=org.id,
        payload={
            "module": definition.module,
            "revision": revision.number,
            "published": publish,
            "message": message,
            "rolled_back_to": rolled_back_to,
            "changes": field_changes(previous, settings),
        },
    )
    return revision


def describe(session: Session, *, definition: Definition) -> DefinitionPublic:
    """A definition as the API and pages show it."""
    settings = (
        _revision(session, definition, definition.published).settings
        if definition.published
        else None
    )
    return DefinitionPublic(
        id=definition.id,
        name=definition.name,
        module=definition.module,
        description=definition.description,
        target=target_of(session, definition=definition),
        published=definition.published,
        latest=definition.latest,
        settings=settings,
        retired=definition.retired_at is not None,
        created_at=definition.created_at,
    )


def target_of(session: Session, *, definition: Definition) -> TargetRef:
    """Where a definition applies, by name."""
    if definition.host_id is not None:
        host = session.get(Host, definition.host_id)
        return TargetRef(host=host.name if host else "?")
    group = session.get(HostGroup, definition.group_id)
    return TargetRef(group=group.name if group else "?")


def _target_ids(
    session: Session, organisation_id: uuid.UUID, target: TargetRef
) -> tuple[uuid.UUID | None, uuid.UUID | None]:
    if target.host is not None:
        host = session.exec(
            select(Host.id).where(Host.organisation_id == organisation_id, Host.name == target.host)
        ).first()
        if host is None:
            raise InvalidInput(
                f"no host called {target.host!r}", errors={"target.host": "no such host"}
            )
        return host, None
    group = session.exec(
        select(HostGroup.id).where(
            HostGroup.organisation_id == organisation_id, HostGroup.name == target.group
        )
    ).first()
    if group is None:
        raise InvalidInput(
            f"no group called {target.group!r}", errors={"target.group": "no such group"}
        )
    return None, group


def hosts_of(session: Session, *, org: Organisation, target: TargetRef) -> tuple[str, ...]:
    if target.host is not None:
        return (target.host,)
    groups = session.exec(select(HostGroup).where(HostGroup.organisation_id == org.id)).all()
    root = next((g.id for g in groups if g.name == target.group), None)
    covered = {root}
    changed = True
    while changed:
        more = {g.id for g in groups if g.parent_id in covered} - covered
        covered |= more
        changed = bool(more)
    names = session.exec(
        select(Host.name)
        .join(HostGroupLink, HostGroupLink.host_id == Host.id)  # type: ignore[arg-type]
        .where(col(HostGroupLink.group_id).in_(covered))
    ).all()
    return tuple(sorted(set(names)))


def _editable(
    session: Session, actor: Actor, organisation: str, name: str
) -> tuple[Organisation, Definition]:
    org = organisation_by_name(session, name=organisation)
    authorize(actor, Action.definition_write, org.id)
    definition = _definition_or_404(session, org, name)
    if definition.retired_at is not None:
        raise Conflict(f"definition {name!r} is retired")
    return org, definition


def _definition(session: Session, organisation_id: uuid.UUID, name: str) -> Definition | None:
    return session.exec(
        select(Definition).where(
            Definition.organisation_id == organisation_id, Definition.name == name
        )
    ).first()


def _definition_or_404(session: Session, org: Organisation, name: str) -> Definition:
    definition = _definition(session, org.id, name)
    if definition is None:
        raise NotFound(f"no definition called {name!r} in {org.name}")
    return definition


def _revision(session: Session, definition: Definition, number: int) -> Revision:
    revision = session.exec(
        select(Revision).where(Revision.definition_id == definition.id, Revision.number == number)
    ).first()
    if revision is None:
        raise NotFound(f"definition {definition.name!r} has no revision {number}")
    return revision
