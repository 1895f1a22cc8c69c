"""A provided instance after its provision, through the provider's services in one
process: updated (another plan, other parameters: a new revision and its run, the
generated password kept), refused updates that change nothing, and deprovisioned (a
last revision that marks what the instance created absent, its run, then the definition
retired and the pool free again; a failed removal run tried again)."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from sqlalchemy import Engine
from sqlmodel import Session, col, select

from federation.models.osb import LastOperationState, UpdateRequest
from infracms.config import Settings
from infracms.db import session_scope
from infracms.errors import InfracmsError
from infracms.keys import Keyring, load_keyring
from infracms.models import AuditEntry
from infracms.models.credential import Credential
from infracms.models.definition import Definition
from infracms.models.federation import InstanceStatus, ServiceInstance, UsageRecord
from infracms.models.run import Run, RunStatus
from infracms.plugins import Plugins
from infracms.services import runs
from infracms.services.federation import instances, service_secrets, updates
from infracms.services.federation.broker_errors import (
    AsyncRequired,
    BrokerBadRequest,
    ConcurrencyError,
    Gone,
    MaintenanceInfoConflict,
    UnknownInstance,
    UnsupportedChange,
)
from tests.federation_node.conftest import KEY
from tests.federation_node.test_offering_hooks import (
    CALLER,
    approve_and_apply,
    publish,
    published_settings,
    request,
)

SUCCEEDED, FAILED, IN_PROGRESS = (
    LastOperationState.SUCCEEDED,
    LastOperationState.FAILED,
    LastOperationState.IN_PROGRESS,
)
BOTH_PLANS = {"plans": [{"name": "small"}, {"name": "large"}]}


def instance(engine: Engine, row_id: uuid.UUID) -> ServiceInstance:
    with session_scope(engine) as session:
        found = session.get(ServiceInstance, row_id)
        assert found is not None
        return found


def update(
    engine: Engine,
    plugins: Plugins,
    keyring: Keyring,
    row: ServiceInstance,
    *,
    plan_id: str | None = None,
    parameters: dict[str, Any] | None = None,
    accepts_incomplete: bool = True,
    **fields: Any,
) -> updates.Updated:
    with session_scope(engine, write=True) as session:
        return updates.update_instance(
            session=session,
            plugins=plugins,
            keyring=keyring,
            caller=CALLER,
            instance_id=row.instance_id,
            request=UpdateRequest(
                service_id=fields.pop("service_id", row.offering_id),
                plan_id=plan_id,
                parameters=parameters,
                **fields,
            ),
            accepts_incomplete=accepts_incomplete,
        )


def last_operation(
    engine: Engine, row: ServiceInstance, operation: str | None = None
) -> tuple[LastOperationState, str]:
    with session_scope(engine, write=True) as session:
        fresh = session.get(ServiceInstance, row.id)
        assert fresh is not None
        answer = instances.last_operation(session, row=fresh, node="a.test", operation=operation)
    return answer.state, answer.description or ""


def finish(engine: Engine, run_id: uuid.UUID, status: RunStatus = RunStatus.succeeded) -> None:
    with session_scope(engine, write=True) as session:
        runs.finish_run(session, run_id=run_id, status=status, rc=0, recap={}, stdout_sha256=None)


def deprovision(engine: Engine, plugins: Plugins, row: ServiceInstance) -> instances.Deprovisioned:
    with session_scope(engine, write=True) as session:
        return instances.deprovision(
            session=session, plugins=plugins, caller=CALLER, instance_id=row.instance_id
        )


def audit_actions(session: Session) -> list[tuple[str, dict[str, Any]]]:
    rows = session.exec(select(AuditEntry).order_by(col(AuditEntry.index))).all()
    return [(row.action, json.loads(row.payload)) for row in rows]


def credentials_of(session: Session, row: ServiceInstance) -> list[str]:
    prefix = service_secrets.credential_prefix(row)
    return list(
        session.exec(select(Credential.name).where(col(Credential.name).startswith(prefix)))
    )


def run_pins(engine: Engine, run_id: uuid.UUID) -> list[dict[str, Any]]:
    with session_scope(engine) as session:
        run = session.get(Run, run_id)
        assert run is not None
        return list(run.definitions)


# --- updates ----------------------------------------------------------------------------


def test_an_update_is_a_new_revision_and_its_run_keeping_the_password(
    provider: Engine, plugins: Plugins, settings: Settings
) -> None:
    keyring = load_keyring(settings)
    offering_id = publish(provider, plugins, "postgresql", "managed-postgresql")
    row, _ = approve_and_apply(
        provider, plugins, keyring, offering_id, {"database": "app", "allowed_networks": []}
    )
    with session_scope(provider) as session:
        before = published_settings(session, row.definition or "")
        generated = credentials_of(session, row)
    done = update(provider, plugins, keyring, row, parameters={"allowed_networks": ["10.1.0.0/24"]})
    assert done.pending and done.run_id is not None
    assert done.instance.operation.startswith("update-")
    with session_scope(provider) as session:
        after = published_settings(session, row.definition or "")
        assert credentials_of(session, row) == generated
        actions = audit_actions(session)
    assert after["roles"] == before["roles"]  # the same reference to the same password
    assert [r["address"] for r in after["hba"]] == ["10.1.0.0/24"]
    assert after["listen_addresses"] == ["*"]
    assert run_pins(provider, done.run_id)[0]["name"] == row.definition
    [(_, entry)] = [(a, p) for a, p in actions if a == "service.update"]
    assert entry["operation"] == done.instance.operation and entry["instance_id"] == row.instance_id
    assert entry["previous"] == {
        "plan": row.plan_id,
        "parameters": {"database": "app", "allowed_networks": []},
    }
    assert entry["parameters"] == {"database": "app", "allowed_networks": ["10.1.0.0/24"]}
    assert "definition.save" in [a for a, _ in actions]
    # the same update sent again while it applies: the same operation, no second run
    again = update(
        provider, plugins, keyring, row, parameters={"allowed_networks": ["10.1.0.0/24"]}
    )
    assert (again.pending, again.run_id, again.instance.operation) == (
        True,
        None,
        done.instance.operation,
    )
    with pytest.raises(ConcurrencyError, match="still being updated"):
        update(provider, plugins, keyring, row, parameters={"allowed_networks": []})
    state, words = last_operation(provider, row, done.instance.operation)
    assert state is IN_PROGRESS and words.startswith("updating: run"), words
    finish(provider, done.run_id)
    assert last_operation(provider, row, done.instance.operation)[0] is SUCCEEDED
    with pytest.raises(BrokerBadRequest, match="not the last operation"):
        last_operation(provider, row, "provision-0")


def test_a_failed_update_leaves_the_instance_usable_and_may_be_sent_again(
    provider: Engine, plugins: Plugins, settings: Settings
) -> None:
    keyring = load_keyring(settings)
    offering_id = publish(provider, plugins, "postgresql", "managed-postgresql")
    row, _ = approve_and_apply(provider, plugins, keyring, offering_id, {"database": "app"})
    done = update(provider, plugins, keyring, row, parameters={"allowed_networks": ["10.1.0.0/24"]})
    assert done.run_id is not None
    finish(provider, done.run_id, RunStatus.failed)
    with session_scope(provider, write=True) as session:
        fresh = session.get(ServiceInstance, row.id)
        assert fresh is not None
        answer = instances.last_operation(session, row=fresh, node="a.test")
    assert answer.state is FAILED and answer.instance_usable and answer.update_repeatable
    retried = update(provider, plugins, keyring, row, parameters={"allowed_networks": []})
    assert retried.pending and retried.run_id not in (None, done.run_id)


def test_a_plan_change_moves_the_usage_record_and_applies_nothing(
    provider: Engine, plugins: Plugins, settings: Settings
) -> None:
    keyring = load_keyring(settings)
    offering_id = publish(provider, plugins, "postgresql", "managed-postgresql", **BOTH_PLANS)
    row, _ = approve_and_apply(provider, plugins, keyring, offering_id, {"database": "app"})
    with session_scope(provider) as session:
        revisions = session.exec(select(Definition.latest)).all()
    done = update(provider, plugins, keyring, row, plan_id=f"{offering_id}.large")
    assert (done.pending, done.run_id, done.instance.plan_id) == (
        False,
        None,
        f"{offering_id}.large",
    )
    assert last_operation(provider, row)[0] is SUCCEEDED
    with session_scope(provider) as session:
        assert session.exec(select(Definition.latest)).all() == revisions
        usage = session.exec(select(UsageRecord).order_by(col(UsageRecord.started_at))).all()
    assert [(u.plan_id, u.ended_at is None) for u in usage] == [
        (f"{offering_id}.small", False),
        (f"{offering_id}.large", True),
    ]
    # nothing to change: done at once, and nothing recorded
    assert not update(provider, plugins, keyring, row, parameters={"database": "app"}).pending


@pytest.mark.parametrize(
    ("change", "error", "words"),
    [
        ({"parameters": {"database": "renamed"}}, UnsupportedChange, "cannot be renamed"),
        (
            {"parameters": {"allowed_networks": "10.0.0.0/8"}},
            BrokerBadRequest,
            "parameters do not fit",
        ),
        ({"plan_id": "coop-managed-postgresql.huge"}, BrokerBadRequest, "has no plan"),
        ({"service_id": "coop-offsite-backup"}, BrokerBadRequest, "is of service"),
        ({"maintenance_info": {"version": "2.0.0"}}, MaintenanceInfoConflict, "maintenance"),
        ({"accepts_incomplete": False}, AsyncRequired, "accepts_incomplete"),
    ],
)
def test_refused_updates_change_nothing(
    provider: Engine,
    plugins: Plugins,
    settings: Settings,
    change: dict[str, Any],
    error: type[InfracmsError],
    words: str,
) -> None:
    keyring = load_keyring(settings)
    offering_id = publish(provider, plugins, "postgresql", "managed-postgresql")
    row, _ = approve_and_apply(provider, plugins, keyring, offering_id, {"database": "app"})
    with session_scope(provider) as session:
        before = (len(audit_actions(session)), published_settings(session, row.definition or ""))
    with pytest.raises(error, match=words) as refused:
        update(provider, plugins, keyring, row, **change)
    assert refused.value.status in (400, 422)
    with session_scope(provider) as session:
        after = (len(audit_actions(session)), published_settings(session, row.definition or ""))
    assert after == before
    assert instance(provider, row.id).parameters == {"database": "app"}


def test_invalid_parameters_are_named_by_field(
    provider: Engine, plugins: Plugins, settings: Settings
) -> None:
    keyring = load_keyring(settings)
    offering_id = publish(provider, plugins, "postgresql", "managed-postgresql")
    row, _ = approve_and_apply(provider, plugins, keyring, offering_id, {"database": "app"})
    with pytest.raises(BrokerBadRequest) as refused:
        update(provider, plugins, keyring, row, parameters={"allowed_networks": 7, "extra": 1})
    assert set(refused.value.errors) == {"parameters.allowed_networks", "parameters"}


def test_updates_of_unknown_pending_and_ended_instances(
    provider: Engine, plugins: Plugins, settings: Settings
) -> None:
    keyring = load_keyring(settings)
    offering_id = publish(provider, plugins, "backup", "offsite-backup")
    with session_scope(provider, write=True) as session:
        pending = request(
            session, plugins, offering_id, {"name": "web1", "ssh_public_key": KEY}, keyring
        )
    with pytest.raises(ConcurrencyError, match="provisioned"):
        update(provider, plugins, keyring, pending, parameters={"ssh_public_key": KEY})
    with session_scope(provider, write=True) as session:
        instances.deprovision(
            session=session, plugins=plugins, caller=CALLER, instance_id=pending.instance_id
        )
    with pytest.raises(Gone):
        update(provider, plugins, keyring, pending, parameters={"ssh_public_key": KEY})
    with pytest.raises(UnknownInstance):
        unknown = ServiceInstance(
            instance_id="nope", offering_id=offering_id, plan_id="x", client="", operation=""
        )
        update(provider, plugins, keyring, unknown, parameters={})


# --- removal ----------------------------------------------------------------------------


def test_deprovision_removes_with_a_last_revision_then_retires_it(
    provider: Engine, plugins: Plugins, settings: Settings
) -> None:
    keyring = load_keyring(settings)
    offering_id = publish(provider, plugins, "postgresql", "managed-postgresql")
    row, _ = approve_and_apply(
        provider,
        plugins,
        keyring,
        offering_id,
        {"database": "app", "allowed_networks": ["10.0.0.0/8"]},
    )
    done = deprovision(provider, plugins, row)
    assert done.pending and done.run_id is not None
    with session_scope(provider) as session:
        removal = published_settings(session, row.definition or "")
        assert credentials_of(session, row) == []
    assert (removal["absent_databases"], removal["absent_roles"]) == (["app"], ["app"])
    assert removal["roles"] == removal["databases"] == removal["hba"] == []
    assert run_pins(provider, done.run_id)[0]["name"] == row.definition
    assert instance(provider, row.id).status is InstanceStatus.deprovisioning
    state, words = last_operation(provider, row, done.instance.operation)
    assert state is IN_PROGRESS and words.startswith("removing: run"), words
    # asked again while it runs: the same operation
    again = deprovision(provider, plugins, row)
    assert (again.pending, again.run_id, again.instance.operation) == (
        True,
        None,
        done.instance.operation,
    )
    finish(provider, done.run_id)
    assert last_operation(provider, row, done.instance.operation)[0] is SUCCEEDED
    ended = instance(provider, row.id)
    assert ended.status is InstanceStatus.ended and ended.ended_at is not None
    with session_scope(provider) as session:
        definition = session.exec(select(Definition).where(Definition.name == row.definition)).one()
        actions = audit_actions(session)
    assert definition.retired_at is not None
    [(_, end)] = [(a, p) for a, p in actions if a == "service.end"]
    assert end["removed"] is True and end["run"] == str(done.run_id)
    with pytest.raises(Gone):
        deprovision(provider, plugins, row)
    # the pool is free again for the next instance
    again_row, _ = approve_and_apply(provider, plugins, keyring, offering_id, {"database": "app"})
    assert again_row.id != row.id


def test_a_failed_removal_runs_again_when_asked_again(
    provider: Engine, plugins: Plugins, settings: Settings
) -> None:
    keyring = load_keyring(settings)
    offering_id = publish(provider, plugins, "backup", "offsite-backup")
    row, _ = approve_and_apply(
        provider, plugins, keyring, offering_id, {"name": "web1", "ssh_public_key": KEY}
    )
    first = deprovision(provider, plugins, row)
    assert first.run_id is not None
    with session_scope(provider) as session:
        assert published_settings(session, row.definition or "")["absent_served"] == ["web1"]
    finish(provider, first.run_id, RunStatus.failed)
    state, words = last_operation(provider, row, first.instance.operation)
    assert state is FAILED and str(first.run_id) in words
    second = deprovision(provider, plugins, row)
    assert second.pending and second.run_id not in (None, first.run_id)
    assert second.instance.operation != first.instance.operation
    with session_scope(provider) as session:
        revisions = session.exec(
            select(Definition.latest).where(Definition.name == row.definition)
        ).one()
    assert revisions == 2  # the removal revision is not saved twice
    finish(provider, second.run_id)
    assert last_operation(provider, row)[0] is SUCCEEDED
    assert instance(provider, row.id).status is InstanceStatus.ended


def test_a_removal_that_cannot_start_ends_the_instance_and_says_why(
    provider: Engine, plugins: Plugins, settings: Settings
) -> None:
    keyring = load_keyring(settings)
    base = {"hba": [{"type": "hostssl", "database": "app", "user": "all", "address": "10.0.0.0/8"}]}
    offering_id = publish(provider, plugins, "postgresql", "managed-postgresql", settings=base)
    row, _ = approve_and_apply(provider, plugins, keyring, offering_id, {"database": "app"})
    done = deprovision(provider, plugins, row)
    assert (done.pending, done.run_id) == (False, None)
    ended = instance(provider, row.id)
    assert ended.status is InstanceStatus.ended
    assert ended.reason is not None and "client rules name what is absent" in ended.reason
    with session_scope(provider) as session:
        [(_, end)] = [(a, p) for a, p in audit_actions(session) if a == "service.end"]
        assert credentials_of(session, row) == []
    assert end["removed"] is False and "could not start" in end["why"]
