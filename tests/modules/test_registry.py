"""All eight built-in modules load, declare themselves fully, and ship standard roles."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pluggy
import pytest
import yaml

from infracms.modules import BUILTIN_MODULES
from infracms.modules.targets import HostFacts, Target
from infracms.plugins import Registry
from tests.modules.ansible import render, role_play, run_playbook
from tests.modules.samples import SAMPLES, role_variables

NAMES = sorted(SAMPLES)
ROLE_FILES = ("tasks/main.yml", "handlers/main.yml", "defaults/main.yml", "meta/main.yml")
# Tasks that must say when they change something (they always would, otherwise).
COMMANDS = ("ansible.builtin.command", "ansible.builtin.shell")


def _tasks(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every task, blocks opened."""
    found: list[dict[str, Any]] = []
    for item in items or []:
        found.extend(_tasks(item["block"]) if "block" in item else [item])
    return found


def _action(task: dict[str, Any]) -> str:
    keywords = {
        "name",
        "when",
        "loop",
        "loop_control",
        "register",
        "notify",
        "vars",
        "no_log",
        "changed_when",
        "failed_when",
        "check_mode",
        "environment",
        "become",
        "listen",
        "ignore_errors",
        "tags",
    }
    actions = [key for key in task if key not in keywords]
    assert len(actions) == 1, f"task {task.get('name')!r} has actions {actions}"
    return actions[0]


def test_all_eight_load_without_problems(registry: Registry) -> None:
    assert sorted(registry.modules) == NAMES, registry.problems
    assert registry.problems == []
    assert len(BUILTIN_MODULES) == len(NAMES)


@pytest.mark.parametrize("name", NAMES)
def test_declaration(registry: Registry, name: str) -> None:
    module = registry.modules[name]
    module.check_declaration()
    assert module.version == "1.0.0"
    assert module.title and module.description.endswith(".")


@pytest.mark.parametrize("name", NAMES)
def test_every_field_has_a_description(registry: Registry, name: str) -> None:
    schema = registry.modules[name].settings_schema()
    models = [schema, *schema.get("$defs", {}).values()]
    missing = [
        f"{model['title']}.{field}"
        for model in models
        for field, spec in model.get("properties", {}).items()
        if not spec.get("description")
    ]
    assert missing == [], f"fields without a description: {missing}"


@pytest.mark.parametrize("name", NAMES)
def test_sample_settings_are_valid(registry: Registry, name: str) -> None:
    registry.modules[name].settings.model_validate(SAMPLES[name])


def test_nginx_site_requires_base(registry: Registry) -> None:
    (dependency,) = registry.modules["nginx_site"].requires
    assert dependency.name == "base"
    assert dependency.allows(registry.modules["base"].version)
    assert not dependency.allows("2.0.0")


def test_only_nginx_site_is_multiple(registry: Registry) -> None:
    assert [name for name in NAMES if registry.modules[name].multiple] == ["nginx_site"]


def test_built_in_plugins_implement_only_the_register_hook(
    plugin_manager: pluggy.PluginManager,
) -> None:
    """What a module does lives on its class: its plugin only declares it."""
    hooks = {
        caller.name
        for plugin in plugin_manager.get_plugins()
        for caller in plugin_manager.get_hookcallers(plugin) or []
    }
    assert hooks == {"register_modules"}


@pytest.mark.parametrize("name", NAMES)
def test_methods_answer_for_their_module(registry: Registry, name: str) -> None:
    """Each module's methods answer with their types: no problems for its sample
    settings, plain variables, no veto, offerings found by name."""
    module = registry.modules[name]
    settings = module.settings.model_validate(SAMPLES[name])
    target = Target(kind="host", name="web1", organisation="coop", hosts=("web1",))
    assert module.validate_settings(settings=settings, target=target) == {}
    host = HostFacts(
        name="web1", ssh_user="admin", ssh_port=2222, data_paths=("/var/lib/radicale/collections",)
    )
    extra = module.extra_variables(settings=settings.model_dump(mode="json"), host=host)
    assert isinstance(extra, dict) and bool(extra) == module.derives_variables()
    assert module.refuse_disable(organisation="coop", definitions=[]) is None
    for offering in module.offerings:
        assert module.offering(offering.name) is offering
    assert module.offering("nothing-of-this-name") is None


