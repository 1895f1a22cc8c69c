"""Back up, verify and restore a node of 10,000 hosts and a large audit log.

Usage: ``.venv/bin/python bench/backup.py [--hosts N] [--entries M] [--postgres-entries K]``

On SQLite, the node is built as ``bench/dashboard.py`` builds it (an organisation with
N hosts in 50 groups, 20 definitions, 2,000 runs) and its audit log replaced by M
entries inserted in bulk with their stored tree and one signed checkpoint (as
``bench/audit_append.py`` does). Then it times

- ``backup create``: sign a checkpoint, snapshot the database (SQLite's backup API),
  hash, tar, gzip and encrypt everything (scrypt at the default cost);
- ``backup verify``: decrypt, check every file, restore into a scratch node and
  verify its whole audit log offline against the manifest's checkpoint;
- ``backup restore`` onto an empty data directory, which proves the archive the same
  way before swapping it in (so it is restore *and* verify);

and prints a table (targets: backup <= 60 s, restore and verify <= 120 s). With
``--postgres-entries K`` the same on PostgreSQL (``pg_dump``/``pg_restore``), with K
entries appended through the audit service (bulk insertion is SQLite-specific) and
integrated before the backup is timed.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from audit_append import build_big_log
from dashboard import populate
from sqlalchemy import Engine, text

from infracms.config import Settings
from infracms.db import make_engine
from infracms.services import audit, node_backup
from infracms.services.context import system_actor
from tests.support.postgres import create_database, drop_database, postgres_url

PASSPHRASE = b"a bench passphrase, long enough"
ACTOR = system_actor("bench")


def node_settings(directory: Path, database_url: str | None = None) -> Settings:
    return Settings(
        data_dir=directory,
        database_url=database_url,
        admin_password="bench-password-long",
        argon2_time_cost=1,
        argon2_memory_kib=1024,
    )  # type: ignore[call-arg]


def timed(action, *args, **kwargs):  # type: ignore[no-untyped-def]
    start = time.perf_counter()
    result = action(*args, **kwargs)
    return result, time.perf_counter() - start


def run_case(label: str, settings: Settings, work: Path, target: Settings) -> list[list[str]]:
    engine = make_engine(settings)
    made, backup_s = timed(
        node_backup.create,
        settings=settings,
        engine=engine,
        actor=ACTOR,
        to=work / "backups",
        passphrase=PASSPHRASE,
    )
    database_bytes = database_size(settings, engine)
    engine.dispose()
    checked, verify_s = timed(
        node_backup.verify, archive=made.path, passphrase=PASSPHRASE, settings=settings,
        scratch=work,
    )  # fmt: skip
    restored, restore_s = timed(
        node_backup.restore,
        archive=made.path,
        passphrase=PASSPHRASE,
        settings=target,
        actor=ACTOR,
    )
    assert restored.verified.audit.size == checked.audit.size
    size = f"{checked.audit.entries:,} entries"
    return [
        [label, "database (live files)", f"{database_bytes / 1e6:,.0f} MB", "", ""],
        [label, "archive", f"{made.bytes / 1e6:,.0f} MB", "", ""],
        [label, f"backup create ({size})", f"{backup_s:.1f} s", "<= 60 s", ok(backup_s, 60)],
        [label, "backup verify (scratch restore + audit)", f"{verify_s:.1f} s", "", ""],
        [label, "backup restore (proves, then swaps)", f"{restore_s:.1f} s", "<= 120 s",
         ok(restore_s, 120)],
    ]  # fmt: skip


def database_size(settings: Settings, engine: Engine) -> int:
    """The live database's bytes: SQLite's files, or PostgreSQL's pg_database_size."""
    if settings.is_sqlite:
        return sum(f.stat().st_size for f in settings.data_dir.glob("infracms.db*"))
    with engine.connect() as connection:
        query = text("SELECT pg_database_size(current_database())")
        return int(connection.execute(query).scalar_one())


def ok(seconds: float, target: float) -> str:
    return "ok" if seconds <= target else "MISSED"


def sqlite_case(hosts: int, entries: int, work: Path) -> list[list[str]]:
    settings = node_settings(work / "var")
    start = time.perf_counter()
    populate(settings, hosts)
    engine = make_engine(settings)
    build_big_log(engine, settings, entries)
    engine.dispose()
    print(f"built the SQLite node in {time.perf_counter() - start:.0f} s", file=sys.stderr)
    return run_case("SQLite", settings, work, node_settings(work / "restored"))


def postgres_case(hosts: int, entries: int, work: Path) -> list[list[str]]:
    from tests.services.backup_node import fill_log

    server = postgres_url()
    source, target = create_database(server), create_database(server)
    try:
        settings = node_settings(work / "pg-var", source)
        populate(settings, hosts)
        engine = make_engine(settings)
        fill_log(engine, entries)
        audit.sign_checkpoint(engine=engine, settings=settings)  # as the node does meanwhile
        engine.dispose()
        return run_case("PostgreSQL", settings, work, node_settings(work / "pg-restored", target))
    finally:
        drop_database(source)
        drop_database(target)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", type=int, default=10_000)
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--postgres-entries", type=int, default=0)
    parser.add_argument("--no-sqlite", action="store_true", help="PostgreSQL only")
    args = parser.parse_args()
    rows: list[list[str]] = []
    with tempfile.TemporaryDirectory(prefix="infracms-bench-backup-") as tmp:
        if not args.no_sqlite:
            rows += sqlite_case(args.hosts, args.entries, Path(tmp) / "sqlite")
        if args.postgres_entries:
            rows += postgres_case(args.hosts, args.postgres_entries, Path(tmp) / "pg")
    widths = [max(len(r[i]) for r in rows) for i in range(5)]
    print(f"{args.hosts:,} hosts; load {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)))


if __name__ == "__main__":
    main()
