"""A plan on new hosts and a plan after a settings change show what would change (tasks
and diffs) and change nothing on the hosts; a second apply changes nothing."""

from __future__ import annotations

import difflib

import pytest

from tests.integration.node import assert_succeeded, changed_tasks, on_host
from tests.integration.world import (
    PLAN_PORT,
    PLAN_SERVER_NAME,
    PLAN_TIMEZONE,
    Applied,
    Planned,
    World,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_a_plan_on_new_hosts_shows_changes_and_changes_nothing(
    world: World, first_plan: Planned
) -> None:
    node = world.node
    run = node.run(first_plan.applied.run_id)
    assert_succeeded(node, run)
    assert run.kind == "plan"
    events = node.events(run.id)
    would = changed_tasks(events, "web1")
    for task in ("Install nginx", "Install PostgreSQL", "Install restic", "Grant sudo"):
        assert task in would, f"the plan does not show {task!r}; it shows {would}"
    assert "Install the WireGuard tools" in changed_tasks(events, "vpn1")
    assert_unchanged(first_plan)
    warnings = [e.stdout for e in events if "Warning" in e.stdout and "DSA" in e.stdout]
    assert warnings == [], "Python warnings reach the run's output"
    discovery = [e.stdout for e in events if "discovered Python interpreter" in e.stdout]
    assert discovery == [], "Ansible's interpreter-discovery warning opens the run's output"


def test_a_plan_shows_the_tasks_with_secrets_that_would_change(
    world: World, first_plan: Planned
) -> None:
    events = world.node.events(first_plan.applied.run_id)
    shown = [e for e in events if e.host == "web1" and e.task == "Write the repository password"]
    assert any(e.stdout.startswith("changed:") for e in shown), "the task did not report"
    assert "Write the repository password" in changed_tasks(events, "web1")


def assert_unchanged(planned: Planned) -> None:
    """Each host's files, packages and accounts are as they were before the plan."""
    for host, before in planned.before.items():
        after = planned.after[host]
        changes = "\n".join(difflib.unified_diff(before.splitlines(), after.splitlines(), n=0))
        assert after == before, f"the plan changed {host}:\n{changes[:4000]}"


def test_a_second_apply_changes_nothing(world: World, second_apply: Applied) -> None:
    run = world.node.run(second_apply.run_id)
    assert_succeeded(world.node, run)
    assert sorted(run.recap) == ["vpn1", "web1"], run.recap
    for host, counts in run.recap.items():
        changed = changed_tasks(world.node.events(run.id), host)
        assert counts.get("changed", 0) == 0, f"{host} changed again: {counts}; tasks {changed}"
        assert counts.get("ok", 0) > 0, run.recap


def test_a_plan_shows_what_would_change_and_changes_nothing(
    world: World, plan_run: Planned
) -> None:
    node, web = world.node, world.web
    run = node.run(plan_run.applied.run_id)
    assert_succeeded(node, run)
    assert run.kind == "plan"
    revisions = {d["name"]: d["revision"] for d in run.definitions}
    assert revisions["base-web1"] == 2 and revisions["site-www"] == 2, revisions
    assert run.recap["web1"].get("changed", 0) > 0, run.recap
    assert run.recap["vpn1"].get("changed", 0) == 0, run.recap
    events = node.events(run.id)
    would = changed_tasks(events, "web1")
    for task in (
        "Name the time zone in /etc/timezone",
        "Point /etc/localtime at the time zone",
        "Write the rule set, checked by nft -c before it replaces the old one",
        "Write the sites, each checked by nginx -t before it replaces the old one",
    ):
        assert task in would, f"the plan does not show {task!r}; it shows {would}"
    diffs = str([e.data.get("diff") for e in events if e.host == "web1" and e.data.get("diff")])
    for text in (PLAN_TIMEZONE, f"{PLAN_PORT}", PLAN_SERVER_NAME):
        assert text in diffs, f"no diff shows {text!r}"
    # nothing on the host changed: the old settings are in place, and all else too
    assert on_host(web, "cat /etc/timezone") == "Europe/Berlin\n"
    assert str(PLAN_PORT) not in on_host(web, "nft list ruleset")
    site = on_host(web, "cat /etc/nginx/sites-available/infracms-www.conf")
    assert PLAN_SERVER_NAME not in site, site
    assert_unchanged(plan_run)
