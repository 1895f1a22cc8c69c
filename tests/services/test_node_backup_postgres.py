"""Node backups on PostgreSQL: pg_dump in the archive, verified in a scratch database,
restored onto a fresh database and data directory; a database in use is refused."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from infracms.app import create_app
from infracms.audit import exporter
from infracms.audit.verifier import verify_export
from infracms.db import make_engine, session_scope
from infracms.errors import Conflict
from infracms.services import audit, node_backup
from infracms.services.setup import initialise
from tests.conftest import ADMIN_PASSWORD, make_settings
from tests.helpers import ADMIN, sign_in
from tests.services.backup_node import (
    FAST_KDF,
    PASSPHRASE,
    SECRET,
    contents,
    open_credential,
    populate,
)
from tests.support.postgres import create_database, drop_database

pytestmark = [pytest.mark.postgres, pytest.mark.slow]


def test_a_postgres_node_is_backed_up_verified_destroyed_and_restored(
    postgres_server: str, fresh_postgres_database: str, tmp_path: Path
) -> None:
    settings = make_settings(tmp_path / "var", database_url=fresh_postgres_database)
    engine = make_engine(settings)
    initialise(settings, engine)
    populate(settings, engine, entries=2_000)
    with session_scope(engine) as session:
        checkpoint = audit.latest_checkpoint(session=session)
    made = node_backup.create(
        settings=settings,
        engine=engine,
        actor=ADMIN,
        to=tmp_path / "backups",
        passphrase=PASSPHRASE,
        kdf_log2_n=FAST_KDF,
    )
    held, key = contents(engine), audit.verifier_key(settings)
    engine.dispose()
    assert made.database == "postgresql"
    checked = node_backup.verify(archive=made.path, passphrase=PASSPHRASE, settings=settings)
    assert checked.secrets == 1 and checked.audit.size >= made.audit_size > 2_000

    drop_database(fresh_postgres_database)  # the machine is gone
    shutil.rmtree(settings.data_dir)
    new_database = create_database(postgres_server)
    try:
        target = make_settings(tmp_path / "new", database_url=new_database)
        restored = node_backup.restore(
            archive=made.path, passphrase=PASSPHRASE, settings=target, actor=ADMIN
        )
        assert restored.verified.audit.manifest_size == made.audit_size
        engine = make_engine(target)
        try:
            assert contents(engine) == held
            assert open_credential(target, engine) == SECRET
            with session_scope(engine) as session:
                lines = list(
                    exporter.export_lines(session, origin=target.node_name, verifier_key=key)
                )
            assert verify_export(lines, key, trusted=[checkpoint]).trusted
            app = create_app(target)
            with TestClient(app) as client:
                sign_in(client, engine, target, "admin", ADMIN_PASSWORD)
                hosts = client.get("/api/v1/orgs/clinic/hosts")
                assert {h["name"] for h in hosts.json()["items"]} == {"web1", "web2", "db1"}
            app.state.engine.dispose()
        finally:
            engine.dispose()

        shutil.rmtree(target.data_dir)  # the database is still in use: refused unless forced
        with pytest.raises(Conflict, match="database at INFRACMS_DATABASE_URL"):
            node_backup.restore(
                archive=made.path, passphrase=PASSPHRASE, settings=target, actor=ADMIN
            )
        assert not target.data_dir.exists()
        again = node_backup.restore(
            archive=made.path, passphrase=PASSPHRASE, settings=target, actor=ADMIN, force=True
        )
        assert again.verified.secrets == 1
    finally:
        drop_database(new_database)
