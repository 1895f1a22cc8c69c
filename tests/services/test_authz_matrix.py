"""The whole authorisation matrix, cell by cell, through the real service functions.

For each role, each action, and both the actor's own organisation and another one,
the operation is really attempted against a database; the expected outcome comes
from the table below, written out independently of ``services/authz.py``.
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import Engine
from sqlmodel import Session

from infracms.config import Settings
from infracms.db import session_scope
from infracms.errors import PermissionDenied
from infracms.keys import load_keyring
from infracms.models import Role
from infracms.plugins import Plugins
from infracms.services import (
    auth,
    credentials,
    definitions,
    inventory,
    modules,
    organisations,
    runs,
    secret_sources,
    user_lifecycle,
    users,
)
from infracms.services.authz import ROLE_ACTIONS, Action, authorize
from infracms.services.context import Actor
from infracms.services.federation import (
    broker_clients,
    consumer,
    instances,
    offerings,
    peering,
    usage,
)
from tests.helpers import ADMIN, make_org, make_user
from tests.services.test_modules import FAKES

O, P, E, V, A = Role.owner, Role.operator, Role.editor, Role.viewer, Role.auditor  # noqa: E741

# What each role may do in its own organisation; nobody may do anything in another one.
EXPECTED: dict[Action, set[Role]] = {
    Action.org_create: set(),
    Action.org_read: {O, P, E, V, A},
    Action.org_update: {O},
    Action.org_delete: set(),
    Action.user_create: set(),
    Action.user_list: set(),
    Action.user_manage: set(),
    Action.node_token_create: set(),
    Action.member_read: {O, P, E, V, A},
    Action.member_manage: {O},
    Action.host_read: {O, P, E, V, A},
    Action.host_write: {O, P, E},
    Action.host_connect: {O, P},
    Action.credential_use: {O, P},
    Action.group_read: {O, P, E, V, A},
    Action.group_write: {O, P, E},
    Action.credential_read: {O, P, E, V, A},
    Action.credential_write: {O, P},
    Action.token_create: {O, P, E, V, A},
    Action.audit_read: {O, A},
    Action.module_make_available: set(),
    Action.module_enable: {O},
    Action.definition_read: {O, P, E, V, A},
    Action.definition_write: {O, P, E},
    Action.run_read: {O, P, E, V, A},
    Action.run_plan: {O, P, E},
    Action.run_apply: {O, P},
    Action.peer_manage: set(),
    Action.broker_manage: set(),
    Action.usage_read: set(),
    Action.offering_read: {O, P, E, V, A},
    Action.offering_publish: {O},
    Action.provision_read: {O, P, E, V, A},
    Action.provision_decide: {O, P},
    Action.catalog_read: {O, P, E, V, A},
    Action.service_read: {O, P, E, V, A},
    Action.service_request: {O, P},
    Action.service_credentials: {O, P},
    Action.secret_source_grant: set(),
}

Operation = Callable[[Session, Actor, str], Any]


def _fresh() -> str:
    return f"n{uuid.uuid4().hex[:10]}"


def operations(settings: Settings) -> dict[Action, Operation]:
    """One real service call per action, given (session, actor, organisation name)."""
    keyring = load_keyring(settings)
    plugins = Plugins.load(builtins=FAKES, entry_points=False)
    return {
        Action.module_make_available: lambda s, a, o: modules.set_available(
            session=s, actor=a, plugins=plugins, name="site", available=True
        ),
        Action.module_enable: lambda s, a, o: modules.enable_module(
            session=s, actor=a, plugins=plugins, organisation=o, name="base"
        ),
        Action.definition_read: lambda s, a, o: definitions.list_definitions(
            session=s, actor=a, organisation=o
        ),
        Action.run_read: lambda s, a, o: runs.list_runs(session=s, actor=a, organisation=o),
        Action.run_plan: lambda s, a, o: runs.create_run(
            session=s, actor=a, plugins=plugins, organisation=o, data={"kind": "plan"}
        ),
        Action.run_apply: lambda s, a, o: runs.create_run(
            session=s, actor=a, plugins=plugins, organisation=o, data={"kind": "apply"}
        ),
        Action.definition_write: lambda s, a, o: definitions.create_definition(
            session=s,
            actor=a,
            plugins=plugins,
            organisation=o,
            data={"name": _fresh(), "module": "site", "target": {"host": "h"}},
        ),
        Action.org_create: lambda s, a, o: organisations.create_organisation(
            session=s, actor=a, data={"name": _fresh()}
        ),
        Action.org_read: lambda s, a, o: organisations.get_organisation(session=s, actor=a, name=o),
        Action.org_update: lambda s, a, o: organisations.update_organisation(
            session=s, actor=a, name=o, data={"title": _fresh()}
        ),
        Action.org_delete: lambda s, a, o: organisations.delete_organisation(
            session=s, actor=a, name=o
        ),
        Action.user_create: lambda s, a, o: users.create_user(
            session=s,
            actor=a,
            settings=settings,
            data={"username": _fresh(), "password": "a-long-password-1"},
        ),
        Action.user_list: lambda s, a, o: users.list_users(session=s, actor=a),
        Action.user_manage: lambda s, a, o: user_lifecycle.update_user(
            session=s, actor=a, username="bystander", data={"display_name": _fresh()}
        ),
        Action.node_token_create: lambda s, a, o: auth.issue_token(
            session=s, actor=a, data={"name": "n", "scope": "node"}
        ),
        Action.member_read: lambda s, a, o: users.list_members(session=s, actor=a, organisation=o),
        Action.member_manage: lambda s, a, o: users.set_membership(
            session=s, actor=a, organisation=o, data={"username": "bystander", "role": "viewer"}
        ),
        Action.host_read: lambda s, a, o: inventory.list_hosts(session=s, actor=a, organisation=o),
        Action.host_write: lambda s, a, o: inventory.update_host(
            session=s, actor=a, organisation=o, name="h", data={"variables": {"v": _fresh()}}
        ),
        # a new host has an address: adding one decides where ssh goes
        Action.host_connect: lambda s, a, o: inventory.create_host(
            session=s, actor=a, organisation=o, data={"name": _fresh(), "address": "198.51.100.1"}
        ),
        Action.credential_use: _flip_credential,
        Action.group_read: lambda s, a, o: inventory.list_groups(
            session=s, actor=a, organisation=o
        ),
        Action.group_write: lambda s, a, o: inventory.create_group(
            session=s, actor=a, organisation=o, data={"name": _fresh()}
        ),
        Action.credential_read: lambda s, a, o: credentials.list_credentials(
            session=s, actor=a, organisation=o
        ),
        Action.credential_write: lambda s, a, o: credentials.create_credential(
            session=s,
            actor=a,
            keyring=keyring,
            organisation=o,
            data={"name": _fresh(), "kind": "password", "secret": "s3cret-value"},
        ),
        Action.token_create: lambda s, a, o: auth.issue_token(
            session=s, actor=a, data={"name": "t", "role": "viewer", "organisation": o}
        ),
        Action.audit_read: lambda s, a, o: authorize(a, Action.audit_read, _org_id(s, o)),
        Action.peer_manage: lambda s, a, o: peering.list_peers(session=s, actor=a),
        Action.broker_manage: lambda s, a, o: broker_clients.list_clients(session=s, actor=a),
        Action.usage_read: lambda s, a, o: usage.usage_records(session=s, actor=a),
        Action.offering_read: lambda s, a, o: offerings.list_publications(
            session=s, actor=a, organisation=o
        ),
        Action.provision_read: lambda s, a, o: instances.list_requests(
            session=s, actor=a, organisation=o
        ),
        Action.service_read: lambda s, a, o: consumer.list_services(
            session=s, actor=a, organisation=o
        ),
        # these need a peer, a published offering or a pending request to act on
        **{
            action: (lambda action: lambda s, a, o: authorize(a, action, _org_id(s, o)))(action)
            for action in (
                Action.offering_publish,
                Action.provision_decide,
                Action.catalog_read,
                Action.service_request,
                Action.service_credentials,
            )
        },
        Action.secret_source_grant: lambda s, a, o: secret_sources.grant_source(
            session=s,
            actor=a,
            settings=settings,
            organisation=o,
            data={"kind": "env", "name": f"INFRACMS_VAR_{_fresh().upper()}"},
        ),
    }


def _flip_credential(session: Session, actor: Actor, organisation: str) -> None:
    """Attach the credential to host h, or detach it: either is using the credential."""
    host = inventory.get_host(session=session, actor=ADMIN, organisation=organisation, name="h")
    new = None if host.credential else "c"
    inventory.update_host(
        session=session, actor=actor, organisation=organisation, name="h", data={"credential": new}
    )


def _org_id(session: Session, name: str) -> uuid.UUID:
    return organisations.get_organisation(session=session, actor=ADMIN, name=name).id


def test_expected_table_covers_every_action() -> None:
    assert set(EXPECTED) == set(Action), "every action needs an expected row"
    assert set(ROLE_ACTIONS) == set(Action)


def _actor_for(engine: Engine, role: Role, org_id: uuid.UUID) -> Actor:
    # the token action needs a real user, so every actor is backed by one
    with session_scope(engine) as session:
        user = users.user_by_name(session, username="matrix")
    return Actor(kind="user", id=str(user.id), name="matrix", roles={org_id: role}, user_id=user.id)


def _prepare_modules(engine: Engine, settings: Settings, *organisations: str) -> None:
    plugins = Plugins.load(builtins=FAKES, entry_points=False)
    keyring = load_keyring(settings)
    with session_scope(engine, write=True) as session:
        for name in ("base", "site"):
            modules.set_available(
                session=session, actor=ADMIN, plugins=plugins, name=name, available=True
            )
        for org in organisations:
            modules.enable_module(
                session=session, actor=ADMIN, plugins=plugins, organisation=org, name="site"
            )
            inventory.create_host(
                session=session,
                actor=ADMIN,
                organisation=org,
                data={"name": "h", "address": "198.51.100.9"},
            )
            credentials.create_credential(
                session=session,
                actor=ADMIN,
                keyring=keyring,
                organisation=org,
                data={"name": "c", "kind": "password", "secret": "s3cret-value"},
            )
            definitions.create_definition(
                session=session,
                actor=ADMIN,
                plugins=plugins,
                organisation=org,
                data={"name": "d-base", "module": "base", "target": {"host": "h"}},
            )


def test_every_role_action_and_organisation(settings: Settings, engine: Engine) -> None:
    own_id = make_org(engine, "own")
    make_org(engine, "other")
    _prepare_modules(engine, settings, "own", "other")
    make_user(engine, settings, "matrix")
    make_user(engine, settings, "bystander")
    ops = operations(settings)
    outcomes: list[str] = []
    for role, action, target in itertools.product(Role, Action, ("own", "other")):
        if action is Action.org_delete:
            continue  # checked below on throwaway organisations
        expected = target == "own" and role in EXPECTED[action]
        actor = _actor_for(engine, role, own_id)
        with session_scope(engine, write=True) as session:
            allowed = _attempt(ops[action], session, actor, target)
        if allowed != expected:
            outcomes.append(f"{role} {action} in {target}: expected {expected}, got {allowed}")
    assert outcomes == []


def test_org_delete_is_for_admins_only(settings: Settings, engine: Engine) -> None:
    make_user(engine, settings, "matrix")
    for role in Role:
        org_id = make_org(engine, f"doomed-{role}")
        actor = _actor_for(engine, role, org_id)
        with session_scope(engine, write=True) as session, pytest.raises(PermissionDenied):
            organisations.delete_organisation(session=session, actor=actor, name=f"doomed-{role}")
        with session_scope(engine, write=True) as session:
            organisations.delete_organisation(session=session, actor=ADMIN, name=f"doomed-{role}")


def test_admin_may_do_everything(settings: Settings, engine: Engine) -> None:
    make_org(engine, "own")
    _prepare_modules(engine, settings, "own")
    make_user(engine, settings, "bystander")
    ops = operations(settings)
    for action, op in ops.items():
        if action in (Action.org_delete, Action.token_create, Action.node_token_create):
            continue  # delete would remove the org; tokens are issued to users, not the node
        with session_scope(engine, write=True) as session:
            assert _attempt(op, session, ADMIN, "own"), action


def _attempt(op: Operation, session: Session, actor: Actor, organisation: str) -> bool:
    try:
        op(session, actor, organisation)
    except PermissionDenied:
        return False
    return True
