"""Turn a run's hosts, credentials and settings into an ansible-runner private data dir.

    <dir>/inventory/hosts.json  hosts with connection settings, in groups that hold the
                                module settings they share (user values unsafe)
    <dir>/project/apply.yml     the generic playbook from playbooks/
    <dir>/roles/<module>        links to each module's role
    <dir>/known_hosts           the pinned host keys: nothing else is accepted
    <dir>/keys/<credential>     private keys other than the one given to ssh-agent (0600)
    <dir>/env/{envvars,settings,cmdline}

Host key checking stays on; a host without a pinned key is refused before anything runs.
The directory is created 0700 and removed by the executor after the run.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from infracms.runs.inventory import Group, Variables, inventory_json

PLAYBOOKS_DIR = Path(__file__).resolve().parents[2] / "playbooks"
WRAPPER = Path(__file__).with_name("playbook_wrapper.py")
SHAPE_GROUP = "infracms_shape_"


@dataclass(frozen=True)
class HostInput:
    """One host as a run sees it."""

    name: str
    address: str
    port: int
    user: str
    host_key: str | None
    credential: str | None  # a key into RenderInput.credentials
    variables: Mapping[str, Any]
    modules: tuple[str, ...]  # in dependency order
    settings: Mapping[str, Any]  # module name -> settings (secrets resolved); hosts
    # given the same object share it in the inventory (load_run_input shares equal ones)


@dataclass(frozen=True)
class CredentialInput:
    """A decrypted credential, for the private data dir only."""

    kind: str  # ssh_key or password
    secret: str = field(repr=False)


@dataclass(frozen=True)
class RenderInput:
    """Everything the renderer needs, already loaded and decrypted."""

    hosts: tuple[HostInput, ...]
    credentials: Mapping[str, CredentialInput]
    roles: Mapping[str, Path]  # module name -> role directory
    check: bool
    timeout_seconds: int
    playbook: str = "apply.yml"


@dataclass(frozen=True)
class RunSpec:
    """What the adapter runs: a rendered private data dir and how to run it."""

    private_data_dir: Path
    playbook: str
    check: bool
    timeout_seconds: int
    control_dir: Path
    ssh_key: str | None = field(default=None, repr=False)

    def cleanup(self) -> None:
        """Remove the ssh control sockets' directory (the data dir is the caller's)."""
        shutil.rmtree(self.control_dir, ignore_errors=True)


class HostKeyMissing(ValueError):
    """A host has no pinned key: it must be bootstrapped or given one first."""


def render(data: RenderInput, directory: Path) -> RunSpec:
    """Write the private data dir for `data` into `directory` (which must not exist)."""
    missing = sorted(h.name for h in data.hosts if not h.host_key)
    if missing:
        raise HostKeyMissing(
            f"no pinned host key for {', '.join(missing)}: bootstrap the host or set its key"
        )
    directory.mkdir(mode=0o700, parents=True)
    agent_key = _agent_key(data)
    _write(directory / "known_hosts", _known_hosts(data.hosts))
    _write(directory / "inventory" / "hosts.json", _inventory(data, directory, agent_key))
    _copy_playbooks(directory / "project")
    _link_roles(directory / "roles", data.roles)
    # ssh's control sockets need a short path (108 bytes): not under the data dir
    control_dir = Path(tempfile.mkdtemp(prefix="icms-cp-", dir="/tmp"))
    _write_env(directory, data, control_dir)
    return RunSpec(
        private_data_dir=directory,
        playbook=data.playbook,
        check=data.check,
        timeout_seconds=data.timeout_seconds,
        control_dir=control_dir,
        ssh_key=data.credentials[agent_key].secret if agent_key else None,
    )


def _agent_key(data: RenderInput) -> str | None:
    """The SSH key most hosts use goes to ansible-runner's ssh-agent; others are files."""
    counts: dict[str, int] = {}
    for host in data.hosts:
        if host.credential and data.credentials[host.credential].kind == "ssh_key":
            counts[host.credential] = counts.get(host.credential, 0) + 1
    return max(counts, key=lambda name: counts[name]) if counts else None


