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

from infracms.runs.inventory import Group, Variables, inventory_json, mark_unsafe
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
        "address": "198.51.100.10",
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
    memo: dict[int, tuple[object, object]] = {}
    settings = {"message": ATTACK}
    assert mark_unsafe(settings, memo) is mark_unsafe(settings, memo)  # marked once


def test_private_data_dir_layout(tmp_path: Path) -> None:
    one, two = host("web1"), host("web2", port=2222, credential="other")
    inputs = data(one, two, check=True)
    spec = render(inputs, tmp_path / "run")
    root = spec.private_data_dir
    assert stat.S_IMODE(root.stat().st_mode) == 0o700
    known = (root / "known_hosts").read_text().splitlines()
    assert known == [f"198.51.100.10 {one.host_key}", f"[198.51.100.10]:2222 {two.host_key}"]
    assert spec.cmdline == "--diff --check apply.yml"
    assert spec.envvars["ANSIBLE_HOST_KEY_CHECKING"] == "True"
    assert "StrictHostKeyChecking=yes" in spec.envvars["ANSIBLE_SSH_ARGS"]
    assert spec.envvars["ANSIBLE_SSH_AGENT"] == "auto"  # keys go to the run's own agent
    assert spec.envvars["ANSIBLE_SSH_PASSWORD_MECHANISM"] == "sshpass"  # through a pipe
    # the interpreter-discovery warning does not open every run's output
    assert spec.envvars["ANSIBLE_PYTHON_INTERPRETER"] == "auto_silent"
    for inside in ("ANSIBLE_LOCAL_TEMP", "ANSIBLE_SSH_CONTROL_PATH_DIR", "TMPDIR"):
        assert Path(spec.envvars[inside]).parent == root, inside
    inventory = json.loads(spec.inventory)
    groups = inventory["all"]["children"]
    assert len(groups) == 2  # each host has its own settings object here
    web1 = next(g for g in groups.values() if "web1" in g["hosts"])
    key = inputs.credentials["deploy"].secret
    assert web1["vars"]["ansible_ssh_private_key"] == {"__ansible_unsafe": key}
    web2 = next(g for g in groups.values() if "web2" in g["hosts"])
    assert web2["vars"]["ansible_password"] == {"__ansible_unsafe": "pw-1234"}
    assert web2["hosts"]["web2"]["ansible_port"] == 2222
    assert web2["vars"]["infracms_modules"] == ["motd"]
    assert web2["vars"]["motd"] == {"message": {"__ansible_unsafe": ATTACK}, "lines": 2}
    assert (root / "roles" / "motd").is_symlink() and (root / "project" / "apply.yml").exists()
    assert not list((root / "inventory").iterdir())  # the adapter serves it through a pipe
    secret_line = key.splitlines()[1]
    for path in root.rglob("*"):
        if path.is_file() and not path.is_symlink():
            assert stat.S_IMODE(path.stat().st_mode) & 0o077 == 0 or "project" in path.parts, path
            text = path.read_text()
            assert secret_line not in text and "pw-1234" not in text, path


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
    local = {"ansible_connection": "local", "ansible_python_interpreter": sys.executable}
    inventory.write_text(
        inventory_json(
            {
                "infracms_shape_0": Group(
                    Variables(user={"motd": {"message": attack}}),
                    {
                        "localhost": Variables(
                            user={"note": attack, "flag": "no", "port": "22"}, trusted=local
                        )
                    },
                )
            }
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


def test_hosts_sharing_settings_share_a_group_and_keep_their_own_variables(
    tmp_path: Path,
) -> None:
    """What Ansible reads for each host (ansible-inventory's hostvars) is what the flat
    inventory of one entry per host gave: host variables, then connection, then module
    settings (a variable named like a module gives way), then trusted values."""
    shared = {"motd": {"message": ATTACK, "lines": 2}}
    hosts = (
        host("web1", settings=shared),
        host("web2", settings=shared, port=2222, credential="other"),
        host("web3", settings={"motd": {"message": ATTACK, "lines": 2}}),  # equal, not same
        host("db1", variables={"motd": "shadowed", "note": ATTACK, "n": 1}),
        host("bare", modules=(), settings={}, variables={"list": ["a", 2, {"b": "c"}]}),
    )
    inputs = data(*hosts)
    spec = render(inputs, tmp_path / "run")
    path = tmp_path / "hosts.json"
    path.write_text(spec.inventory)
    groups = json.loads(spec.inventory)["all"]["children"]
    members = sorted(sorted(group["hosts"]) for group in groups.values())
    assert members == [["bare"], ["db1"], ["web1"], ["web2"], ["web3"]]  # web2: a password
    listed = subprocess.run(
        [str(BIN / "ansible-inventory"), "-i", str(path), "--list"],
        capture_output=True,
        text=True,
        env={**os.environ, **spec.envvars, "PATH": f"{BIN}:{os.environ['PATH']}"},
        timeout=120,
        check=True,
    )
    hostvars = json.loads(listed.stdout)["_meta"]["hostvars"]
    for one in hosts:
        connection = {"ansible_host": one.address, "ansible_user": one.user}
        if one.credential == "other":
            connection["ansible_password"] = "pw-1234"
        else:
            connection["ansible_ssh_private_key"] = inputs.credentials["deploy"].secret
        flat = {**one.variables, **connection, **one.settings}
        trusted = {"ansible_port": one.port, "infracms_modules": list(one.modules)}
        assert hostvars[one.name] == {**mark_unsafe(flat), **trusted}, one.name


def test_every_user_string_in_the_inventory_is_written_unsafe(tmp_path: Path) -> None:
    hosts = (
        host("web1", variables={"note": ATTACK, "nested": {"l": [ATTACK, {"x": "y"}]}}),
        host("web2", credential="other", settings={"motd": {"message": ATTACK, "n": [1, "2"]}}),
    )
    spec = render(data(*hosts), tmp_path / "run")
    document = json.loads(spec.inventory)
    bare: list[str] = []

    def walk(value: object, path: str) -> None:
        if isinstance(value, str):
            bare.append(path)
        elif isinstance(value, dict):
            if set(value) == {"__ansible_unsafe"} and isinstance(value["__ansible_unsafe"], str):
                return
            for key, item in value.items():
                walk(item, f"{path}.{key}")
        elif isinstance(value, list):
            for n, item in enumerate(value):
                walk(item, f"{path}[{n}]")

    walk(document, "")
    assert all(".infracms_modules[" in path for path in bare), bare
    assert bare  # the module lists are there, and trusted
