"""Secrets never touch disk in clear, and nothing of a run outlives it, even killed.

A real ``infracms serve`` whose environment holds INFRACMS_SECRET_KEY (the key that opens
every credential) and a marker variable runs plans on two real hosts: one reached with
an SSH key credential, one with a password credential, the first with a backup whose
password is a ``$credential``. While ansible-playbook runs (SSH to the hosts is held
up by a firewall rule in the host, so it waits with everything loaded), a poller reads
every file under the run directories, the node's data dir and its temporary dir: none
holds the key, the password, the resolved secret, the marker or the secret key, nor
does ansible-playbook's environment hold the marker. After the run no ssh of the run is
left. Then the server is killed with SIGKILL mid-run and started again: no file holds
a secret and no ssh, ssh-agent or ansible process of the dead run is alive.
"""

from __future__ import annotations

import base64
import os
import secrets as random
import signal
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from infracms.db import make_engine
from infracms.plugins import Plugins
from infracms.runs.workdir import root as run_root
from infracms.services.setup import initialise
from tests.conftest import make_settings
from tests.integration.node import BUILT_IN, ApiClient, Node, Server, served
from tests.security._ondisk_support import (
    MARKER_NAME,
    block_ssh,
    files_holding,
    polling,
    processes_mentioning,
    run_dirs_of,
    unblock_ssh,
    wait_for,
)
from tests.support.hosts import HostFactory, TestHost

pytestmark = [pytest.mark.security, pytest.mark.integration]
PASSWORD = "pw-" + random.token_hex(12)
RESTIC = "restic-" + random.token_hex(12)


@dataclass
class Setup:
    node: Node
    hosts: list[TestHost]
    secrets: dict[str, str]
    env: dict[str, str]
    workdir: Path


@pytest.fixture
def setup(tmp_path: Path, host_factory: HostFactory) -> Iterator[Setup]:
    secret_key = base64.b64encode(os.urandom(32)).decode()
    node = _node(tmp_path / "var", secret_key)
    keyed, passworded = host_factory(2)
    passworded.allow_password_login(PASSWORD)
    private_key = keyed.key_path.read_text()
    node.add_credential("pool-key", private_key, kind="ssh_key")
    node.add_credential("root-pw", PASSWORD)
    node.add_credential("restic", RESTIC)
    node.add_host("h1", keyed, credential="pool-key")
    node.add_host("h2", passworded, credential="root-pw")
    node.define(
        "backup-h1",
        "backup",
        "h1",
        {
            "repository": "/srv/restic",
            "password": {"$credential": "restic"},
            "paths": ["/etc"],
            "schedule": "*-*-* 02:30:00",
        },
    )
    marker = "marker-" + random.token_hex(12)
    found = {
        "ssh key": private_key,
        "password": PASSWORD,
        "restic": RESTIC,
        "marker": marker,
        "secret key": secret_key,
    }
    env = {MARKER_NAME: marker, "INFRACMS_SECRET_KEY": secret_key}
    yield Setup(node, [keyed, passworded], found, env, tmp_path / "served")
    for host in (keyed, passworded):
        unblock_ssh(host)


def _node(data_dir: Path, secret_key: str) -> Node:
    """A node whose keyring is INFRACMS_SECRET_KEY, with the built-in modules enabled."""
    from sqlmodel import Session  # noqa: F401 (the services below open their own)

    from infracms.db import session_scope
    from infracms.services import modules
    from tests.helpers import ADMIN, make_org

    settings = make_settings(data_dir, log_level="debug", secret_key=secret_key)
    engine = make_engine(settings)
    initialise(settings, engine)
    plugins = Plugins.load()
    make_org(engine, "clinic")
    with session_scope(engine, write=True) as session:
        for name in BUILT_IN:
            modules.set_available(
                session=session, actor=ADMIN, plugins=plugins, name=name, available=True
            )
            modules.enable_module(
                session=session, actor=ADMIN, plugins=plugins, organisation="clinic", name=name
            )
    return Node(settings=settings, engine=engine, plugins=plugins)


def _roots(s: Setup) -> list[Path]:
    from infracms.runs import workdir

    old_places = [*Path("/tmp").glob("icms-cp-*"), *Path("/tmp").glob("infracms-run-*")]
    return [workdir.root(), s.node.settings.data_dir, s.workdir / "tmp", *old_places]


def _playbook_running(server: Server) -> list[Path]:
    """The server's run directories in which ansible-playbook runs (mid-run)."""
    return [
        d
        for d in run_dirs_of(server.process.pid)
        if any("ansible-playbook" in c for _, c in processes_mentioning(str(d)))
    ]


