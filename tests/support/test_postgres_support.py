"""The PostgreSQL test support: the machine's server, and the throwaway-cluster fallback."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import psycopg
import pytest
from sqlalchemy.engine import make_url

from tests.support import postgres
from tests.support.postgres import PostgresServer

pytestmark = [pytest.mark.integration, pytest.mark.postgres]
REPO_ROOT = Path(__file__).resolve().parents[2]


def libpq(url: str) -> str:
    """Turn a SQLAlchemy URL into a libpq one."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def database_exists(server: PostgresServer, name: str) -> bool:
    with psycopg.connect(libpq(server.url("postgres"))) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_database WHERE datname = %s", (name,)
        ).fetchone()
    assert row is not None
    return bool(row[0])


def exercise(server: PostgresServer) -> None:
    """Create a database, write and read a row in it, then drop it while a client holds it."""
    url = postgres.create_database(server.url())
    name = make_url(url).database
    assert name is not None and name.startswith("test_"), f"unexpected database name in {url}"
    holder = psycopg.connect(libpq(url))
    try:
        holder.execute("CREATE TABLE host (name text PRIMARY KEY)")
        holder.execute("INSERT INTO host VALUES ('web1')")
        holder.commit()
        row = holder.execute("SELECT current_database(), current_user, name FROM host").fetchone()
        assert row == (name, "postgres", "web1")
        postgres.drop_database(url)  # WITH (FORCE) ends the holder's session
    finally:
        holder.close()
    assert not database_exists(server, name), f"database {name} still exists after drop_database"


def test_running_server_when_it_answers() -> None:
    if not postgres.server_answers():
        # a machine without a server: "server" mode must say so (the fallback has its own tests)
        with pytest.raises(postgres.PostgresUnavailable):
            postgres.find_or_start_server("server")
        return
    server = postgres.find_or_start_server("server")
    assert not server.private
    assert server.url() == "postgresql+psycopg://postgres@127.0.0.1:5432"
    exercise(server)


def test_forced_private_cluster_starts_serves_and_stops(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(postgres.MODE_VARIABLE, "private")
    server = postgres.find_or_start_server()
    try:
        assert server.private, "INFRACMS_TEST_POSTGRES=private gave the machine's server"
        assert server.port != 5432
        assert server.directory is not None and (server.directory / "data" / "PG_VERSION").exists()
        exercise(server)
    finally:
        server.stop()
    assert server.process is not None and server.process.returncode is not None, (
        "postmaster still running"
    )
    assert server.directory is not None and not server.directory.exists(), (
        f"{server.directory} left behind"
    )
    assert not postgres.server_answers(server.host, server.port), (
        f"port {server.port} still answers"
    )


def test_auto_mode_falls_back_when_nothing_answers() -> None:
    silent_port = postgres._free_port()  # bound and released: nothing listens there
    server = postgres.find_or_start_server("auto", port=silent_port)
    try:
        assert server.private, f"auto mode found a server at 127.0.0.1:{silent_port}"
        exercise(server)
    finally:
        server.stop()
    assert server.directory is not None and not server.directory.exists()


def test_server_mode_refuses_when_nothing_answers() -> None:
    silent_port = postgres._free_port()
    with pytest.raises(
        postgres.PostgresUnavailable, match=f"no PostgreSQL answers at .*:{silent_port}"
    ):
        postgres.find_or_start_server("server", port=silent_port)


def test_fixtures_use_and_stop_a_forced_private_cluster(tmp_path: Path) -> None:
    """Run a pytest session with the fallback forced and check that it cleaned up after itself."""
    report = tmp_path / "report.json"
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    (tmp_path / "conftest.py").write_text('pytest_plugins = ["tests.support.postgres"]\n')
    (tmp_path / "test_inner.py").write_text(
        textwrap.dedent(
            f"""
            import json, psycopg
            from tests.support import postgres

            def test_inner(postgres_server, fresh_postgres_database, session_postgres_database):
                server = postgres.shared_server()
                assert server.private
                assert fresh_postgres_database.startswith(postgres_server + "/test_")
                assert session_postgres_database != fresh_postgres_database
                url = fresh_postgres_database.replace("+psycopg", "")
                with psycopg.connect(url) as conn:
                    assert conn.execute("SELECT 41 + 1").fetchone() == (42,)
                with open({str(report)!r}, "w") as out:
                    json.dump({{"pid": server.process.pid, "directory": str(server.directory),
                               "port": server.port}}, out)
            """
        )
    )
    env = {**os.environ, postgres.MODE_VARIABLE: "private", "PYTHONPATH": str(REPO_ROOT)}
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "--rootdir",
            str(tmp_path),
            str(tmp_path),
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, f"inner pytest failed:\n{done.stdout}\n{done.stderr}"
    facts = json.loads(report.read_text())
    assert not Path(facts["directory"]).exists(), (
        f"cluster directory {facts['directory']} left behind"
    )
    assert not Path(f"/proc/{facts['pid']}").exists(), f"postmaster {facts['pid']} still running"
    assert not postgres.server_answers(port=facts["port"]), f"port {facts['port']} still answers"


def test_fresh_postgres_database_is_empty_and_its_own(
    fresh_postgres_database: str, postgres_server: str
) -> None:
    assert fresh_postgres_database.startswith(postgres_server + "/test_")
    with psycopg.connect(libpq(fresh_postgres_database)) as conn:
        row = conn.execute("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'").fetchone()
    assert row == (0,), f"expected an empty database, found {row} tables"


def test_unknown_mode_is_refused() -> None:
    with pytest.raises(postgres.PostgresUnavailable, match="expected one of auto, server, private"):
        postgres.find_or_start_server("sometimes")
