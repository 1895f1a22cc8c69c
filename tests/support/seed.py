"""New test nodes start from a copy of a migrated, empty SQLite database.

Running the migrations is most of what ``initialise`` costs (about 1 s on a loaded
2-core machine; the federation fixtures start two or three nodes per test). The
migrations are run once per test process into a template, and a new node's data
directory gets a copy of it before ``initialise``, which then finds the schema at head
and does the rest as on any node: its own keys, its own admin, its own first audit
entries. Nothing in the template depends on a node (the migrations add empty tables and
the audit log's zero rows), so each node is still its own, with its own name and key.

    seed_database(settings)
    initialise(settings, engine)
"""

from __future__ import annotations

import atexit
import shutil
import tempfile
from pathlib import Path

from infracms import db
from infracms.config import Settings

SQLITE_PREFIX = "sqlite:///"
_templates: list[Path] = []


def seed_database(settings: Settings) -> None:
    """Copy the migrated, empty database to a new SQLite node (PostgreSQL: nothing)."""
    url = settings.resolved_database_url
    if not url.startswith(SQLITE_PREFIX) or ":memory:" in url:
        return
    target = Path(url.removeprefix(SQLITE_PREFIX))
    if target.exists():
        return
    target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    shutil.copyfile(_template(), target)


def _template() -> Path:
    """The migrated database of this process, made on first use."""
    if not _templates:
        root = Path(tempfile.mkdtemp(prefix="infracms-seed-"))
        atexit.register(shutil.rmtree, root, True)
        db.upgrade(Settings(data_dir=root, database_url=None))
        template = root / "infracms.db"
        assert not template.with_name("infracms.db-wal").exists(), "a WAL left: copy incomplete"
        _templates.append(template)
    return _templates[0]
