"""What a module is: a declaration, not configuration by side effect.

A module is a class with a name, a version, dependencies on other modules with version
ranges, a pydantic settings model (its JSON Schema drives API validation and the web
form) and the Ansible role that implements it. Built-in modules live in
``infracms/modules/<name>/`` and are registered like third-party ones, through the
``register_modules`` hook (see ``infracms/hookspecs.py``).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, ClassVar, get_args, get_origin

from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.version import InvalidVersion, Version
from pydantic import BaseModel, BeforeValidator, ConfigDict

MODULE_NAME_RE = re.compile(r"^[a-z][a-z0-9_]{1,39}$")
ROLE_PARTS = ("tasks", "defaults", "meta")


class ModuleDeclarationError(ValueError):
    """A module class is declared wrong; the message names what was expected."""


REFERENCE_KINDS = frozenset({"$credential", "$env", "$file"})


def secret_references(value: Any, path: str = "") -> Iterator[tuple[str, str, str]]:
    """Every secret reference in a settings value, at any depth: (path, kind, target), the
    path dotted as pydantic names fields (`password`, `users.0.password_hash`). A run
    resolves each of them, whatever field holds it, so every one is checked."""
    if isinstance(value, Mapping):
        if len(value) == 1 and set(value) <= REFERENCE_KINDS:
            ((kind, target),) = value.items()
            yield path, str(kind), str(target)
            return
        for key, item in value.items():
            yield from secret_references(item, f"{path}.{key}" if path else str(key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from secret_references(item, f"{path}.{index}" if path else str(index))


def _secret_reference(value: Any) -> Any:
    """A secret in settings is a reference, never the secret itself."""
    if isinstance(value, Mapping) and len(value) == 1:
        ((kind, target),) = value.items()
        if kind in REFERENCE_KINDS and isinstance(target, str) and target:
            if kind == "$file" and not target.startswith("/"):
                raise ValueError("a $file reference must be an absolute path")
            return {kind: target}
    raise ValueError(
        'secrets are references: {"$credential": NAME}, {"$env": VARIABLE} or {"$file": PATH}'
    )


SecretRef = Annotated[dict[str, str], BeforeValidator(_secret_reference)]
"""A settings field holding a secret: a reference resolved only when a run needs it."""


class ModuleSettings(BaseModel):
    """Base of every module's settings: unknown fields are errors, values are checked."""

    model_config = ConfigDict(extra="forbid", validate_default=True, str_strip_whitespace=True)


@dataclass(frozen=True)
class Dependency:
    """This module needs module `name` at a version in `versions` (a PEP 440 range)."""

    name: str
    versions: str = ""

    def allows(self, version: str) -> bool:
        """Whether `version` is in the range."""
        return Version(version) in SpecifierSet(self.versions)


@dataclass(frozen=True)
class Plan:
    """One plan of an offering: its parameters' JSON Schema and optional terms."""

    name: str
    title: str
    parameters: dict[str, Any] = field(default_factory=dict)
    price: str | None = None


@dataclass(frozen=True)
class Offering:
    """A service a module offers to peers through the node's catalog."""

    name: str
    title: str
    description: str
    plans: tuple[Plan, ...]
    kind: str = "service"
    plan_updateable: bool = False
    """Whether an instance may move to another of its plans (OSB ``plan_updateable``)."""


@dataclass(frozen=True)
class ProvidedOffering:
    """One of a module's offerings as an organisation provides it to peers."""

    id: str
    """The offering's id in the node's catalog, e.g. ``coop-managed-postgresql``."""
    name: str
    """Which of the module's offerings (``Offering.name``)."""
    organisation: str
    """The providing organisation."""
    settings: Mapping[str, Any] = field(default_factory=dict)
    """The provider's base settings for every instance (plain data, secrets as references)."""


@dataclass(frozen=True)
class ServiceHost:
    """A host of the pool an offering's instances go on."""

    name: str
    address: str
    ssh_port: int = 22
    host_key: str | None = None
    """The pinned public key (``TYPE BASE64``), for the requester's known_hosts."""


