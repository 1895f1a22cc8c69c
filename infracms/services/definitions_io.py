"""Definitions as code: export an organisation's definitions to YAML files and import them.

One file per definition, ``<name>.yaml``::

    module: firewall
    target: {group: web}
    description: web servers accept HTTP and HTTPS
    settings:
      allowed_tcp_ports: [22, 80, 443]

Importing validates every file first and changes nothing if any is wrong (errors name
the file and line); then, in one transaction, it creates new definitions and saves a
revision only where the settings differ, so importing an export is a no-op. A dry run
reports what would change and writes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError
from sqlmodel import Session

from infracms.config import Settings
from infracms.errors import InfracmsError, InvalidInput, NotFound
from infracms.models.definition import DefinitionCreate, DefinitionPublic
from infracms.plugins import Plugins
from infracms.services import definition_files, definitions
from infracms.services.authz import Action, authorize
from infracms.services.common import commit, invalid_from, organisation_by_name
from infracms.services.context import Actor
from infracms.services.modules import require_enabled

DEFAULT_MAX_BYTES: int = Settings.model_fields["import_max_bytes"].default
FILE_KEYS = {"module", "target", "settings", "description", "message"}


def export_definitions(*, session: Session, actor: Actor, organisation: str) -> dict[str, str]:
    """The organisation's live definitions as {file name: YAML text}."""
    found = definitions.list_definitions(session=session, actor=actor, organisation=organisation)
    return {f"{d.name}.yaml": _to_yaml(d) for d in found}


def _to_yaml(definition: DefinitionPublic) -> str:
    document: dict[str, Any] = {
        "module": definition.module,
        "target": definition.target.model_dump(exclude_none=True),
    }
    if definition.description:
        document["description"] = definition.description
    document["settings"] = definition.settings or {}
    return yaml.dump(document, Dumper=_NoAliasDumper, sort_keys=False, allow_unicode=True)


