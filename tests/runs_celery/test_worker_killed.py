"""A worker killed mid-run (SIGKILL): the run is failed within a bounded time, its host
lock released, its ansible-playbook gone, its run directory (runs/workdir.py) removed by
its supervisor or the next worker on the machine, and the message Redis hands out again does not run the run a second time."""

from __future__ import annotations

from pathlib import Path

import pytest
import redis
from kombu import Connection

from infracms.orchestration.celery_app import visibility_timeout
from infracms.runs.workdir import root as workdir_root
from tests.runs_celery.conftest import (
    STALE_SECONDS,
    Node,
    Processes,
    SilentSshd,
    hung_in_ssh,
    processes_mentioning,
    wait_until,
)

pytestmark = [pytest.mark.integration, pytest.mark.postgres]
REAP_SECONDS = 1.0
# no heartbeat for STALE_SECONDS, noticed at the next reap; the rest is slack for a busy machine
RECOVERY_BOUND = STALE_SECONDS + REAP_SECONDS + 10


def test_killed_worker_run_is_failed_and_not_run_again(
    node: Node, processes: Processes, silent_sshd: SilentSshd
) -> None:
    first = processes.worker()
    processes.beat(reap_seconds=REAP_SECONDS)
    node.add_host("web1", silent_sshd.port)
    run_id = node.submit("apply", "web1")
    running = hung_in_ssh(node, silent_sshd, run_id)
    (workdir,) = run_dirs_of(first.pid)
    playbooks = [c for _, c in processes_mentioning(workdir) if "ansible-playbook" in c]
    assert playbooks, "no ansible-playbook runs in the worker's run directory: not mid-run"
    assert len(node.locks_of(run_id)) == 1

    first.kill()
    failed, recovery = wait_until(
        lambda: node.run(run_id),
        lambda run: run.status.finished,
        RECOVERY_BOUND,
        "the run of the killed worker to be failed",
    )
    print(f"\nrecovery after SIGKILL: {recovery:.1f} s (stale after {STALE_SECONDS} s)")
    assert failed.status == "failed"
    assert f"the worker {running.worker} was lost" in (failed.error or ""), failed.error
    assert node.locks_of(run_id) == [], "the host lock outlived the reaped run"
    with redis.Redis.from_url(node.settings.broker_url or "") as client:
        assert client.hlen("unacked") == 1, "the killed worker's message is not unacknowledged"
    second = processes.worker()
    assert not workdir.exists(), f"{workdir} (decrypted credentials) outlived its worker"
    _redeliver_now(node)  # what Redis does after the visibility timeout, without the wait
    second.wait_for_output(f"run {run_id} is not queued any more: nothing to do", 60)
    with redis.Redis.from_url(node.settings.broker_url or "") as client:
        wait_until(lambda: client.hlen("unacked"), lambda n: n == 0, 30, "the ack")
    again = node.run(run_id)
    assert (again.status, again.error, again.finished_at) == (
        failed.status,
        failed.error,
        failed.finished_at,
    ), "the redelivered task touched the reaped run"
    assert again.event_count == failed.event_count
    assert node.audit_actions(run_id).count("run.start") == 1, node.audit_actions(run_id)
    assert not [c for _, c in processes_mentioning(second_dir(node, second.pid)) if c]


def test_killed_worker_leaves_no_ansible_process(
    node: Node, processes: Processes, silent_sshd: SilentSshd
) -> None:
    worker = processes.worker()
    node.add_host("web1", silent_sshd.port)
    run_id = node.submit("apply", "web1")
    hung_in_ssh(node, silent_sshd, run_id)
    (workdir,) = run_dirs_of(worker.pid)
    assert [c for _, c in processes_mentioning(workdir) if "ansible-playbook" in c]
    worker.kill()
    wait_until(
        lambda: processes_mentioning(workdir),
        lambda left: not left,
        20,
        "the killed worker's ansible-playbook, its forks, their ssh and ssh-agent to end",
    )
    assert not workdir.exists(), "the supervisor left the killed worker's run directory"


def run_dirs_of(pid: int) -> list[Path]:
    """The run directories of the process `pid` (runs/workdir.py)."""
    return sorted(workdir_root().glob(f"{pid}.*"))


def second_dir(node: Node, pid: int) -> Path:
    """The temporary directory of the worker `pid`."""
    (workdir,) = node.tmp.glob(f"infracms-worker-*-{pid}-*")
    return workdir


def _redeliver_now(node: Node) -> None:
    """Hand unacknowledged messages out again, as kombu's Redis transport does once they
    are older than the visibility timeout (here: at once)."""
    assert visibility_timeout() > 86400
    options = {"visibility_timeout": 0}
    with Connection(node.settings.broker_url, transport_options=options) as connection:
        connection.default_channel.qos.restore_visible(interval=1)
