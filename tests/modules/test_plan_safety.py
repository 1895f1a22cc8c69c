"""A plan only reads: every role passes the check module authors get, and the check
names what breaks the rule (the tasks the built-in roles had before it)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from infracms.modules.testing import (
    PlanSafetyError,
    check_module_plan_safe,
    check_role_plan_safe,
    plan_safety_problems,
)
from infracms.plugins import Registry
from infracms.runs.inventory import HOST_VARIABLES, namespaced
from tests.dummy_module.infracms_dummy import Motd
from tests.modules.samples import SAMPLES

# role constants that name programs or paths: an inventory variable must not reach them
CONSTANTS = {
    "postgresql": "postgresql_config_dir",
    "users": "users_sudoers_dir",
    "firewall": "firewall_nft",
    "ssh_hardening": "ssh_hardening_sshd",
    "backup": "backup_restic",
}


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_built_in_roles_are_plan_safe(registry: Registry, name: str) -> None:
    check_module_plan_safe(registry.modules[name])


def test_the_dummy_third_party_module_is_plan_safe() -> None:
    check_module_plan_safe(Motd)


@pytest.mark.parametrize("name", sorted(CONSTANTS))
def test_role_constants_are_role_vars_not_defaults(registry: Registry, name: str) -> None:
    """Role vars win over every inventory variable; defaults lose to all of them."""
    role = Path(registry.modules[name].role)
    defaults = yaml.safe_load((role / "defaults/main.yml").read_text()) or {}
    constants = yaml.safe_load((role / "vars/main.yml").read_text()) or {}
    assert defaults == {}
    assert CONSTANTS[name] in constants


def _role(tmp_path: Path, tasks: list[dict[str, Any]]) -> Path:
    role = tmp_path / "role"
    for part in ("tasks", "handlers"):
        (role / part).mkdir(parents=True)
    (role / "tasks/main.yml").write_text(yaml.safe_dump(tasks, sort_keys=False))
    (role / "handlers/main.yml").write_text("---\n")
    return role


BAD = [
    {
        "name": "Read with a command a variable names",
        "ansible.builtin.command": {"argv": "{{ postgresql_psql }}", "stdin": "SELECT 1"},
        "changed_when": False,
        "check_mode": False,
    },
    {
        "name": "Open the repository with its password",
        "ansible.builtin.command": {"argv": ["restic", "cat", "config"]},
        "environment": {"RESTIC_PASSWORD": "{{ backup.password }}"},
        "changed_when": False,
        "check_mode": False,
    },
    {
        "name": "Stand in for psql",
        "ansible.builtin.command": {"argv": "{{ ['true'] if ansible_check_mode else ['x'] }}"},
        "changed_when": True,
        "check_mode": False,
        "when": "x and not ansible_check_mode or y",
    },
    {
        "name": "Write in a plan",
        "block": [{"name": "A file", "ansible.builtin.copy": {"dest": "/x", "content": "x"}}],
        "check_mode": False,
    },
    {
        "name": "Options a value chooses",
        "ansible.builtin.command": {"argv": ["id", "{{ item }}"]},
        "changed_when": False,
        "check_mode": False,
    },
    {
        "name": "Run a host variable",
        "ansible.builtin.command": {"argv": ["sh", "-c", f"{{{{ {HOST_VARIABLES}.x }}}}"]},
        "changed_when": True,
        "when": "not ansible_check_mode",
    },
]

GOOD = [
    {
        "name": "A fixed read",
        "ansible.builtin.command": {"argv": ["id", "-Gn", "--", "{{ user }}"]},
        "changed_when": False,
        "check_mode": False,
    },
    {
        "name": "Only in an apply",
        "block": [
            {
                "name": "Change something with a secret",
                "ansible.builtin.command": {"argv": ["{{ tool }}", "init"]},
                "environment": {"PASSWORD": "{{ backup.password }}"},
                "changed_when": True,
                "check_mode": False,
            }
        ],
        "when": ["not ansible_check_mode", "x"],
    },
    {"name": "Write, skipped in check mode", "ansible.builtin.copy": {"dest": "/x"}},
]


def test_the_check_names_each_task_that_breaks_the_rule(tmp_path: Path) -> None:
    role = _role(tmp_path, BAD + GOOD)
    problems = plan_safety_problems(role, secret_fields={"password", "roles[].password"})
    named = {problem.split(": ")[1] for problem in problems}
    assert named == {task["name"] for task in BAD} - {"Write in a plan"} | {"A file"}
    assert any("RESTIC_PASSWORD" not in p and "secret setting password" in p for p in problems)
    with pytest.raises(PlanSafetyError, match="Read with a command a variable names"):
        check_role_plan_safe(role)


def test_the_good_tasks_pass(tmp_path: Path) -> None:
    check_role_plan_safe(_role(tmp_path, GOOD), secret_fields={"password"})


def test_free_form_host_variables_travel_under_one_name() -> None:
    attack = {"postgresql_psql": ["sh", "-c", "id > /root/x"], "_ansible_x": 1}
    assert namespaced(attack) == {HOST_VARIABLES: attack}
    assert namespaced({}) == {}
