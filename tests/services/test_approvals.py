"""Approvals: an apply a policy covers is held with its plan; k distinct people (never the
requester) release it; a changed plan voids them; refusal, expiry and break-glass end or
release it, each in the log."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import Engine
from sqlmodel import Session, select

from infracms.config import Settings
from infracms.db import session_scope
from infracms.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from infracms.models import ApprovalPolicy, AuditEntry, Membership, Role, Run, RunStatus, User
from infracms.models.approval import Approval
from infracms.models.base import utcnow
from infracms.plugins import Plugins
from infracms.services import (
    approval_policies,
    approvals,
    audit,
    definitions,
    inventory,
    modules,
    runs,
)
from infracms.services.auth import user_actor
from infracms.services.context import Actor
from tests.helpers import ADMIN, audit_size, count, make_org
from tests.services.test_modules import FAKES

PEOPLE = {
    "olga": Role.owner,
    "oscar": Role.operator,
    "otto": Role.operator,
    "eddie": Role.editor,
    "vera": Role.viewer,
}


@pytest.fixture
def plugins() -> Plugins:
    return Plugins.load(builtins=FAKES, entry_points=False)


@pytest.fixture
def clinic(engine: Engine, plugins: Plugins) -> Engine:
    """The organisations of `build_clinic` on SQLite."""
    return build_clinic(engine, plugins)


def build_clinic(engine: Engine, plugins: Plugins) -> Engine:
    """Group prod holds group web (web1, web2); db1 is in no group. motd on web, base on
    db1. People of PEOPLE in clinic; bob owns another organisation."""
    make_org(engine, "clinic")
    make_org(engine, "other")
    with session_scope(engine, write=True) as session:
        for name in ("base", "motd"):
            modules.set_available(
                session=session, actor=ADMIN, plugins=plugins, name=name, available=True
            )
            modules.enable_module(
                session=session, actor=ADMIN, plugins=plugins, organisation="clinic", name=name
            )
        for group in ({"name": "prod"}, {"name": "web", "parent": "prod"}):
            inventory.create_group(session=session, actor=ADMIN, organisation="clinic", data=group)
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
        for name, module, target in (
            ("motd-web", "motd", {"group": "web"}),
            ("base-db", "base", {"host": "db1"}),
        ):
            definitions.create_definition(
                session=session,
                actor=ADMIN,
                plugins=plugins,
                organisation="clinic",
                data={
                    "name": name,
                    "module": module,
                    "target": target,
                    "settings": {"message": "a"} if module == "motd" else {},
                },
            )
    _people(engine, "clinic", PEOPLE)
    _people(engine, "other", {"bob": Role.owner})
    return engine


def _people(engine: Engine, org: str, people: dict[str, Role]) -> None:
    """Accounts inserted directly: hashing a password per person would cost seconds."""
    with session_scope(engine, write=True) as session:
        org_id = _org_id(session, org)
        for name, role in people.items():
            user = User(username=name, password_hash="unused")
            session.add(user)
            session.flush()
            session.add(Membership(user_id=user.id, organisation_id=org_id, role=role))
        session.commit()


def _org_id(session: Session, name: str) -> uuid.UUID:
    from infracms.services.common import organisation_by_name

    return organisation_by_name(session, name=name).id


def person(engine: Engine, name: str) -> Actor:
    with Session(engine) as session:
        user = session.exec(select(User).where(User.username == name)).one()
        roles = {
            m.organisation_id: m.role
            for m in session.exec(select(Membership).where(Membership.user_id == user.id))
        }
        return user_actor(user, roles)


def set_policy(engine: Engine, actor: Actor = ADMIN, **data: Any) -> ApprovalPolicy:
    fields = {"name": "production", "groups": ["prod"], "approvals_required": 2, **data}
    with session_scope(engine, write=True) as session:
        return approval_policies.set_policy(
            session=session, actor=actor, organisation="clinic", data=fields
        )


def apply(engine: Engine, plugins: Plugins, actor: Actor, **data: Any) -> Run:
    with session_scope(engine, write=True) as session:
        return runs.create_run(
            session=session,
            actor=actor,
            plugins=plugins,
            organisation="clinic",
            data={"kind": "apply", **data},
        )


def decide(
    engine: Engine,
    plugins: Plugins,
    actor: Actor,
    run: Run,
    decision: str = "approve",
    comment: str = "looks right",
    org: str = "clinic",
) -> Run:
    with session_scope(engine, write=True) as session:
        return approvals.decide(
            session=session,
            actor=actor,
            plugins=plugins,
            organisation=org,
            run_id=run.id,
            data={"decision": decision, "comment": comment},
        )


def status(engine: Engine, run: Run) -> Run:
    with Session(engine) as session:
        found = session.get(Run, run.id)
        assert found is not None
        return found


def entries(engine: Engine, action: str) -> list[AuditEntry]:
    with Session(engine) as session:
        return list(session.exec(select(AuditEntry).where(AuditEntry.action == action)))


def test_an_apply_under_a_policy_is_held_with_its_plan_others_are_not(
    clinic: Engine, plugins: Plugins
) -> None:
    set_policy(clinic)
    oscar = person(clinic, "oscar")
    held = apply(clinic, plugins, oscar, hosts=["web1"])
    assert held.status is RunStatus.pending_approval
    with Session(clinic) as session:
        request, _ = approvals.approval_of(
            session=session, actor=oscar, organisation="clinic", run_id=held.id
        )
    assert request is not None and len(request.digest) == 64
    assert request.plan["hosts"]["web1"]["settings"]["motd"]["message"] == "a"
    assert {d["name"]: d["revision"] for d in request.plan["definitions"]}["motd-web"] == 1
    # db1 is in no group under prod; a plan changes nothing: neither is held
    assert apply(clinic, plugins, oscar, hosts=["db1"]).status is RunStatus.queued
    assert apply(clinic, plugins, oscar, hosts=["web1"], kind="plan").status is RunStatus.queued
    assert set_policy(clinic, name="motd-only", groups=[], modules=["motd"])
    assert apply(clinic, plugins, oscar, hosts=["db1"]).status is RunStatus.queued


def test_k_minus_one_approvals_do_not_release_the_kth_does_and_the_start_names_the_digest(
    clinic: Engine, plugins: Plugins
) -> None:
    set_policy(clinic)
    held = apply(clinic, plugins, person(clinic, "oscar"), hosts=["web1", "web2"])
    assert (
        decide(clinic, plugins, person(clinic, "olga"), held).status is RunStatus.pending_approval
    )
    with session_scope(clinic, write=True) as session:
        assert (
            runs.claim_run(session, run_id=held.id, worker="w", plugins=plugins) is None
        )  # not queued
    assert decide(clinic, plugins, person(clinic, "otto"), held).status is RunStatus.queued
    with session_scope(clinic, write=True) as session:
        claimed = runs.claim_run(session, run_id=held.id, worker="w", plugins=plugins)
    assert claimed is not None and claimed.status is RunStatus.running
    (request,) = entries(clinic, "approval.request")
    digest = json.loads(request.payload)["digest"]
    (start,) = [e for e in entries(clinic, "run.start") if str(held.id) in e.subject]
    assert json.loads(start.payload)["plan_digest"] == digest


@pytest.mark.security
def test_the_requester_cannot_approve_their_own_apply(clinic: Engine, plugins: Plugins) -> None:
    set_policy(clinic, approvals_required=1)
    oscar = person(clinic, "oscar")
    held = apply(clinic, plugins, oscar, hosts=["web1"])
    before = audit_size(clinic)
    with pytest.raises(PermissionDenied, match="someone else"):
        decide(clinic, plugins, oscar, held)
    assert status(clinic, held).status is RunStatus.pending_approval
    assert audit_size(clinic) == before and count(clinic, Approval) == 0


@pytest.mark.security
def test_one_person_approving_twice_counts_once(clinic: Engine, plugins: Plugins) -> None:
    set_policy(clinic)
    held = apply(clinic, plugins, person(clinic, "oscar"), hosts=["web1"])
    decide(clinic, plugins, person(clinic, "olga"), held)
    with pytest.raises(Conflict, match="already decided"):
        decide(clinic, plugins, person(clinic, "olga"), held)
    assert status(clinic, held).status is RunStatus.pending_approval


@pytest.mark.security
def test_viewers_editors_outside_the_roles_and_the_node_shell_cannot_approve(
    clinic: Engine, plugins: Plugins
) -> None:
    set_policy(clinic, approvals_required=1)
    held = apply(clinic, plugins, person(clinic, "oscar"), hosts=["web1"])
    for name in ("vera", "eddie"):
        with pytest.raises(PermissionDenied, match="may not approve"):
            decide(clinic, plugins, person(clinic, name), held)
    with pytest.raises(PermissionDenied, match="people"):
        decide(clinic, plugins, ADMIN, held)
    assert status(clinic, held).status is RunStatus.pending_approval
    assert count(clinic, Approval) == 0


@pytest.mark.security
def test_an_approver_of_another_organisation_cannot_approve(
    clinic: Engine, plugins: Plugins
) -> None:
    set_policy(clinic, approvals_required=1)
    held = apply(clinic, plugins, person(clinic, "oscar"), hosts=["web1"])
    bob = person(clinic, "bob")
    with pytest.raises(NotFound):  # through his own organisation: no such run there
        decide(clinic, plugins, bob, held, org="other")
    with pytest.raises(PermissionDenied):  # through clinic: not a member
        decide(clinic, plugins, bob, held)
    assert status(clinic, held).status is RunStatus.pending_approval


@pytest.mark.security
def test_a_definition_changed_after_approval_voids_it_before_the_run_starts(
    clinic: Engine, plugins: Plugins
) -> None:
    set_policy(clinic)
    held = apply(clinic, plugins, person(clinic, "oscar"), hosts=["web1"])
    decide(clinic, plugins, person(clinic, "olga"), held)
    assert decide(clinic, plugins, person(clinic, "otto"), held).status is RunStatus.queued
    with session_scope(clinic, write=True) as session:
        definitions.save_revision(
            session=session,
            actor=person(clinic, "eddie"),
            plugins=plugins,
            organisation="clinic",
            name="motd-web",
            data={"settings": {"message": "not what was approved"}},
        )
    with session_scope(clinic, write=True) as session:
        assert runs.claim_run(session, run_id=held.id, worker="w", plugins=plugins) is None
    ended = status(clinic, held)
    assert ended.status is RunStatus.refused and ended.started_at is None
    assert "definition motd-web is at revision 2 (approved: 1)" in (ended.error or "")
    assert "void" in (ended.error or "")
    (void,) = entries(clinic, "approval.void")
    assert json.loads(void.payload)["changes"] == [
        "definition motd-web is at revision 2 (approved: 1)",
        "host web1: settings of motd changed",
    ]


@pytest.mark.security
def test_a_host_moved_between_approvals_voids_them_at_release(
    clinic: Engine, plugins: Plugins
) -> None:
    set_policy(clinic)
    held = apply(clinic, plugins, person(clinic, "oscar"), hosts=["web1"])
    decide(clinic, plugins, person(clinic, "olga"), held)
    with session_scope(clinic, write=True) as session:
        inventory.update_host(
            session=session,
            actor=ADMIN,
            organisation="clinic",
            name="web1",
            data={"address": "198.51.100.99"},
        )
    assert decide(clinic, plugins, person(clinic, "otto"), held).status is RunStatus.refused
    assert "host web1: address changed" in (status(clinic, held).error or "")


def test_a_refusal_ends_the_run_and_needs_a_reason(clinic: Engine, plugins: Plugins) -> None:
    set_policy(clinic)
    held = apply(clinic, plugins, person(clinic, "oscar"), hosts=["web1"])
    with pytest.raises(InvalidInput) as refused:
        decide(clinic, plugins, person(clinic, "olga"), held, "refuse", comment="  ")
    assert "comment" in refused.value.errors
    ended = decide(clinic, plugins, person(clinic, "olga"), held, "refuse", "not on a Friday")
    assert ended.status is RunStatus.refused and "not on a Friday" in (ended.error or "")
    with pytest.raises(Conflict, match="not awaiting approval"):
        decide(clinic, plugins, person(clinic, "otto"), held)
    (entry,) = entries(clinic, "approval.refuse")
    assert json.loads(entry.payload)["comment"] == "not on a Friday"


@pytest.mark.security
def test_break_glass_is_for_owners_needs_a_reason_and_is_flagged(
    clinic: Engine, plugins: Plugins
) -> None:
    set_policy(clinic)
    held = apply(clinic, plugins, person(clinic, "oscar"), hosts=["web1"])

    def glass(actor: Actor, reason: str) -> Run:
        with session_scope(clinic, write=True) as session:
            return approvals.break_glass(
                session=session,
                actor=actor,
                organisation="clinic",
                run_id=held.id,
                data={"reason": reason},
            )

    with pytest.raises(PermissionDenied):
        glass(person(clinic, "otto"), "the site is down and must be fixed now")
    with pytest.raises(InvalidInput) as short:
        glass(person(clinic, "olga"), "now")
    assert "reason" in short.value.errors
    assert status(clinic, held).status is RunStatus.pending_approval
    assert glass(person(clinic, "olga"), "the site is down and must be fixed now").status is (
        RunStatus.queued
    )
    (entry,) = entries(clinic, "approval.break_glass")
    payload = json.loads(entry.payload)
    assert payload["break_glass"] is True and entry.actor_name == "olga"
    assert payload["reason"] == "the site is down and must be fixed now"


def test_an_unanswered_request_expires(clinic: Engine, plugins: Plugins) -> None:
    set_policy(clinic, expires_hours=2)
    held = apply(clinic, plugins, person(clinic, "oscar"), hosts=["web1"])
    with session_scope(clinic, write=True) as session:
        assert approvals.expire_due(session, utcnow() + timedelta(hours=1)) == []
        assert approvals.expire_due(session, utcnow() + timedelta(hours=3)) == [held.id]
    assert status(clinic, held).status is RunStatus.expired
    assert len(entries(clinic, "approval.expire")) == 1


def test_a_policy_asking_more_approvers_than_there_are_is_refused(
    clinic: Engine, plugins: Plugins
) -> None:
    before = audit_size(clinic)
    with pytest.raises(InvalidInput) as refused:
        set_policy(clinic, approvals_required=4)  # one owner, two operators
    assert "approvals_required" in refused.value.errors
    assert set_policy(clinic, approvals_required=3).approvals_required == 3
    assert audit_size(clinic) == before + 1 and count(clinic, ApprovalPolicy) == 1


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"roles": ["viewer"]}, "roles"),
        ({"roles": []}, "roles"),
        ({"groups": ["nope"]}, "groups"),
        ({"hosts": ["Web1!"]}, "hosts.0"),
        ({"approvals_required": 0}, "approvals_required"),
        ({"expires_hours": 100000}, "expires_hours"),
        ({"name": "Bad Name"}, "name"),
    ],
)
def test_bad_policies_are_refused_with_nothing_changed(
    clinic: Engine, plugins: Plugins, fields: dict[str, Any], field: str
) -> None:
    before = audit_size(clinic)
    with pytest.raises(InvalidInput) as refused:
        set_policy(clinic, **fields)
    assert field in refused.value.errors, refused.value.errors
    assert audit_size(clinic) == before and count(clinic, ApprovalPolicy) == 0


@pytest.mark.security
def test_policies_are_set_by_owners_only(clinic: Engine, plugins: Plugins) -> None:
    with pytest.raises(PermissionDenied):
        set_policy(clinic, person(clinic, "oscar"))
    assert set_policy(clinic, person(clinic, "olga")).name == "production"
    (entry,) = entries(clinic, "approval_policy.set")
    assert json.loads(entry.payload)["after"]["approvals_required"] == 2


def test_a_bad_decision_changes_nothing(clinic: Engine, plugins: Plugins) -> None:
    set_policy(clinic)
    held = apply(clinic, plugins, person(clinic, "oscar"), hosts=["web1"])
    before = audit_size(clinic)
    with pytest.raises(InvalidInput) as refused:
        decide(clinic, plugins, person(clinic, "olga"), held, "maybe")
    assert "decision" in refused.value.errors
    assert audit_size(clinic) == before and count(clinic, Approval) == 0


def test_the_audit_export_alone_shows_k_people_approved_the_digest_that_ran(
    clinic: Engine, plugins: Plugins, settings: Settings
) -> None:
    set_policy(clinic)
    held = apply(clinic, plugins, person(clinic, "oscar"), hosts=["web1"])
    decide(clinic, plugins, person(clinic, "olga"), held)
    decide(clinic, plugins, person(clinic, "otto"), held)
    with session_scope(clinic, write=True) as session:
        assert runs.claim_run(session, run_id=held.id, worker="w", plugins=plugins) is not None
    audit.sign_checkpoint(engine=clinic, settings=settings)
    with session_scope(clinic) as session:
        export = b"".join(audit.export_lines(session=session, actor=ADMIN, settings=settings))
    proven = approved_in_export(export, f"run:clinic/{held.id}")
    assert proven["k"] == 2 and len(proven["approvers"]) == 2


def approved_in_export(export: bytes, subject: str) -> dict[str, Any]:
    """From the export's lines only: the digest the run started with, the distinct
    people who approved that digest, and the k the request asked for."""
    lines = [json.loads(line) for line in export.splitlines()]
    logged = [e for e in lines if e.get("subject") == subject]
    (start,) = [e for e in logged if e["action"] == "run.start"]
    digest = start["payload"]["plan_digest"]
    (request,) = [e for e in logged if e["action"] == "approval.request"]
    assert request["payload"]["digest"] == digest
    approvers = {  # people by account id: one person's two tokens are still one person
        e["payload"]["approver_id"]
        for e in logged
        if e["action"] == "approval.approve" and e["payload"]["digest"] == digest
    }
    assert not [e for e in logged if e["action"] in ("approval.void", "approval.break_glass")]
    k = max(r["approvals_required"] for r in request["payload"]["requirements"])
    assert len(approvers) >= k
    assert request["payload"]["requester_id"] not in approvers  # never the requester
    return {"k": k, "approvers": approvers}


def test_a_held_apply_can_be_cancelled_and_then_never_expires_or_runs(
    clinic: Engine, plugins: Plugins
) -> None:
    set_policy(clinic, approvals_required=1)
    held = apply(clinic, plugins, person(clinic, "oscar"), hosts=["web1"])
    with session_scope(clinic, write=True) as session:
        runs.cancel_run(
            session=session, actor=person(clinic, "oscar"), organisation="clinic", run_id=held.id
        )
    assert status(clinic, held).status is RunStatus.cancelled
    with session_scope(clinic, write=True) as session:
        assert approvals.expire_due(session, utcnow() + timedelta(days=60)) == []
    with pytest.raises(Conflict, match="not awaiting approval"):
        decide(clinic, plugins, person(clinic, "olga"), held)
