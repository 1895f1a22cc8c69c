"""Apps shared by the tests of a worker: building one costs about a second (FastAPI works
out some 300 routes, and the first request builds their table); reusing it costs nothing.

A test asks ``app_pool.settings(request, ...)`` for a node's settings: they name a data
directory of the pool's (a slot), emptied for the test and held by it until it ends.
``app_pool.app(settings, plugins)`` then gives the app built earlier in that slot for the
same settings and modules, its engine's connections closed and its state as
``create_app`` left it, or builds one. Each test still initialises its node in the empty
directory and starts the app (its lifespan: executor, audit integrator, jobs), so no
test sees another's data or threads, whatever the order the tests run in.
"""

from __future__ import annotations

import contextlib
import json
import shutil
from collections.abc import Hashable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI

from infracms.app import create_app
from infracms.config import Settings
from infracms.plugins import Plugins


@dataclass
class _Slot:
    data_dir: Path
    apps: dict[Hashable, tuple[FastAPI, dict[str, Any]]] = field(default_factory=dict)
    busy: bool = False


class AppPool:
    """Data directories, and the apps built on them, reused test after test."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.slots: dict[str, list[_Slot]] = {}
        self.by_dir: dict[Path, _Slot] = {}

    def settings(self, request: pytest.FixtureRequest, name: str, **fields: Any) -> Settings:
        """Settings (`fields`) whose data directory, `name` in a free slot, is empty and
        this test's until it ends."""
        lease = self.lease(name, **fields)
        settings = lease.__enter__()
        request.addfinalizer(lambda: lease.__exit__(None, None, None))
        return settings

    @contextlib.contextmanager
    def lease(self, name: str, **fields: Any) -> Iterator[Settings]:
        """Settings (`fields`) whose data directory, `name` in a free slot, is empty and
        the caller's until the block ends."""
        key = json.dumps([name, fields], sort_keys=True, default=str)
        slots = self.slots.setdefault(key, [])
        slot = next((slot for slot in slots if not slot.busy), None)
        if slot is None:
            slot = _Slot(self.root / f"slot-{len(self.by_dir)}" / name)
            slots.append(slot)
            self.by_dir[slot.data_dir] = slot
        slot.busy = True
        try:
            shutil.rmtree(slot.data_dir, ignore_errors=True)
            yield Settings(data_dir=slot.data_dir, **fields)
        finally:
            slot.busy = False

    def app(self, settings: Settings, plugins: Plugins | None = None) -> FastAPI:
        """The app for `settings` and `plugins`: the slot's, or a new one."""
        slot = self.by_dir.get(settings.data_dir)
        if slot is None:  # settings of the test's own making
            return create_app(settings, plugins=plugins)
        key = _modules(plugins)
        if key in slot.apps:
            app, state = slot.apps[key]
            if app.state.settings.model_dump() == settings.model_dump():
                app.state.engine.dispose()
                app.state._state.clear()
                app.state._state.update(state)
                app.dependency_overrides.clear()
                if plugins is not None:
                    app.state.plugins = plugins
                return app
        app = create_app(settings, plugins=plugins)
        slot.apps[key] = (app, dict(app.state._state))
        return app


def _modules(plugins: Plugins | None) -> Hashable:
    """What an app's behaviour depends on in `plugins`: the plugins and their modules."""
    if plugins is None:
        return None
    names = tuple(sorted(name for name, _ in plugins.pm.list_name_plugin()))
    modules = tuple(sorted(plugins.registry.modules.items(), key=lambda item: item[0]))
    return names, modules


@pytest.fixture(scope="session")
def app_pool(tmp_path_factory: pytest.TempPathFactory) -> AppPool:
    """The worker's pool of apps."""
    return AppPool(tmp_path_factory.mktemp("apps"))
