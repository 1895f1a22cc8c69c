"""The renderer: unsafe user values, pinned host keys, private files, and Ansible reading it."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from infracms.runs.inventory import inventory_json, mark_unsafe
from infracms.runs.render import CredentialInput, HostInput, HostKeyMissing, RenderInput, render

ATTACK = "{{ lookup('pipe', 'id') }}"
BIN = Path(sys.executable).parent


def host_key() -> str:
    public = Ed25519PrivateKey.generate().public_key()
    return public.public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
    ).decode()


def host(name: str = "web1", **changes: object) -> HostInput:
    values: dict[str, object] = {
        "name": name,
        "address": "192.0.2.10",
        "port": 22,
        "user": "root",
        "host_key": host_key(),
        "credential": "deploy",
        "variables": {"note": ATTACK},
        "modules": ("motd",),
        "settings": {"motd": {"message": ATTACK, "lines": 2}},
    }
    values.update(changes)
    return HostInput(**values)  # type: ignore[arg-type]


def data(*hosts: HostInput, check: bool = False) -> RenderInput:
    key = (
        Ed25519PrivateKey.generate()
        .private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.OpenSSH,
            serialization.NoEncryption(),
        )
        .decode()
    )
    role = Path(__file__).parents[1] / "dummy_module" / "infracms_dummy" / "role"
    return RenderInput(
        hosts=hosts,
        credentials={
            "deploy": CredentialInput("ssh_key", key),
            "other": CredentialInput("password", "pw-1234"),
        },
        roles={"motd": role},
        check=check,
        timeout_seconds=60,
    )


def test_every_user_string_is_unsafe() -> None:
    marked = mark_unsafe({"a": ATTACK, "n": 3, "l": [ATTACK, True, None], "d": {"x": "no"}})
    assert marked == {
        "a": {"__ansible_unsafe": ATTACK},
        "n": 3,
        "l": [{"__ansible_unsafe": ATTACK}, True, None],
        "d": {"x": {"__ansible_unsafe": "no"}},
    }
    with pytest.raises(TypeError):
        mark_unsafe({"a": object()})


def test_private_data_dir_layout(tmp_path: Path) -> None:
    one, two = host("web1"), host("web2", port=2222, credential="other")
    spec = render(data(one, two, check=True), tmp_path / "run")
    root = spec.private_data_dir
    assert stat.S_IMODE(root.stat().st_mode) == 0o700
    known = (root / "known_hosts").read_text().splitlines()
    assert known == [f"192.0.2.10 {one.host_key}", f"[192.0.2.10]:2222 {two.host_key}"]
    assert (root / "env" / "cmdline").read_text() == "--diff --check apply.yml"
    envvars = json.loads((root / "env" / "envvars").read_text())
    assert envvars["ANSIBLE_HOST_KEY_CHECKING"] == "True"
    assert "StrictHostKeyChecking=yes" in envvars["ANSIBLE_SSH_ARGS"]
    assert (
        spec.ssh_key is not None and "PRIVATE KEY" in spec.ssh_key
    )  # web1's key goes to ssh-agent
    inventory = json.loads((root / "inventory" / "hosts.json").read_text())
    web2 = inventory["all"]["hosts"]["web2"]
    assert web2["ansible_password"] == {"__ansible_unsafe": "pw-1234"}
    assert web2["ansible_port"] == 2222 and web2["infracms_modules"] == ["motd"]
    assert (root / "roles" / "motd").is_symlink() and (root / "project" / "apply.yml").exists()
    for path in root.rglob("*"):
        if path.is_file() and not path.is_symlink():
            assert stat.S_IMODE(path.stat().st_mode) & 0o077 == 0 or "project" in path.parts, path


def test_a_host_without_a_pinned_key_is_refused(tmp_path: Path) -> None:
    with pytest.raises(HostKeyMissing, match="web2"):
        render(data(host("web1"), host("web2", host_key=None)), tmp_path / "run")
    assert not (tmp_path / "run").exists()


def test_ansible_reads_user_values_as_literal_text(tmp_path: Path) -> None:
    """The real thing: ansible-playbook writes a templated-looking setting verbatim, runs
    nothing, and keeps strings that look like other types as strings."""
    inventory = tmp_path / "hosts.json"
    marker = tmp_path / "pwned"
    attack = "{{ lookup('pipe', 'touch " + str(marker) + "') }}"
    inventory.write_text(
        inventory_json(
            {
                "localhost": {
                    "motd": {"message": attack},
                    "note": attack,
                    "flag": "no",
                    "port": "22",
                }
            },
            {
                "localhost": {
                    "ansible_connection": "local",
                    "ansible_python_interpreter": sys.executable,
                }
            },
        )
    )
    out = tmp_path / "out.txt"
    playbook = tmp_path / "play.yml"
    playbook.write_text(
        "- hosts: all\n  gather_facts: false\n  tasks:\n"
        f'    - ansible.builtin.copy:\n        dest: {out}\n        content: "{{{{ motd.message }}}}|{{{{ note }}}}|{{{{ flag | type_debug }}}}|{{{{ port | type_debug }}}}"\n'
    )
    env = {**os.environ, "PATH": f"{BIN}:{os.environ['PATH']}", "ANSIBLE_NOCOLOR": "1"}
    result = subprocess.run(
        [str(BIN / "ansible-playbook"), "-i", str(inventory), str(playbook)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert out.read_text() == f"{attack}|{attack}|str|str"
    assert not marker.exists()
