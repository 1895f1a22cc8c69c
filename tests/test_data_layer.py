"""The data layer on both databases: migrations, services, audit numbering, cascades."""

from __future__ import annotations

import threading

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine, inspect
from sqlmodel import Session, SQLModel, select

from infracms.config import Settings
from infracms.db import alembic_config, session_scope, upgrade
from infracms.keys import load_keyring
from infracms.models import AuditEntry, AuditHead, Credential, Host, HostGroupLink
from infracms.services import credentials, inventory, organisations
from tests.helpers import ADMIN, count, make_org

pytestmark = pytest.mark.postgres


def test_migrations_go_down_and_up(any_db_settings: Settings, any_engine: Engine) -> None:
    tables = set(inspect(any_engine).get_table_names())
    assert {"organisation", "host", "hostgroup", "credential", "audit_entry", "user"} <= tables
    command.downgrade(alembic_config(any_db_settings), "base")
    assert set(inspect(any_engine).get_table_names()) <= {"alembic_version"}
    upgrade(any_db_settings)
    assert set(inspect(any_engine).get_table_names()) == tables


def test_the_migrations_make_the_tables_the_models_declare(any_engine: Engine) -> None:
    """A model changed without its migration (or the reverse) shows here, on both databases."""
    with any_engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), SQLModel.metadata)
    assert differences == []


def test_inventory_round_trip(any_db_settings: Settings, any_engine: Engine) -> None:
    make_org(any_engine, "clinic")
    with session_scope(any_engine, write=True) as session:
        inventory.create_group(
            session=session, actor=ADMIN, organisation="clinic", data={"name": "all"}
        )
        inventory.create_group(
            session=session,
            actor=ADMIN,
            organisation="clinic",
            data={"name": "web", "parent": "all"},
        )
        credentials.create_credential(
            session=session,
            actor=ADMIN,
            keyring=load_keyring(any_db_settings),
            organisation="clinic",
            data={"name": "pw", "kind": "password", "secret": "a-secret-password"},
        )
        inventory.create_host(
            session=session,
            actor=ADMIN,
            organisation="clinic",
            data={
                "name": "web1",
                "address": "2001:db8::1",
                "groups": ["web"],
                "credential": "pw",
                "variables": {"site": {"name": "x", "ports": [80, 443]}},
            },
        )
    with session_scope(any_engine) as session:
        host = inventory.get_host(session=session, actor=ADMIN, organisation="clinic", name="web1")
        web = inventory.get_group(session=session, actor=ADMIN, organisation="clinic", name="web")
        everyone = inventory.get_group(
            session=session, actor=ADMIN, organisation="clinic", name="all"
        )
    assert host.groups == ["web"] and host.credential == "pw"
    assert host.variables == {"site": {"name": "x", "ports": [80, 443]}}
    assert host.created_at.tzinfo is not None
    assert web.parent == "all" and everyone.children == ["web"]
    with session_scope(any_engine, write=True) as session:
        updated = inventory.update_host(
            session=session,
            actor=ADMIN,
            organisation="clinic",
            name="web1",
            data={"ssh_port": 2222, "groups": ["all"], "credential": None},
        )
    assert (updated.ssh_port, updated.groups, updated.credential) == (2222, ["all"], None)


def test_group_cycles_are_refused(any_engine: Engine) -> None:
    from infracms.errors import InvalidInput

    make_org(any_engine, "clinic")
    with session_scope(any_engine, write=True) as session:
        for name, parent in (("a", None), ("b", "a"), ("c", "b")):
            inventory.create_group(
                session=session,
                actor=ADMIN,
                organisation="clinic",
                data={"name": name, "parent": parent},
            )
    with session_scope(any_engine, write=True) as session, pytest.raises(InvalidInput) as caught:
        inventory.update_group(
            session=session, actor=ADMIN, organisation="clinic", name="a", data={"parent": "c"}
        )
    assert "parent" in caught.value.errors


def test_deleting_an_organisation_removes_what_it_owns(
    any_db_settings: Settings, any_engine: Engine
) -> None:
    make_org(any_engine, "clinic")
    with session_scope(any_engine, write=True) as session:
        inventory.create_group(
            session=session, actor=ADMIN, organisation="clinic", data={"name": "g"}
        )
        credentials.create_credential(
            session=session,
            actor=ADMIN,
            keyring=load_keyring(any_db_settings),
            organisation="clinic",
            data={"name": "pw", "kind": "password", "secret": "x-secret-1"},
        )
        inventory.create_host(
            session=session,
            actor=ADMIN,
            organisation="clinic",
            data={"name": "h", "address": "10.0.0.1", "groups": ["g"], "credential": "pw"},
        )
    with session_scope(any_engine, write=True) as session:
        organisations.delete_organisation(session=session, actor=ADMIN, name="clinic")
    assert (
        count(any_engine, Host)
        == count(any_engine, Credential)
        == count(any_engine, HostGroupLink)
        == 0
    )


def test_audit_indexes_have_no_gaps_under_concurrent_writers(any_engine: Engine) -> None:
    make_org(any_engine, "clinic")
    errors: list[BaseException] = []

    def writer(number: int) -> None:
        try:
            for i in range(15):
                with session_scope(any_engine, write=True) as session:
                    inventory.create_host(
                        session=session,
                        actor=ADMIN,
                        organisation="clinic",
                        data={"name": f"w{number}-{i}", "address": "10.0.0.1"},
                    )
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert errors == []
    with Session(any_engine) as session:
        indexes = list(session.exec(select(AuditEntry.index).order_by(AuditEntry.index)))
        head = session.get(AuditHead, 1)
        host_entries = session.exec(
            select(AuditEntry).where(AuditEntry.action == "host.create")
        ).all()
    assert indexes == list(range(len(indexes)))
    assert head is not None and head.size == len(indexes)
    assert len(host_entries) == 60 == count(any_engine, Host)


def test_a_failed_change_leaves_no_entry(any_engine: Engine) -> None:
    from infracms.errors import Conflict

    make_org(any_engine, "clinic")
    with session_scope(any_engine) as session:
        before = len(session.exec(select(AuditEntry)).all())
    with session_scope(any_engine, write=True) as session, pytest.raises(Conflict):
        organisations.create_organisation(session=session, actor=ADMIN, data={"name": "clinic"})
    with session_scope(any_engine) as session:
        assert len(session.exec(select(AuditEntry)).all()) == before
