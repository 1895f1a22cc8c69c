"""An apply under an approval policy on a real host: held with its plan, one approval of
two does not release it, the second does, and the run applies on the host what was
approved."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from infracms.db import session_scope
from infracms.models import Role, RunStatus
from infracms.services import approval_policies, approvals, inventory, runs
from tests.helpers import ADMIN
from tests.integration.node import RUN_TIMEOUT, assert_succeeded, make_node, on_host
from tests.services.test_approvals import _people, person
from tests.support.hosts import TestHost

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_a_held_apply_runs_after_its_second_approval(
    tmp_path_factory: pytest.TempPathFactory, module_hosts: Callable[..., list[TestHost]]
) -> None:
    (host,) = module_hosts(1)
    node = make_node(tmp_path_factory.mktemp("approved") / "var")
    with session_scope(node.engine, write=True) as session:
        inventory.create_group(
            session=session, actor=ADMIN, organisation="clinic", data={"name": "prod"}
        )
    node.add_credential("pool-key", host.key_path.read_text(), kind="ssh_key")
    node.add_host("web1", host, credential="pool-key")
    node.update_host("web1", groups=["prod"])
    node.define(
        "base-web1", "base", "web1", {"timezone": "Europe/Lisbon", "unattended_upgrades": False}
    )
    _people(
        node.engine, "clinic", {"olga": Role.owner, "oscar": Role.operator, "otto": Role.operator}
    )
    with session_scope(node.engine, write=True) as session:
        approval_policies.set_policy(
            session=session,
            actor=ADMIN,
            organisation="clinic",
            data={"name": "production", "groups": ["prod"], "approvals_required": 2},
        )
    before = on_host(host, "cat /etc/timezone")
    with session_scope(node.engine, write=True) as session:
        run = runs.create_run(
            session=session,
            actor=person(node.engine, "oscar"),
            plugins=node.plugins,
            organisation="clinic",
            data={"kind": "apply", "timeout_seconds": RUN_TIMEOUT},
        )
    assert run.status is RunStatus.pending_approval

    def approve(name: str) -> RunStatus:
        with session_scope(node.engine, write=True) as session:
            return approvals.decide(
                session=session,
                actor=person(node.engine, name),
                plugins=node.plugins,
                organisation="clinic",
                run_id=run.id,
                data={"decision": "approve", "comment": f"{name} read the plan"},
            ).status

    assert approve("olga") is RunStatus.pending_approval
    assert node.execute(run.id).status == RunStatus.pending_approval  # an executor leaves it
    assert on_host(host, "cat /etc/timezone") == before
    assert approve("otto") is RunStatus.queued
    done = node.execute(run.id)
    assert_succeeded(node, done)
    assert on_host(host, "cat /etc/timezone").strip() == "Europe/Lisbon"
    (start,) = [e for e in node.audit("run.start") if str(run.id) in e.subject]
    (request,) = node.audit("approval.request")
    assert start.payload and request.payload
    assert json.loads(start.payload)["plan_digest"] == json.loads(request.payload)["digest"]
