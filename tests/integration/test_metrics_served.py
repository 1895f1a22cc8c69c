"""/metrics of a real served node (`infracms serve`, embedded executor) moves when a run
happens: a plan on a real test host, started through the API, and the scrape before and
after, through the node token and through the separate listener without auth."""

from __future__ import annotations

import socket
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from infracms.db import session_scope
from infracms.services import auth, users
from tests.helpers import make_user
from tests.integration.node import ORG, ApiClient, make_node, served
from tests.support.hosts import TestHost

pytestmark = [pytest.mark.integration, pytest.mark.slow]

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]
PLAN = (("kind", "plan"),)
SUCCEEDED = (("kind", "plan"), ("organisation", ORG), ("status", "succeeded"))


def parsed(text: str) -> Samples:
    found: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def token(node_engine: object, username: str, data: dict[str, str]) -> str:
    with session_scope(node_engine, write=True) as session:  # type: ignore[arg-type]
        user = users.user_by_name(session, username=username)
        actor = auth.user_actor(user, users.roles_of(session, user_id=user.id))
        return auth.issue_token(session=session, actor=actor, data=data).token


def test_the_figures_move_when_a_run_happens(
    tmp_path: Path, module_hosts: Callable[..., list[TestHost]]
) -> None:
    node = make_node(tmp_path / "var")
    [host] = module_hosts(1, init="sshd")
    node.add_credential("pool-key", host.key_path.read_text(), kind="ssh_key")
    node.add_host("web1", host, credential="pool-key")
    node.define("base-web1", "base", "web1", {"timezone": "UTC", "unattended_upgrades": False})
    make_user(node.engine, node.settings, "vera", **{ORG: "viewer"})
    scraper = token(node.engine, "admin", {"name": "prometheus", "scope": "node"})
    viewer = token(node.engine, "vera", {"name": "v", "role": "viewer", "organisation": ORG})
    listen = free_port()
    env = {"INFRACMS_METRICS_LISTEN": f"127.0.0.1:{listen}"}
    with served(node, tmp_path, env=env) as server, httpx.Client(trust_env=False) as http:

        def scrape() -> Samples:
            response = http.get(
                f"{server.base_url}/metrics", headers={"authorization": f"Bearer {scraper}"}
            )
            assert response.status_code == 200, response.text
            return parsed(response.text)

        denied = http.get(
            f"{server.base_url}/metrics", headers={"authorization": f"Bearer {viewer}"}
        )
        assert denied.status_code == 403, denied.text
        assert http.get(f"{server.base_url}/readyz").json() == {
            "status": "ready",
            "problems": {},
        }
        before = scrape()
        assert before.get(("infracms_runs", SUCCEEDED), 0) == 0
        assert before.get(("infracms_run_duration_seconds_count", PLAN), 0) == 0

        client = ApiClient(node, server)
        try:
            run_id = client.start_run("plan")
            end = client.follow(run_id).end
        finally:
            client.close()
        assert end["status"] == "succeeded", end

        after = scrape()
        assert after[("infracms_runs", SUCCEEDED)] == 1
        assert after[("infracms_run_duration_seconds_count", PLAN)] == 1
        assert after[("infracms_run_duration_seconds_sum", PLAN)] > 0
        assert after[("infracms_queue_depth", ())] == 0
        events = after[("infracms_run_events_total", ())]
        assert events == end["event_count"] > before[("infracms_run_events_total", ())]
        assert after[("infracms_audit_entries", ())] > before[("infracms_audit_entries", ())]

        alone = http.get(f"http://127.0.0.1:{listen}/metrics")  # no auth on this address
        assert alone.status_code == 200
        assert parsed(alone.text)[("infracms_runs", SUCCEEDED)] == 1
    print(
        f"plan of one host: {after[('infracms_run_duration_seconds_sum', PLAN)]:.1f} s, "
        f"{events:.0f} events; audit {before[('infracms_audit_entries', ())]:.0f} → "
        f"{after[('infracms_audit_entries', ())]:.0f} entries"
    )
