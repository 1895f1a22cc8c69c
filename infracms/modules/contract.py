"""What a module is: a declaration, not configuration by side effect.

A module is a class with a name, a version, dependencies on other modules with version
ranges, a pydantic settings model (its JSON Schema drives API validation and the web
form) and the Ansible role that implements it. Built-in modules live in
``infracms/modules/<name>/`` and are registered like third-party ones, through the
``register_modules`` hook (see ``infracms/hookspecs.py``).

What a module does beyond its declaration lives on its class too: the classmethods in
``MODULE_METHODS`` (checks of settings against where they apply, variables derived per
host, a veto on being disabled) and the offerings it declares (``offerings``, see
``infracms/modules/offerings.py``). infracms calls them on the module concerned only,
so an implementation never checks which module it is asked about.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, ClassVar, TypeVar, get_args, get_origin

from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.version import InvalidVersion, Version
from pydantic import BaseModel, BeforeValidator, ConfigDict

from infracms.modules.offerings import Offering as Offering
from infracms.modules.offerings import Plan as Plan
from infracms.modules.offerings import ProvidedOffering as ProvidedOffering
from infracms.modules.offerings import ServiceHost as ServiceHost
from infracms.modules.targets import DefinitionUse, HostFacts, Plain, PlainMapping, Target

MODULE_NAME_RE = re.compile(r"^[a-z][a-z0-9_]{1,39}$")
ROLE_PARTS = ("tasks", "defaults", "meta")


class ModuleDeclarationError(ValueError):
    """A module class is declared wrong; the message names what was expected."""


MODULE_METHODS = ("validate_settings", "extra_variables", "refuse_disable")
"""What a Module subclass may override, each a classmethod: infracms calls it for the
module concerned only."""
S = TypeVar("S", bound="ModuleSettings")


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
    offerings: ClassVar[tuple[Offering, ...]] = ()
    data_paths: ClassVar[tuple[str, ...]] = ()
    """Where the module keeps what its users made (a calendar's events, a site's uploads):
    the backup module adds these to what it backs up on a host the module applies to."""
    """The services this module offers to peers (an Offering subclass says what an
    instance's settings and connection details are)."""

    @classmethod
    def validate_settings(cls, settings: ModuleSettings, target: Target) -> dict[str, str]:
        """Return problems with these settings on this target as {field: message} (none: {})."""
        return {}

    @classmethod
    def extra_variables(cls, settings: PlainMapping, host: HostFacts) -> dict[str, Plain]:
        """Return variables derived for one host to merge into the module's published
        settings (plain data; none: {})."""
        return {}

    @classmethod
    def refuse_disable(cls, organisation: str, definitions: Sequence[DefinitionUse]) -> str | None:
        """Return why the module may not be disabled in this organisation now, or None."""
        return None

    @classmethod
    def derives_variables(cls) -> bool:
        """Whether the module overrides `extra_variables` (rendering skips the others)."""
        mine = inspect.getattr_static(cls, "extra_variables")
        return mine is not inspect.getattr_static(Module, "extra_variables")

    @classmethod
    def offering(cls, name: str) -> Offering | None:
        """The declared offering called `name`, if any."""
        return next((o for o in cls.offerings if o.name == name), None)

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
        _check_methods(where, cls)
        _check_offerings(where, cls.offerings)

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


def _check_methods(where: str, module: type[Module]) -> None:
    for name in MODULE_METHODS:
        if not isinstance(inspect.getattr_static(module, name), classmethod):
            raise ModuleDeclarationError(f"{where}.{name}: expected a classmethod")


def _check_offerings(where: str, offerings: object) -> None:
    if not isinstance(offerings, tuple) or not all(isinstance(o, Offering) for o in offerings):
        raise ModuleDeclarationError(f"{where}.offerings: expected a tuple of Offering(...)")
    named = [offering.name for offering in offerings]
    if len(set(named)) != len(named):
        raise ModuleDeclarationError(f"{where}.offerings: two offerings share a name: {named}")


def settings_as(model: type[S], settings: ModuleSettings) -> S:
    """`settings` as the module's own model, which infracms validated them with."""
    if not isinstance(settings, model):
        raise TypeError(f"expected {model.__name__} settings, got {type(settings).__name__}")
    return settings
