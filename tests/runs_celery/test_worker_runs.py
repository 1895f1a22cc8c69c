"""Runs sent through the CeleryExecutor are run by a real `infracms worker` and recorded."""

from __future__ import annotations

import pytest

from tests.runs_celery.conftest import (
    Node,
    Processes,
    SilentSshd,
    hung_in_ssh,
    processes_mentioning,
    wait_until,
)

pytestmark = [pytest.mark.integration, pytest.mark.postgres]
RUN_TIMEOUT = 120.0


def test_plan_and_apply_end_recorded(node: Node, processes: Processes, refusing_port: int) -> None:
    worker = processes.worker()
    node.add_host("web1", refusing_port)
    plan, apply = node.submit("plan", "web1"), node.submit("apply", "web1")
    for run_id in (plan, apply):
        run, _ = wait_until(
            lambda run_id=run_id: node.run(run_id),
            lambda run: run.status.finished,
            RUN_TIMEOUT,
            f"run {run_id} to end",
        )
        assert run.status == "failed", f"expected failed, got {run.status}: {run.error}"
        assert run.recap.get("web1", {}).get("unreachable"), f"{run.error!r}; recap {run.recap}"
        assert "unreachable: web1" in (run.error or ""), run.error
        assert run.worker and run.worker.startswith("celery@"), run.worker
        assert run.worker.endswith(f":{worker.pid}"), f"{run.worker} is not the worker's pid"
        assert run.event_count > 0, "no events were stored"
        assert node.audit_actions(run_id)[-2:] == ["run.start", "run.finish"]
        assert node.locks_of(run_id) == []


def test_second_apply_on_a_locked_host_is_refused(
    node: Node, processes: Processes, silent_sshd: SilentSshd
) -> None:
    processes.worker(concurrency=2)
    node.add_host("web1", silent_sshd.port)
    first = node.submit("apply", "web1")
    hung_in_ssh(node, silent_sshd, first)
    assert len(node.locks_of(first)) == 1, "the running apply holds no lock on web1"
    second = node.submit("apply", "web1")
    refused, _ = wait_until(
        lambda: node.run(second), lambda run: run.status.finished, 60, "the second apply to end"
    )
    assert refused.status == "failed"
    assert refused.error == f"host web1 is being applied by run {first}", refused.error
    assert "run.refused" in node.audit_actions(second)
    assert node.run(first).status == "running", "the refusal disturbed the running apply"
    node.cancel(first)
    wait_until(lambda: node.run(first).status, lambda s: s.finished, 60, "the first to stop")


def test_cancel_stops_a_running_run(
    node: Node, processes: Processes, silent_sshd: SilentSshd
) -> None:
    processes.worker()
    node.add_host("web1", silent_sshd.port)
    run_id = node.submit("apply", "web1")
    hung_in_ssh(node, silent_sshd, run_id)
    node.cancel(run_id)
    run, took = wait_until(
        lambda: node.run(run_id), lambda run: run.status.finished, 30, "the run to be cancelled"
    )
    assert run.status == "cancelled", f"expected cancelled, got {run.status}: {run.error}"
    assert node.locks_of(run_id) == [], "the cancelled run kept its host lock"
    assert node.audit_actions(run_id)[-2:] == ["run.cancel", "run.finish"]
    print(f"cancel took {took:.1f} s")


def test_cancel_leaves_no_ansible_process(
    node: Node, processes: Processes, silent_sshd: SilentSshd
) -> None:
    processes.worker()
    node.add_host("web1", silent_sshd.port)
    run_id = node.submit("apply", "web1")
    hung_in_ssh(node, silent_sshd, run_id)
    node.cancel(run_id)
    wait_until(lambda: node.run(run_id).status, lambda s: s.finished, 30, "the run to end")
    wait_until(
        lambda: [c for _, c in processes_mentioning(node.tmp) if "ansible-playbook" in c],
        lambda left: not left,
        15,
        "the cancelled run's ansible-playbook processes to end",
    )