def test_only_backup_firewall_and_ssh_hardening_derive_variables(registry: Registry) -> None:
    deriving = [name for name in NAMES if registry.modules[name].derives_variables()]
    assert deriving == ["backup", "firewall", "ssh_hardening"]


@pytest.mark.parametrize("name", NAMES)
def test_role_layout(registry: Registry, name: str) -> None:
    role = Path(registry.modules[name].role)
    for part in ROLE_FILES:
        assert (role / part).is_file(), f"{name} role has no {part}"
    meta = yaml.safe_load((role / "meta/main.yml").read_text())
    assert meta["dependencies"] == []
    assert meta["galaxy_info"]["platforms"] == [{"name": "Debian", "versions": ["bookworm"]}]
    defaults = yaml.safe_load((role / "defaults/main.yml").read_text()) or {}
    assert all(key.startswith(f"{name}_") for key in defaults), defaults


@pytest.mark.parametrize("name", NAMES)
def test_role_tasks_follow_the_conventions(registry: Registry, name: str) -> None:
    """Fully-qualified actions, named tasks, and commands that say when they change."""
    role = Path(registry.modules[name].role)
    files = [*sorted((role / "tasks").glob("*.yml")), role / "handlers/main.yml"]
    tasks = [task for path in files for task in _tasks(yaml.safe_load(path.read_text()))]
    for task in tasks:
        action = _action(task)
        assert task.get("name"), f"{name}: a task without a name: {task}"
        assert action.startswith("ansible.builtin."), f"{name}: {task['name']}: {action}"
        if action in COMMANDS:
            assert "changed_when" in task or "creates" in task[action], task["name"]
        assert action != "ansible.builtin.shell", f"{name}: {task['name']} uses a shell"


@pytest.mark.parametrize("name", NAMES)
def test_role_passes_syntax_check(registry: Registry, name: str, tmp_path: Path) -> None:
    module = registry.modules[name]
    run = run_playbook(
        role_play(Path(module.role)), role_variables(module), tmp_path, "--syntax-check"
    )
    run.check()


def test_a_typed_template_lands_literally(registry: Registry, tmp_path: Path) -> None:
    """User values are data: a Jinja expression in one reaches the file as typed."""
    module = registry.modules["backup"]
    settings = SAMPLES["backup"] | {"exclude": ["{{ lookup('pipe', 'id') }}", "{% raw %}x"]}
    variables = role_variables(module, settings)
    text = render(Path(module.role), "excludes.j2", variables, tmp_path)
    lines = text.splitlines()
    assert lines[1:] == ["{{ lookup('pipe', 'id') }}", "{% raw %}x"]


def test_ansible_playbook_is_the_venv_one() -> None:
    from tests.modules.ansible import ANSIBLE_PLAYBOOK

    done = subprocess.run([str(ANSIBLE_PLAYBOOK), "--version"], capture_output=True, text=True)
    assert "core 2.19" in done.stdout, done.stdout


def test_user_strings_keep_their_type(tmp_path: Path) -> None:
    """A typed "no", "22" or "null" reaches the role as that string."""
    values = ["no", "22", "null", "{{ 7 * 6 }}"]
    task = {
        "ansible.builtin.copy": {
            "content": "{{ values | map('type_debug') | join(' ') }}\n{{ values | join(' ') }}",
            "dest": str(tmp_path / "out"),
        }
    }
    run_playbook(
        [{"hosts": "all", "gather_facts": False, "tasks": [task]}], {"values": values}, tmp_path
    ).check()
    assert (tmp_path / "out").read_text().splitlines() == [
        "str str str str",
        "no 22 null {{ 7 * 6 }}",
    ]