class _NoAliasDumper(yaml.SafeDumper):
    """Writes a value shared by two keys out twice: imports refuse aliases."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def write_export(files: dict[str, str], directory: Path) -> None:
    """Write exported files into `directory` (created if needed)."""
    directory.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (directory / name).write_text(text)


def read_directory(directory: Path, *, max_bytes: int = DEFAULT_MAX_BYTES) -> dict[str, str]:
    """The YAML files of a directory, by name, within the bounds of `definition_files`."""
    return definition_files.read_directory(directory, max_bytes=max_bytes)


@dataclass
class ImportReport:
    """What an import did (or, for a dry run, would do), file by file."""

    created: list[str] = field(default_factory=list)
    updated: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    unchanged: list[str] = field(default_factory=list)
    dry_run: bool = False


def import_definitions(
    *,
    session: Session,
    actor: Actor,
    plugins: Plugins,
    organisation: str,
    files: dict[str, str],
    dry_run: bool = False,
    message: str = "imported",
) -> ImportReport:
    """Create or update definitions from YAML files; all or nothing."""
    org = organisation_by_name(session, name=organisation)
    authorize(actor, Action.definition_write, org.id)
    parsed, errors = _parse_all(files)
    if errors:
        raise InvalidInput(
            f"{len(errors)} file(s) do not parse; nothing was changed", errors=errors
        )
    report = ImportReport(dry_run=dry_run)
    plan: list[tuple[str, DefinitionCreate, dict[str, Any] | None]] = []
    for name, (document, lines) in parsed.items():
        try:
            plan.append(_plan_one(session, plugins, actor, org.name, name, document, report))
        except InfracmsError as exc:
            errors.update(_locate(name, exc, lines))
    if errors:
        raise InvalidInput(
            f"{len(errors)} problem(s) in the import; nothing was changed", errors=errors
        )
    if not dry_run:
        _apply(session, actor, plugins, org.name, plan, message)
    return report


def _plan_one(
    session: Session,
    plugins: Plugins,
    actor: Actor,
    organisation: str,
    file_name: str,
    document: dict[str, Any],
    report: ImportReport,
) -> tuple[str, DefinitionCreate, dict[str, Any] | None]:
    name = file_name.removesuffix(".yaml")
    unknown = set(document) - FILE_KEYS
    if unknown:
        raise InvalidInput("unknown keys", errors={sorted(unknown)[0][:64]: "unknown key"})
    try:
        wanted = DefinitionCreate.model_validate({**document, "name": name})
    except ValidationError as exc:
        raise invalid_from(exc) from exc
    org = organisation_by_name(session, name=organisation)
    settings = definitions.validate_settings(
        session,
        plugins=plugins,
        org=org,
        module_name=wanted.module,
        target=wanted.target,
        settings=wanted.settings,
    )
    try:
        current = definitions.get_definition(
            session=session, actor=actor, organisation=organisation, name=name
        )
    except NotFound:
        require_enabled(session, organisation_id=org.id, name=wanted.module)
        report.created.append(name)
        return name, wanted, None
    if current.module != wanted.module or current.target != wanted.target:
        raise InvalidInput(
            "module or target differs",
            errors={
                "module": f"definition {name} is {current.module} on {current.target.name}; "
                "retire it and import under a new name to change either"
            },
        )
    changes = definitions.field_changes(current.settings or {}, settings)
    if changes:
        report.updated[name] = changes
    else:
        report.unchanged.append(name)
    return name, wanted, (settings if changes else None)


def _apply(
    session: Session,
    actor: Actor,
    plugins: Plugins,
    organisation: str,
    plan: list[tuple[str, DefinitionCreate, dict[str, Any] | None]],
    message: str,
) -> None:
    """Write the planned changes in one transaction."""
    for name, wanted, new_settings in plan:
        if not _exists(session, actor, organisation, name):
            wanted.message = wanted.message or message
            definitions.add_definition(
                session, actor=actor, plugins=plugins, organisation=organisation, data=wanted
            )
            session.flush()
        elif new_settings is not None:
            definitions.add_revision(
                session,
                actor=actor,
                plugins=plugins,
                organisation=organisation,
                name=name,
                data={"settings": new_settings, "message": message},
            )
    commit(session)


def _exists(session: Session, actor: Actor, organisation: str, name: str) -> bool:
    try:
        definitions.get_definition(
            session=session, actor=actor, organisation=organisation, name=name
        )
    except NotFound:
        return False
    return True


def _parse_all(
    files: dict[str, str],
) -> tuple[dict[str, tuple[dict[str, Any], dict[str, int]]], dict[str, str]]:
    """Each file's document and key lines, and the problems of those that do not parse."""
    parsed, errors = {}, {}
    budget = definition_files.MAX_NODES
    for name, text in sorted(files.items()):
        try:
            parsed[name], used = _parse_file(name, text, budget)
            budget -= used
        except InvalidInput as exc:
            errors.update(exc.errors or {name: exc.detail})
    return parsed, errors


def _parse_file(
    name: str, text: str, max_nodes: int
) -> tuple[tuple[dict[str, Any], dict[str, int]], int]:
    """The document, the line of each key, and how many values it holds."""
    document, node, used = definition_files.load(name, text, max_nodes=max_nodes)
    if not isinstance(document, dict) or not isinstance(node, yaml.MappingNode):
        raise InvalidInput(
            "an import file is not a mapping",
            errors={f"{name}:1": "expected module, target, settings"},
        )
    return (document, definition_files.key_lines(node)), used


def _locate(file_name: str, exc: InfracmsError, lines: dict[str, int]) -> dict[str, str]:
    """Errors keyed by `file:line field`, the line found from the field's dotted path."""
    located = {}
    for field_path, message in (exc.errors or {"": exc.detail}).items():
        parts = field_path.split(".")
        line = next(
            (
                lines[".".join(parts[:n])]
                for n in range(len(parts), 0, -1)
                if ".".join(parts[:n]) in lines
            ),
            1,
        )
        located[f"{file_name}:{line} {field_path}".rstrip()] = message
    return located
