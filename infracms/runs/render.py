"""Turn a run's hosts, credentials and settings into an ansible-runner private data dir.

    <dir>/inventory/            hosts.json is a named pipe the adapter serves the inventory
                                through (``RunSpec.inventory``, in memory): hosts with their
                                connection settings and credentials, in groups that hold
                                the module settings they share (user values unsafe)
    <dir>/project/apply.yml     the generic playbook from playbooks/
    <dir>/roles/<module>        links to each module's role
    <dir>/known_hosts           the pinned host keys: nothing else is accepted
    <dir>/tmp/, <dir>/cp/       Ansible's local temp (and ssh-agent) and ssh control sockets

No secret is written to a file: SSH keys reach ssh through the ssh-agent Ansible starts
for the run (``ansible_ssh_private_key``, added from memory), passwords reach ssh through
sshpass's pipe. Host key checking stays on; a host without a pinned key is refused
before anything runs. The directory is created 0700 (in memory: runs/workdir.py) and
removed by the executor after the run.
"""

from __future__ import annotations

import os
import shutil
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
    inventory: str = field(repr=False)  # holds secrets: never written to a file
    envvars: Mapping[str, str] = field(default_factory=dict)
    settings: Mapping[str, Any] = field(default_factory=dict)
    cmdline: str = ""


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
    _write(directory / "known_hosts", _known_hosts(data.hosts))
    for name in ("inventory", "tmp", "cp"):
        (directory / name).mkdir(mode=0o700)
    _copy_playbooks(directory / "project")
    _link_roles(directory / "roles", data.roles)
    # ansible-runner adds no playbook when it is given a binary (our wrapper): name it here
    cmdline = ("--diff --check " if data.check else "--diff ") + data.playbook
    return RunSpec(
        private_data_dir=directory,
        playbook=data.playbook,
        check=data.check,
        timeout_seconds=data.timeout_seconds,
        inventory=_inventory(data),
        envvars=_envvars(directory, data),
        settings={
            "suppress_ansible_output": True,
            "suppress_output_file": True,  # stdout may hold secrets: events are ours
            "job_timeout": data.timeout_seconds,
            "pexpect_timeout": 0.5,
        },
        cmdline=cmdline,
    )


def known_hosts_line(host: HostInput) -> str:
    """The known_hosts line pinning `host`'s key."""
    where = host.address if host.port == 22 else f"[{host.address}]:{host.port}"
    return f"{where} {host.host_key}"


def _known_hosts(hosts: tuple[HostInput, ...]) -> str:
    return "".join(known_hosts_line(host) + "\n" for host in hosts)


def _inventory(data: RenderInput) -> str:
    """Hosts given the same settings object (and the same modules and credential) share a
    group whose variables hold the settings and the credential: written once per shape,
    not once per host (at 10,000 hosts the inventory went from 17 MB to 1.4 MB)."""
    groups: dict[tuple[int, tuple[str, ...], str | None], tuple[HostInput, dict[str, Variables]]]
    groups = {}
    for host in data.hosts:
        key = (id(host.settings), host.modules, host.credential)
        members = groups.setdefault(key, (host, {}))[1]
        connection = {"ansible_host": host.address, "ansible_user": host.user}
        members[host.name] = Variables(
            user={**host.variables, **connection}, trusted={"ansible_port": host.port}
        )
    return inventory_json(
        {
            f"{SHAPE_GROUP}{n}": Group(
                Variables(
                    user={**first.settings, **_credential_vars(data, first.credential)},
                    trusted={"infracms_modules": list(first.modules)},
                ),
                members,
            )
            for n, (first, members) in enumerate(groups.values())
        }
    )


def _credential_vars(data: RenderInput, name: str | None) -> dict[str, Any]:
    """How Ansible gets a credential: a password for sshpass, a key for its ssh-agent."""
    if name is None:
        return {}
    credential = data.credentials[name]
    if credential.kind == "password":
        return {"ansible_password": credential.secret}
    secret = credential.secret if credential.secret.endswith("\n") else credential.secret + "\n"
    return {"ansible_ssh_private_key": secret}


def _copy_playbooks(target: Path) -> None:
    shutil.copytree(PLAYBOOKS_DIR, target)


def _link_roles(target: Path, roles: Mapping[str, Path]) -> None:
    target.mkdir(mode=0o700)
    for name, path in roles.items():
        (target / name).symlink_to(Path(path).resolve(), target_is_directory=True)


def _envvars(directory: Path, data: RenderInput) -> dict[str, str]:
    """Ansible's settings for the run, all of them: it gets nothing of the server's own."""
    known_hosts = directory / "known_hosts"
    ssh_args = (
        f"-o UserKnownHostsFile={known_hosts} -o StrictHostKeyChecking=yes "
        "-o ControlMaster=auto -o ControlPersist=60s -o ServerAliveInterval=15"
    )
    keys = any(data.credentials[h.credential].kind == "ssh_key" for h in data.hosts if h.credential)
    return {
        "ANSIBLE_HOST_KEY_CHECKING": "True",
        "ANSIBLE_SSH_ARGS": ssh_args,
        "ANSIBLE_PIPELINING": "True",
        "ANSIBLE_ROLES_PATH": str(directory / "roles"),
        "ANSIBLE_RETRY_FILES_ENABLED": "False",
        "ANSIBLE_NOCOLOR": "1",
        # ansible-core imports cryptography's DSA (deprecated) at start: the warning would
        # open every run's output; only that message is silenced
        "PYTHONWARNINGS": "ignore:DSA is deprecated",
        "ANSIBLE_FORCE_COLOR": "0",
        "ANSIBLE_LOCAL_TEMP": str(directory / "tmp"),
        "TMPDIR": str(directory / "tmp"),
        # ssh masters belong to this run: it ends them (their command line names this)
        "ANSIBLE_SSH_CONTROL_PATH_DIR": str(directory / "cp"),
        # an agent of the run's own holds its keys; passwords go through a pipe, not the
        # shared memory file ssh_askpass would use
        "ANSIBLE_SSH_AGENT": "auto" if keys else "none",
        "ANSIBLE_SSH_PASSWORD_MECHANISM": "sshpass",
        "ANSIBLE_DISPLAY_SKIPPED_HOSTS": "True",
        "ANSIBLE_INVENTORY_ENABLED": "yaml",  # reads JSON too, with unsafe markers
        # the interpreter is still discovered on each host, without the warning that
        # would otherwise open every run's output ("Host … is using the discovered
        # Python interpreter …"); a host variable that names one still wins
        "ANSIBLE_PYTHON_INTERPRETER": "auto_silent",
    }


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
