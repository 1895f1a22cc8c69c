"""The plugin manager and the module registry.

``get_plugin_manager()`` registers the built-in modules and every package exposing the
``infracms.modules`` entry point group, then checks that every hook implementation
matches a spec: a misspelled hook fails start-up, and so does a per-module hook that
infracms no longer calls (``hookspecs.RETIRED_HOOKS``), with what to write instead.
``load_registry(pm)`` collects the declared modules; a broken or incompatible one is
reported with the reason and skipped. What a module does is called on its class, which
the registry finds by name (``Registry.get``).
"""

from __future__ import annotations

import importlib
import importlib.metadata
from collections.abc import Iterable
from dataclasses import dataclass, field

import pluggy
from packaging.specifiers import SpecifierSet
from packaging.version import Version

from infracms import __version__, hookspecs
from infracms.errors import ConfigurationError
from infracms.modules import BUILTIN_MODULES
from infracms.modules.contract import Module, ModuleDeclarationError

ENTRY_POINT_GROUP = "infracms.modules"


@dataclass(frozen=True)
class Problem:
    """A module or plugin that was skipped, and why."""

    source: str
    reason: str


@dataclass
class Registry:
    """The modules this node knows, by name, and what was skipped."""

    modules: dict[str, type[Module]] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)
    sources: dict[str, str] = field(default_factory=dict)

    def get(self, name: str) -> type[Module] | None:
        """The module called `name`, if known."""
        return self.modules.get(name)


@dataclass(frozen=True)
class Plugins:
    """The plugin manager with the registry of modules it declared."""

    pm: pluggy.PluginManager
    registry: Registry

    @classmethod
    def load(
        cls, *, builtins: Iterable[str] = BUILTIN_MODULES, entry_points: bool = True
    ) -> Plugins:
        """Register every plugin, check the hooks, and collect the modules."""
        pm, problems = get_plugin_manager(builtins=builtins, entry_points=entry_points)
        return cls(pm=pm, registry=load_registry(pm, problems))


def get_plugin_manager(
    *, builtins: Iterable[str] = BUILTIN_MODULES, entry_points: bool = True
) -> tuple[pluggy.PluginManager, list[Problem]]:
    """A plugin manager with the hook specs, built-ins and installed plugins registered."""
    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    problems: list[Problem] = []
    for path in builtins:
        _register(pm, path, lambda path=path: importlib.import_module(path), problems)
    if entry_points:
        for entry_point in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
            _register(pm, f"{entry_point.name} ({entry_point.value})", entry_point.load, problems)
    _refuse_retired_hooks(pm)
    try:
        pm.check_pending()
    except pluggy.PluginValidationError as exc:
        raise ConfigurationError(f"a plugin implements a hook that does not exist: {exc}") from exc
    return pm, problems


def _refuse_retired_hooks(pm: pluggy.PluginManager) -> None:
    """A plugin written for the per-module hooks would otherwise stop at check_pending's
    "unknown hook", or, were they still called, keep its name checks and untyped answers:
    say what replaces each hook instead."""
    found = [
        f"{implementation.plugin_name} implements the hook `{hook}`: write it as {instead}, "
        f"without the `module` argument and without checking the module's name"
        for hook, instead in hookspecs.RETIRED_HOOKS.items()
        if hasattr(pm.hook, hook)
        for implementation in getattr(pm.hook, hook).get_hookimpls()
    ]
    if found:
        raise ConfigurationError(
            "a plugin uses per-module hooks that infracms no longer calls "
            "(docs/modules.md, 'Moving from the per-module hooks'):\n"
            + "\n".join(f"- {problem}" for problem in found)
        )


def _register(pm: pluggy.PluginManager, source: str, load: object, problems: list[Problem]) -> None:
    try:
        plugin = load()  # type: ignore[operator]
    except Exception as exc:  # a third-party import may fail any way it likes
        problems.append(Problem(source, f"cannot be imported: {type(exc).__name__}: {exc}"))
        return
    if pm.is_registered(plugin):
        return
    pm.register(plugin, name=source)


def load_registry(pm: pluggy.PluginManager, problems: list[Problem] | None = None) -> Registry:
    """Collect the modules the plugins declare, skipping (and reporting) bad ones."""
    registry = Registry(problems=list(problems or []))
    for plugin, declared in _declarations(pm, registry):
        for module in declared or []:
            _add(registry, pm.get_name(plugin) or repr(plugin), module)
    return registry


def _declarations(
    pm: pluggy.PluginManager, registry: Registry
) -> Iterable[tuple[object, list[type[Module]] | None]]:
    for plugin in pm.get_plugins():
        implementation = getattr(plugin, "register_modules", None)
        if implementation is None or not pm.get_hookcallers(plugin):
            continue
        try:
            yield plugin, implementation()
        except Exception as exc:  # a third-party hook may fail any way it likes
            registry.problems.append(
                Problem(pm.get_name(plugin) or "?", f"register_modules failed: {exc}")
            )


def _add(registry: Registry, source: str, module: object) -> None:
    if not (isinstance(module, type) and issubclass(module, Module)):
        registry.problems.append(Problem(source, f"{module!r} is not a Module subclass"))
        return
    try:
        module.check_declaration()
        _check_compatible(module)
    except ModuleDeclarationError as exc:
        registry.problems.append(Problem(source, str(exc)))
        return
    if module.name in registry.modules:
        registry.problems.append(
            Problem(
                source,
                f"module {module.name!r} is already provided by {registry.sources[module.name]}",
            )
        )
        return
    registry.modules[module.name] = module
    registry.sources[module.name] = source


def _check_compatible(module: type[Module]) -> None:
    wanted = getattr(module, "infracms", "")
    if wanted and Version(__version__) not in SpecifierSet(wanted):
        raise ModuleDeclarationError(
            f"module {module.name!r} needs infracms {wanted}, this is {__version__}"
        )
