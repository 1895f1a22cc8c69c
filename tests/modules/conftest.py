"""Fixtures for the built-in module tests: the registry and the plugin manager."""

from __future__ import annotations

from typing import Any

import pluggy
import pytest
from pydantic import BaseModel, ValidationError

from infracms.plugins import Registry, get_plugin_manager, load_registry


@pytest.fixture(scope="session")
def plugin_manager() -> pluggy.PluginManager:
    """A plugin manager with only the built-in modules registered."""
    pm, problems = get_plugin_manager(entry_points=False)
    assert problems == []
    return pm


@pytest.fixture(scope="session")
def registry(plugin_manager: pluggy.PluginManager) -> Registry:
    """The built-in modules, loaded as the node loads them."""
    return load_registry(plugin_manager)


def errors_of(settings: type[BaseModel], data: dict[str, Any]) -> dict[str, str]:
    """The validation errors of `data`, as {dotted location: message}; {} when valid."""
    try:
        settings.model_validate(data)
    except ValidationError as exc:
        return {".".join(map(str, error["loc"])): error["msg"] for error in exc.errors()}
    return {}


def refused_field(settings: type[BaseModel], data: dict[str, Any]) -> str:
    """The one field `data` is refused for (its dotted location, first part)."""
    errors = errors_of(settings, data)
    assert errors, f"expected {data} to be refused"
    fields = {location.split(".")[0] for location in errors}
    assert len(fields) == 1, f"refused for several fields: {errors}"
    return fields.pop()
