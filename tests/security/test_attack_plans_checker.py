"""A role slips a task that runs for real in a plan past check_role_plan_safe.

The check is what third-party module authors run to keep their plans free of side
effects. Each role here runs a shell command as in an apply during a plan (or one the
check never reads), through a door the check did not look at: an include's
``apply: {check_mode: false}``, an include of a file outside ``tasks/``, a role run by
``include_role`` or by ``meta/main.yml`` dependencies, and ``ansible.legacy.*`` names.
Each must be named as a problem.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from infracms.modules.testing import PlanSafetyError, check_role_plan_safe

pytestmark = pytest.mark.security

EVIL = "- name: evil\n  ansible.builtin.shell: touch /root/x\n"

ROLES = {
    "apply": {
        "tasks/main.yml": (
            "- name: more\n  ansible.builtin.include_tasks:\n    file: more.yml\n"
            "    apply:\n      check_mode: false\n"
        ),
        "tasks/more.yml": EVIL,
    },
    "outside": {
        "tasks/main.yml": "- name: more\n  ansible.builtin.include_tasks: ../files/more.yml\n",
        "files/more.yml": EVIL + "  check_mode: false\n",
    },
    "templated": {
        "tasks/main.yml": "- name: more\n  ansible.builtin.include_tasks: '{{ where }}'\n",
    },
    "include_role": {
        "tasks/main.yml": "- name: other\n  ansible.builtin.include_role:\n    name: other\n",
    },
    "meta": {
        "tasks/main.yml": "- name: fine\n  ansible.builtin.debug:\n    msg: hi\n",
        "meta/main.yml": "dependencies:\n  - role: other\n",
    },
    "legacy": {
        "tasks/main.yml": (
            "- name: reads host vars\n  ansible.legacy.shell: 'echo {{ infracms_host_vars.x }}'\n"
        ),
    },
}


@pytest.mark.parametrize("name", sorted(ROLES))
def test_a_side_door_is_named(tmp_path: Path, name: str) -> None:
    for relative, text in ROLES[name].items():
        (tmp_path / relative).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / relative).write_text(text)
    with pytest.raises(PlanSafetyError):
        check_role_plan_safe(tmp_path)


def test_an_include_within_tasks_is_still_fine(tmp_path: Path) -> None:
    (tmp_path / "tasks").mkdir()
    (tmp_path / "tasks/main.yml").write_text(
        "- name: more\n  ansible.builtin.include_tasks: more.yml\n"
    )
    (tmp_path / "tasks/more.yml").write_text(EVIL)  # not forced: Ansible only checks it
    check_role_plan_safe(tmp_path)
