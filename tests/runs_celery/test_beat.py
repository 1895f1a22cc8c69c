"""`infracms beat`: a queued run whose message was lost is sent again and runs once."""

from __future__ import annotations

import signal

import pytest

from tests.runs_celery.conftest import STALE_SECONDS, Node, Processes, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.postgres]


def test_lost_message_is_sent_again(node: Node, processes: Processes, refusing_port: int) -> None:
    processes.worker()
    node.add_host("web1", refusing_port)
    run_id = node.create_run("plan", "web1")  # queued, but no message was ever sent
    beat = processes.beat(reap_seconds=0.5)
    run, took = wait_until(
        lambda: node.run(run_id), lambda run: run.status.finished, 60 + STALE_SECONDS, "the run"
    )
    assert run.status == "failed" and run.recap["web1"].get("unreachable"), (run.status, run.error)
    assert took >= STALE_SECONDS - 1, f"sent again after {took:.1f} s, before it was stale"
    assert f"run {run_id} has been queued with no message" in beat.output()
    assert node.audit_actions(run_id).count("run.start") == 1

    beat.popen.send_signal(signal.SIGTERM)
    assert beat.popen.wait(timeout=10) == 0, beat.output()[-2000:]
