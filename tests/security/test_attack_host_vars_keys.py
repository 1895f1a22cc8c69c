"""An editor writes Jinja in the *keys* of a nested host variable (the inventory marks
only values unsafe: JSON keys cannot carry the marker), hoping a role that walks
``infracms_host_vars`` evaluates it on the controller. Held (a regression test, passes
today): ansible-core 2.19 neither templates keys nor trusts inventory strings, so a role
that loops over the mapping, or copies it with set_fact, runs nothing. Real Ansible, a
local connection; no host."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from infracms.runs.inventory import Group, Variables, inventory_json, namespaced

pytestmark = pytest.mark.security

PLAYBOOK = """
- hosts: all
  gather_facts: false
  tasks:
    - ansible.builtin.debug: msg="{{ item.key }} {{ item.value }}"
      loop: "{{ infracms_host_vars.x | dict2items }}"
    - ansible.builtin.debug: msg="{{ infracms_host_vars.y }}"
    - ansible.builtin.set_fact: copied="{{ infracms_host_vars.x }}"
    - ansible.builtin.debug: msg="{{ copied | to_json }}"
"""


def test_jinja_in_host_variable_keys_and_values_is_not_evaluated(tmp_path: Path) -> None:
    key_marker, value_marker = tmp_path / "from-key", tmp_path / "from-value"
    variables = {
        "x": {f"{{{{ lookup('pipe', 'touch {key_marker}') }}}}": "v"},
        "y": f"{{{{ lookup('pipe', 'touch {value_marker}') }}}}",
    }
    local = Variables(user=namespaced(variables), trusted={"ansible_connection": "local"})
    inventory = tmp_path / "inventory.json"
    inventory.write_text(inventory_json({"g": Group(Variables(), {"localhost": local})}))
    (tmp_path / "play.yml").write_text(PLAYBOOK)
    done = subprocess.run(
        [
            str(Path(sys.executable).with_name("ansible-playbook")),
            "-i",
            str(inventory),
            str(tmp_path / "play.yml"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "ANSIBLE_LOCAL_TEMP": str(tmp_path / "tmp")},
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert not key_marker.exists() and not value_marker.exists()
    assert "lookup('pipe'" in done.stdout  # shown as text, never run
