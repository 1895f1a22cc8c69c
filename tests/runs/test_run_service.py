"""Runs in the database: scope, pinned revisions, locks, cancel, re-run, the reaper."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import Engine
from sqlmodel import Session, select

from infracms.db import session_scope
from infracms.errors import Conflict, InvalidInput, PermissionDenied
from infracms.models import HostLock, Role, Run, RunStatus
from infracms.models.base import utcnow
from infracms.plugins import Plugins
from infracms.services import definitions, inventory, modules, runs
from tests.helpers import ADMIN, make_org, member_actor
from tests.services.test_modules import FAKES


@pytest.fixture
def plugins() -> Plugins:
    return Plugins.load(builtins=FAKES, entry_points=False)


@pytest.fixture
def clinic(any_engine: Engine, plugins: Plugins) -> Engine:
    """Hosts web1, web2 (in group web) and db1, motd on web and base on db1; on SQLite
    and on PostgreSQL (locks and host lists are written differently on each)."""
    engine = any_engine
    make_org(engine, "clinic")
    with session_scope(engine, write=True) as session:
        for name in ("base", "motd"):
            modules.set_available(
                session=session, actor=ADMIN, plugins=plugins, name=name, available=True
            )
        modules.enable_module(
            session=session, actor=ADMIN, plugins=plugins, organisation="clinic", name="motd"
        )
        inventory.create_group(
            session=session, actor=ADMIN, organisation="clinic", data={"name": "web"}
        )
        for name in ("web1", "web2", "db1"):
            inventory.create_host(
                session=session,
                actor=ADMIN,
                organisation="clinic",
                data={
                    "name": name,
                    "address": "198.51.100.1",
                    "groups": ["web"] if name.startswith("web") else [],
                },
            )
        definitions.create_definition(
            session=session,
            actor=ADMIN,
            plugins=plugins,
            organisation="clinic",
            data={
                "name": "motd-web",
                "module": "motd",
                "target": {"group": "web"},
                "settings": {"message": "a"},
            },
        )
        definitions.create_definition(
            session=session,
            actor=ADMIN,
            plugins=plugins,
            organisation="clinic",
            data={"name": "base-db", "module": "base", "target": {"host": "db1"}, "settings": {}},
        )
    return engine


def create(engine: Engine, plugins: Plugins, actor=ADMIN, **data: object) -> Run:  # type: ignore[no-untyped-def]
    with session_scope(engine, write=True) as session:
        return runs.create_run(
            session=session, actor=actor, plugins=plugins, organisation="clinic", data=data
        )


def test_scope_and_pinned_revisions(clinic: Engine, plugins: Plugins) -> None:
    everything = create(clinic, plugins, kind="apply")
    assert everything.hosts == ["db1", "web1", "web2"]
    assert {d["name"]: d["revision"] for d in everything.definitions} == {
        "motd-web": 1,
        "base-db": 1,
    }
    only_motd = create(
        clinic, plugins, kind="plan", definitions=["motd-web"], hosts=["web2", "db1"]
    )
    assert only_motd.hosts == ["web2"]
    assert [d["name"] for d in only_motd.definitions] == ["motd-web"]
    with session_scope(clinic, write=True) as session:
        definitions.save_revision(
            session=session,
            actor=ADMIN,
            plugins=plugins,
            organisation="clinic",
            name="motd-web",
            data={"settings": {"message": "b"}},
        )
    with session_scope(clinic) as session:
        run = session.get(Run, only_motd.id)
        assert run is not None and run.definitions[0]["revision"] == 1  # pinned when asked for


def test_groups_narrow_the_scope_and_a_tie_refuses_the_run(
    clinic: Engine, plugins: Plugins
) -> None:
    assert create(clinic, plugins, kind="plan", groups=["web"]).hosts == ["web1", "web2"]
    assert create(clinic, plugins, kind="plan", hosts=["web1"]).hosts == ["web1"]
    with session_scope(clinic, write=True) as session:
        inventory.create_group(
            session=session, actor=ADMIN, organisation="clinic", data={"name": "edge"}
        )
        inventory.update_host(
            session=session,
            actor=ADMIN,
            organisation="clinic",
            name="web2",
            data={"groups": ["web", "edge"]},
        )
        definitions.create_definition(
            session=session,
            actor=ADMIN,
            plugins=plugins,
            organisation="clinic",
            data={
                "name": "motd-edge",
                "module": "motd",
                "target": {"group": "edge"},
                "settings": {"message": "b"},
            },
        )
    with pytest.raises(Conflict, match="host web2: definitions motd-edge, motd-web"):
        create(clinic, plugins, kind="plan", definitions=["motd-web"], hosts=["web1"])


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"kind": "apply", "hosts": ["nowhere"]}, "hosts"),
        ({"kind": "apply", "groups": ["nowhere"]}, "groups"),
        ({"kind": "apply", "definitions": ["nowhere"]}, "definitions"),
        ({"kind": "apply", "timeout_seconds": 1}, "timeout_seconds"),
        ({"kind": "destroy"}, "kind"),
    ],
)
def test_bad_run_requests(
    clinic: Engine, plugins: Plugins, data: dict[str, object], field: str
) -> None:
    with pytest.raises(InvalidInput) as caught:
        create(clinic, plugins, **data)
    assert field in caught.value.errors


def test_editors_plan_but_only_operators_apply(clinic: Engine, plugins: Plugins) -> None:
    with session_scope(clinic) as session:
        org_id = runs.organisation_by_name(session, name="clinic").id
    editor = member_actor(org_id, Role.editor)
    assert create(clinic, plugins, actor=editor, kind="plan").status is RunStatus.queued
    with pytest.raises(PermissionDenied):
        create(clinic, plugins, actor=editor, kind="apply")
    assert create(clinic, plugins, actor=member_actor(org_id, Role.operator), kind="apply")


def test_a_locked_host_refuses_a_second_apply_naming_the_holder(
    clinic: Engine, plugins: Plugins
) -> None:
    first = create(clinic, plugins, kind="apply", hosts=["web1"])
    second = create(clinic, plugins, kind="apply", hosts=["web1", "web2"])
    plan = create(clinic, plugins, kind="plan", hosts=["web1"])
    with session_scope(clinic, write=True) as session:
        assert runs.claim_run(session, run_id=first.id, worker="w1") is not None
    with session_scope(clinic, write=True) as session:
        assert runs.claim_run(session, run_id=second.id, worker="w2") is None
        assert (
            runs.claim_run(session, run_id=plan.id, worker="w2") is not None
        )  # plans change nothing: no lock
    with Session(clinic) as session:
        refused = session.get(Run, second.id)
        assert refused is not None and refused.status is RunStatus.failed
        assert refused.error == f"host web1 is being applied by run {first.id}"
        assert session.exec(select(HostLock)).all()[0].run_id == first.id
    with session_scope(clinic, write=True) as session:
        assert (
            runs.claim_run(session, run_id=first.id, worker="w1") is None
        )  # a redelivery does not run it twice


def test_an_expired_lock_is_taken_over_and_the_reaper_fails_stale_runs(
    clinic: Engine, plugins: Plugins
) -> None:
    first = create(clinic, plugins, kind="apply", hosts=["web1"])
    with session_scope(clinic, write=True) as session:
        runs.claim_run(session, run_id=first.id, worker="lost-worker")
    with Session(clinic) as session:
        for lock in session.exec(select(HostLock)):
            lock.expires_at = utcnow() - timedelta(seconds=1)
            session.add(lock)
        run = session.get(Run, first.id)
        assert run is not None
        run.heartbeat_at = utcnow() - timedelta(minutes=5)
        session.add(run)
        session.commit()
    with session_scope(clinic, write=True) as session:
        assert runs.reap_stale_runs(session) == [first.id]
    with Session(clinic) as session:
        reaped = session.get(Run, first.id)
        assert reaped is not None and reaped.status is RunStatus.failed
        assert reaped.error is not None and "worker lost-worker was lost" in reaped.error
        assert session.exec(select(HostLock)).all() == []
    again = create(clinic, plugins, kind="apply", hosts=["web1"])
    with session_scope(clinic, write=True) as session:
        assert runs.claim_run(session, run_id=again.id, worker="w2") is not None


def test_cancel_and_rerun_failed(clinic: Engine, plugins: Plugins) -> None:
    queued = create(clinic, plugins, kind="plan")
    with session_scope(clinic, write=True) as session:
        cancelled = runs.cancel_run(
            session=session, actor=ADMIN, organisation="clinic", run_id=queued.id
        )
        assert cancelled.status is RunStatus.cancelled
        with pytest.raises(Conflict):
            runs.cancel_run(session=session, actor=ADMIN, organisation="clinic", run_id=queued.id)
    done = create(clinic, plugins, kind="apply")
    with session_scope(clinic, write=True) as session:
        runs.claim_run(session, run_id=done.id, worker="w")
        runs.finish_run(
            session,
            run_id=done.id,
            status=RunStatus.failed,
            rc=4,
            stdout_sha256=None,
            recap={"web1": {"ok": 2}, "web2": {"unreachable": 1}, "db1": {"failed": 1}},
        )
        again = runs.rerun_failed(
            session=session, actor=ADMIN, plugins=plugins, organisation="clinic", run_id=done.id
        )
    assert again.hosts == ["db1", "web2"] and again.parent_id == done.id


def test_events_page_forwards_backwards_and_by_change(clinic: Engine, plugins: Plugins) -> None:
    run = create(clinic, plugins, kind="plan")
    rows = [
        {
            "run_id": run.id,
            "seq": n,
            "event": "runner_on_ok",
            "host": "web1" if n % 2 else "web2",
            "task": "t",
            "status": "changed" if n % 10 == 0 else "ok",
            "changed": n % 10 == 0,
            "stdout": f"line {n}",
            "data": {},
            "created_at": utcnow(),
        }
        for n in range(1, 101)
    ]
    with session_scope(clinic, write=True) as session:
        runs.write_events(session, run_id=run.id, rows=rows)

    def seqs(**query: object) -> list[int]:
        with session_scope(clinic) as session:
            found = runs.run_events(
                session=session, actor=ADMIN, organisation="clinic", run_id=run.id, **query
            )  # type: ignore[arg-type]
        return [e.seq for e in found]

    assert seqs(after=95) == [96, 97, 98, 99, 100]
    assert seqs(before=11, limit=3) == [8, 9, 10]
    assert seqs(before=11, limit=3, host="web2") == [6, 8, 10]
    assert seqs(changed_only=True) == [10, 20, 30, 40, 50, 60, 70, 80, 90, 100]
