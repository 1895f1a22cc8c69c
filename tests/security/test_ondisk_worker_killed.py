"""A Celery worker killed (SIGKILL, its playbook's supervisor with it) mid-run, on a real
host, with a marker in its environment: the next worker to start on the machine sweeps
the dead run. No file holds the SSH key or the marker, and no ssh, ssh-agent or ansible
process of the run is alive. (Real Redis, PostgreSQL and ``infracms worker``.)"""

from __future__ import annotations

import os
import secrets as random
import signal
from pathlib import Path

import pytest

from infracms.db import session_scope
from infracms.keys import load_keyring
from infracms.services import credentials, definitions, inventory
from tests.helpers import ADMIN
from tests.runs_celery.conftest import ORG, Node, Processes, node, processes  # noqa: F401
from tests.security._ondisk_support import (
    MARKER_NAME,
    block_ssh,
    files_holding,
    processes_mentioning,
    run_dirs_of,
    unblock_ssh,
    wait_for,
)
from tests.support.hosts import HostFactory
from tests.support.redis import fresh_redis_url, redis_server  # noqa: F401

pytestmark = [pytest.mark.security, pytest.mark.integration, pytest.mark.postgres]


def test_killed_worker_leaves_no_secret_and_no_process(
    node: Node,  # noqa: F811
    processes: Processes,  # noqa: F811
    host_factory: HostFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    (host,) = host_factory(1)
    key = host.key_path.read_text()
    marker = "marker-" + random.token_hex(12)
    monkeypatch.setenv(MARKER_NAME, marker)  # the worker inherits it
    with session_scope(node.engine, write=True) as session:
        credentials.create_credential(
            session=session,
            actor=ADMIN,
            keyring=load_keyring(node.settings),
            organisation=ORG,
            data={"name": "pool-key", "kind": "ssh_key", "secret": key},
        )
        inventory.create_host(
            session=session,
            actor=ADMIN,
            organisation=ORG,
            data={
                "name": "h1",
                "address": host.address,
                "ssh_port": host.port,
                "host_key": host.host_key,
                "credential": "pool-key",
            },
        )
        definitions.create_definition(
            session=session,
            actor=ADMIN,
            plugins=node.plugins,
            organisation=ORG,
            data={"name": "base-h1", "module": "base", "target": {"host": "h1"}},
        )
    block_ssh(host)
    try:
        worker = processes.worker()
        node.submit("plan", "h1")
        (directory,) = wait_for("the worker's run", lambda: run_dirs_of(worker.pid))
        assert isinstance(directory, Path)
        wait_for(
            "ssh of the run",
            lambda: any(c.startswith("ssh ") for _, c in processes_mentioning(str(directory))),
        )
        for pid, command in processes_mentioning(str(directory)):
            if "playbook_wrapper" in command:
                os.kill(pid, signal.SIGKILL)  # nobody is left to clean up but the next worker
        worker.kill()
        assert directory.exists()
        processes.worker()
        assert processes_mentioning(str(directory)) == []
        assert not directory.exists(), f"{directory} outlived its killed worker"
        roots = [directory.parent, node.tmp, node.settings.data_dir]
        assert files_holding(roots, {"ssh key": key, "marker": marker}) == {}
    finally:
        unblock_ssh(host)
