"""Fixtures for the built-in module tests: the registry and the plugin manager."""

from __future__ import annotations

import pluggy
import pytest

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