class Module:
    """Subclass and set the class attributes; instances are never needed."""

    name: ClassVar[str]
    version: ClassVar[str]
    title: ClassVar[str]
    description: ClassVar[str]
    settings: ClassVar[type[ModuleSettings]]
    role: ClassVar[Path]
    requires: ClassVar[tuple[Dependency, ...]] = ()
    multiple: ClassVar[bool] = False
    """Whether several definitions of this module may apply to one host (as a list)."""
    infracms: ClassVar[str] = ""
    """The infracms versions this module works with (a PEP 440 range; empty: any)."""

    @classmethod
    def check_declaration(cls) -> None:
        """Raise ModuleDeclarationError naming what is missing or malformed."""
        where = f"{cls.__module__}.{cls.__qualname__}"
        for attribute in ("name", "version", "title", "description", "settings", "role"):
            if not hasattr(cls, attribute):
                raise ModuleDeclarationError(f"{where} declares no `{attribute}`")
        if not MODULE_NAME_RE.fullmatch(cls.name):
            raise ModuleDeclarationError(
                f"{where}.name {cls.name!r}: expected 2-40 of a-z, 0-9, _ starting with a letter"
            )
        _check_version(where, cls.version)
        if not (isinstance(cls.settings, type) and issubclass(cls.settings, ModuleSettings)):
            raise ModuleDeclarationError(f"{where}.settings: expected a ModuleSettings subclass")
        _check_role(where, Path(cls.role))
        for dependency in cls.requires:
            _check_dependency(where, dependency)

    @classmethod
    def settings_schema(cls) -> dict[str, Any]:
        """The JSON Schema of the settings (drives API validation and the web form)."""
        return cls.settings.model_json_schema()

    @classmethod
    def secret_fields(cls) -> frozenset[str]:
        """The settings that hold secret references, as paths (`password`, `roles[].password`)."""
        return frozenset(_secret_paths(cls.settings, ""))


def _is_secret(annotation: Any) -> bool:
    return any(
        getattr(meta, "func", None) is _secret_reference
        for meta in getattr(annotation, "__metadata__", ())
    )


def _secret_paths(model: type[BaseModel], prefix: str) -> Iterator[str]:
    for name, info in model.model_fields.items():
        path = f"{prefix}{name}"
        if any(getattr(m, "func", None) is _secret_reference for m in info.metadata):
            yield path
            continue
        yield from _annotation_paths(info.annotation, path)


def _annotation_paths(annotation: Any, path: str) -> Iterator[str]:
    if _is_secret(annotation):
        yield path
        return
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        yield from _secret_paths(annotation, path + ".")
        return
    origin = get_origin(annotation)
    arguments = get_args(annotation)
    if origin in (list, tuple, set, frozenset):
        for argument in arguments:
            yield from _annotation_paths(argument, path + "[]")
    elif arguments:  # unions and Optional
        for argument in arguments:
            yield from _annotation_paths(argument, path)


def _check_version(where: str, version: object) -> None:
    try:
        Version(str(version))
    except InvalidVersion as exc:
        raise ModuleDeclarationError(
            f"{where}.version {version!r} is not a PEP 440 version"
        ) from exc


def _check_role(where: str, role: Path) -> None:
    missing = [
        f"{part}/main.yml" for part in ROLE_PARTS if not (role / part / "main.yml").is_file()
    ]
    if missing:
        raise ModuleDeclarationError(
            f"{where}.role {role}: expected a role with {', '.join(missing)}"
        )


def _check_dependency(where: str, dependency: object) -> None:
    if not isinstance(dependency, Dependency):
        raise ModuleDeclarationError(f"{where}.requires: expected Dependency(...) items")
    try:
        SpecifierSet(dependency.versions)
    except InvalidSpecifier as exc:
        raise ModuleDeclarationError(
            f"{where}.requires {dependency.name}: {dependency.versions!r} is not a version range"
        ) from exc