def known_hosts_line(host: HostInput) -> str:
    """The known_hosts line pinning `host`'s key."""
    where = host.address if host.port == 22 else f"[{host.address}]:{host.port}"
    return f"{where} {host.host_key}"


def _known_hosts(hosts: tuple[HostInput, ...]) -> str:
    return "".join(known_hosts_line(host) + "\n" for host in hosts)


def _inventory(data: RenderInput, directory: Path, agent_key: str | None) -> str:
    """Hosts given the same settings object (and the same modules) share a group whose
    variables hold the settings: written once per shape, not once per host (at 10,000
    hosts the inventory went from 17 MB to 1.4 MB)."""
    groups: dict[tuple[int, tuple[str, ...]], tuple[HostInput, dict[str, Variables]]] = {}
    for host in data.hosts:
        connection: dict[str, Any] = {"ansible_host": host.address, "ansible_user": host.user}
        connection.update(_credential_vars(data, directory, host, agent_key))
        key = (id(host.settings), host.modules)
        members = groups.setdefault(key, (host, {}))[1]
        members[host.name] = Variables(
            user={**host.variables, **connection}, trusted={"ansible_port": host.port}
        )
    return inventory_json(
        {
            f"{SHAPE_GROUP}{n}": Group(
                Variables(user=first.settings, trusted={"infracms_modules": list(first.modules)}),
                members,
            )
            for n, (first, members) in enumerate(groups.values())
        }
    )


def _credential_vars(
    data: RenderInput, directory: Path, host: HostInput, agent_key: str | None
) -> dict[str, Any]:
    if host.credential is None or host.credential == agent_key:
        return {}
    credential = data.credentials[host.credential]
    if credential.kind == "password":
        return {"ansible_password": credential.secret}
    path = directory / "keys" / host.credential
    if not path.exists():
        _write(
            path,
            credential.secret if credential.secret.endswith("\n") else credential.secret + "\n",
        )
    return {"ansible_ssh_private_key_file": str(path)}


def _copy_playbooks(target: Path) -> None:
    shutil.copytree(PLAYBOOKS_DIR, target)


def _link_roles(target: Path, roles: Mapping[str, Path]) -> None:
    target.mkdir(mode=0o700)
    for name, path in roles.items():
        (target / name).symlink_to(Path(path).resolve(), target_is_directory=True)


def _write_env(directory: Path, data: RenderInput, control_dir: Path) -> None:
    known_hosts = directory / "known_hosts"
    ssh_args = (
        f"-o UserKnownHostsFile={known_hosts} -o StrictHostKeyChecking=yes "
        "-o ControlMaster=auto -o ControlPersist=60s -o ServerAliveInterval=15"
    )
    envvars = {
        "ANSIBLE_HOST_KEY_CHECKING": "True",
        "ANSIBLE_SSH_ARGS": ssh_args,
        "ANSIBLE_PIPELINING": "True",
        "ANSIBLE_ROLES_PATH": str(directory / "roles"),
        "ANSIBLE_RETRY_FILES_ENABLED": "False",
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_FORCE_COLOR": "0",
        "ANSIBLE_LOCAL_TEMP": str(directory / "tmp"),
        # ssh masters belong to this run: the wrapper ends them with it
        "ANSIBLE_SSH_CONTROL_PATH_DIR": str(control_dir),
        "ANSIBLE_DISPLAY_SKIPPED_HOSTS": "True",
        "ANSIBLE_INVENTORY_ENABLED": "yaml",  # reads JSON too, with unsafe markers
    }
    _write(directory / "env" / "envvars", json.dumps(envvars))
    settings = {
        "suppress_ansible_output": True,
        "job_timeout": data.timeout_seconds,
        "pexpect_timeout": 0.5,
    }
    _write(directory / "env" / "settings", json.dumps(settings))
    # ansible-runner adds no playbook when it is given a binary (our wrapper): name it here
    cmdline = ("--diff --check " if data.check else "--diff ") + data.playbook
    _write(directory / "env" / "cmdline", cmdline)


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