def _ssh_started(directory: Path) -> bool:
    """ssh of the run has been started (the keys are in its agent by then)."""
    return any(c.startswith("ssh ") for _, c in processes_mentioning(str(directory)))


def test_no_secret_in_any_file_during_and_after_a_run(setup: Setup) -> None:
    node = setup.node
    for host in setup.hosts:
        block_ssh(host)
    with served(node, setup.workdir, env=setup.env) as server:
        client = ApiClient(node, server)
        with polling(_roots(setup), setup.secrets) as poller:
            run_id = client.start_run("plan")
            (directory,) = wait_for("ansible-playbook to run", lambda: _playbook_running(server))
            assert isinstance(directory, Path)
            wait_for("ssh to start", lambda: _ssh_started(directory))
            playbooks = [p for p, c in processes_mentioning(str(directory)) if "playbook" in c]
            environ = b"".join(Path(f"/proc/{p}/environ").read_bytes() for p in playbooks)
            rounds = poller.rounds
            wait_for("the poller to read the run's files twice", lambda: poller.rounds > rounds + 2)
            for host in setup.hosts:
                unblock_ssh(host)
            _wait_finished(client, run_id)
        assert setup.secrets["marker"].encode() not in environ
        assert setup.secrets["secret key"].encode() not in environ
        assert poller.commands, "the poller never saw ansible-runner's artifacts/*/command"
        staged = {path: names for path, names in poller.found.items() if _staging(path)}
        elsewhere = {path: names for path, names in poller.found.items() if path not in staged}
        assert elsewhere == {}, f"secrets in files during the run: {elsewhere}"
        # the one known exception: a setting's secret that a task writes to a file on the
        # host is rendered by Ansible into its local temp (the run's tmpfs dir) for the
        # transfer, and removed after it; never the key, a password, the marker, the key
        assert {name for names in staged.values() for name in names} <= {"restic"}, staged
        # (d) the run's ssh masters and agent ended with it; its directory is gone
        assert processes_mentioning(str(directory)) == []
        assert not directory.exists()
        assert files_holding(_roots(setup), setup.secrets) == {}
        client.close()


@pytest.mark.parametrize("supervisor_too", [False, True], ids=["server", "server+supervisor"])
def test_server_killed_mid_run_leaves_no_secret_and_no_process(
    setup: Setup, supervisor_too: bool
) -> None:
    """Killed alone, the server leaves its run to the wrapper's supervisor; killed with
    it (the machine's OOM killer, a container stopped), to the next server's sweep."""
    node = setup.node
    for host in setup.hosts:
        block_ssh(host)
    with served(node, setup.workdir, env=setup.env) as server:
        client = ApiClient(node, server)
        client.start_run("plan")
        (directory,) = wait_for("ansible-playbook to run", lambda: _playbook_running(server))
        assert isinstance(directory, Path)
        wait_for("ssh to start", lambda: _ssh_started(directory))
        client.close()
        if supervisor_too:  # first: it would clean up at once after the server's death
            for pid, command in processes_mentioning(str(directory)):
                if "playbook_wrapper" in command:
                    os.kill(pid, signal.SIGKILL)
        server.process.send_signal(signal.SIGKILL)
        server.process.wait(timeout=30)
        if supervisor_too:
            assert directory.exists()  # nobody of that run is left to remove it
    with served(node, setup.workdir, env=setup.env):
        # the supervisor ends the dead server's run, the new server's sweep the rest
        wait_for(
            "the dead run's processes to end",
            lambda: processes_mentioning(str(directory)) == [],
            timeout=30,
        )
        assert not directory.exists(), f"{directory} outlived its killed server"
        assert files_holding(_roots(setup), setup.secrets) == {}


def _staging(path: str) -> bool:
    """Whether `path` is in Ansible's local temp of a run (where it stages transfers)."""
    return "/tmp/ansible-local-" in path and Path(path).is_relative_to(run_root())


def _wait_finished(client: ApiClient, run_id: uuid.UUID) -> None:
    """Wait for the run's end; both hosts were reached (the key through the agent, the
    password through sshpass)."""

    def finished() -> dict[str, object] | None:
        body: dict[str, object] = client.http.get(f"/orgs/{client.org}/runs/{run_id}").json()
        return None if body["status"] in ("queued", "running") else body

    body = wait_for("the run to finish", finished, timeout=300)
    assert isinstance(body, dict)
    assert body["status"] == "succeeded", body.get("error")
