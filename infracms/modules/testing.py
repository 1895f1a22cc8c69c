"""A check for module authors: a role's plan only reads.

A plan runs the role with ``--check``: Ansible then changes nothing, except in tasks
that say ``check_mode: false``, which run as in an apply. Such a task must either not
run in a plan (a ``when`` item that is exactly ``not ansible_check_mode``, on the task
or an enclosing block) or be a read that no value can turn into something else:

- ``ansible.builtin.command`` with an ``argv`` list whose program is written out (no
  template), every templated argument after a literal ``--``, a ``stdin`` without a
  template, no ``environment``, ``changed_when: false`` and no ``delegate_to``;
- or an action that only reads or reports (`READ_ONLY_ACTIONS`).

It must not name a secret setting either: a plan uses no secret on the host. And no
command of a role, in a plan or not, reads the free-form host variables.

    from infracms.modules.testing import check_module_plan_safe
    check_module_plan_safe(MyModule)  # raises PlanSafetyError naming each task

The check reads the YAML; it proves nothing about what a program does with what it is
given, so keep reads to programs that only read.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from infracms.modules.contract import Module
from infracms.runs.inventory import HOST_VARIABLES

GUARD = "not ansible_check_mode"
PREFIXES = ("", "ansible.builtin.", "ansible.legacy.")  # ansible.legacy.X is X too
COMMAND_ACTIONS = frozenset(f"{prefix}command" for prefix in PREFIXES)
RUNNING_ACTIONS = frozenset(
    {f"{prefix}{name}" for prefix in PREFIXES for name in
     ("command", "shell", "raw", "script", "expect")}
)  # fmt: skip
INCLUDE_ACTIONS = frozenset(
    f"{prefix}{name}" for prefix in PREFIXES for name in ("include_tasks", "import_tasks")
)
ROLE_ACTIONS = frozenset(
    f"{prefix}{name}" for prefix in PREFIXES for name in ("include_role", "import_role")
)
READ_ONLY_ACTIONS = frozenset(
    {f"{prefix}{name}" for prefix in PREFIXES for name in
     ("assert", "debug", "fail", "set_fact", "stat", "getent", "slurp", "find",
      "package_facts", "service_facts", "setup", "meta")}
)  # fmt: skip
BLOCK_KEYS = ("block", "rescue", "always")
TASK_KEYWORDS = frozenset(
    {
        "name", "when", "loop", "loop_control", "register", "changed_when", "failed_when",
        "check_mode", "no_log", "vars", "notify", "become", "become_user", "become_method",
        "environment", "delegate_to", "delegate_facts", "run_once", "tags", "listen",
        "ignore_errors", "ignore_unreachable", "until", "retries", "delay", "diff",
        "args", "with_items", "with_dict", "with_list", "local_action", "throttle",
        "any_errors_fatal", "timeout", "module_defaults", "collections", "connection",
        "debugger", "async", "poll", "remote_user", "port", "action",
    }
)  # fmt: skip


class PlanSafetyError(AssertionError):
    """A role has tasks that could change a host, or use a secret, in a plan."""


@dataclass(frozen=True)
class _Context:
    """What a task inherits from its blocks."""

    forced: bool = False
    guarded: bool = False


def check_module_plan_safe(module: type[Module]) -> None:
    """Raise PlanSafetyError naming every task of `module`'s role that breaks the rule."""
    check_role_plan_safe(Path(module.role), secret_fields=module.secret_fields())


def check_role_plan_safe(role: Path, *, secret_fields: Iterable[str] = ()) -> None:
    """Raise PlanSafetyError naming every task of the role at `role` that breaks the rule;
    `secret_fields` are the settings paths that hold secrets (Module.secret_fields())."""
    problems = plan_safety_problems(role, secret_fields=secret_fields)
    if problems:
        raise PlanSafetyError(
            f"role {role} is not plan-safe:\n" + "\n".join(f"- {p}" for p in problems)
        )


def plan_safety_problems(role: Path, *, secret_fields: Iterable[str] = ()) -> list[str]:
    """Each problem as "file: task: what is wrong"."""
    secrets = {path.replace("[]", "").split(".")[-1] for path in secret_fields}
    problems = _dependency_problems(role)
    files = [f for part in ("tasks", "handlers") for f in (role / part).rglob("*.y*ml")]
    for path in sorted(files):
        where = path.relative_to(role)
        for task, context in _tasks(yaml.safe_load(path.read_text()) or [], _Context()):
            for problem in _task_problems(task, context, secrets):
                problems.append(f"{where}: {task.get('name', '(unnamed)')}: {problem}")
    return problems


def _tasks(items: Any, context: _Context) -> Iterator[tuple[dict[str, Any], _Context]]:
    for item in items if isinstance(items, list) else []:
        if not isinstance(item, Mapping):
            continue
        inner = _Context(
            forced=_forced(item, context.forced), guarded=context.guarded or _guarded(item)
        )
        if any(key in item for key in BLOCK_KEYS):
            for key in BLOCK_KEYS:
                yield from _tasks(item.get(key), inner)
        else:
            yield dict(item), inner


def _forced(task: Mapping[str, Any], inherited: bool) -> bool:
    """Whether the task runs for real in check mode: anything but true (or unset,
    inheriting) could be false when it runs. An include's `apply: {check_mode: false}`
    forces the tasks it includes, so it counts as the include's own."""
    arguments = [task.get(key) for key in (*INCLUDE_ACTIONS, *ROLE_ACTIONS, "args")]
    for given in arguments:
        applied = given.get("apply") if isinstance(given, Mapping) else None
        if isinstance(applied, Mapping) and applied.get("check_mode", True) is not True:
            return True
    if "check_mode" not in task:
        return inherited
    return task["check_mode"] is not True


def _dependency_problems(role: Path) -> list[str]:
    """Roles that meta/main.yml makes run first are not read by this check."""
    meta = next((p for p in (role / "meta").glob("main.y*ml")), None)
    found = yaml.safe_load(meta.read_text()) if meta else None
    if isinstance(found, Mapping) and found.get("dependencies"):
        return ["meta/main.yml: dependencies run roles this check does not read"]
    return []


def _include_problems(task: Mapping[str, Any], action: str) -> list[str]:
    """An include must name a file of the role's tasks/ (the files this check reads)."""
    if action in ROLE_ACTIONS:
        return [f"{action} runs a role this check does not read: check it on its own"]
    if action not in INCLUDE_ACTIONS:
        return []
    given = task[action] if action in task else task.get("args", {})
    target = given.get("file") if isinstance(given, Mapping) else given
    if not isinstance(target, str) or _templated(target):
        return [f"{action} of a file the check cannot name: write the file name out"]
    if target.startswith("/") or ".." in Path(target).parts:
        return [f"{action} of {target!r}, outside the role's tasks/ that this check reads"]
    return []


def _guarded(task: Mapping[str, Any]) -> bool:
    when = task.get("when")
    items = when if isinstance(when, list) else [when]
    return any(isinstance(item, str) and item.strip() == GUARD for item in items)


def _action(task: Mapping[str, Any]) -> str:
    if "local_action" in task:
        return "local_action"
    if "action" in task:
        action = task["action"]
        return str(action.get("module") if isinstance(action, Mapping) else action).split()[0]
    return next((str(key) for key in task if key not in TASK_KEYWORDS), "")


def _task_problems(task: dict[str, Any], context: _Context, secrets: set[str]) -> list[str]:
    action = _action(task)
    problems = _include_problems(task, action)
    if action in RUNNING_ACTIONS and HOST_VARIABLES in _text(task):
        problems.append(f"a command reads the free-form host variables ({HOST_VARIABLES})")
    if not context.forced or context.guarded:
        return problems
    if action in COMMAND_ACTIONS:
        problems.extend(_command_problems(task, action))
    elif action not in READ_ONLY_ACTIONS:
        problems.append(
            f"{action or 'an include'} with check_mode: false runs in a plan: "
            f"add `when: [{GUARD}, …]`"
        )
    if "delegate_to" in task or "local_action" in task:
        problems.append("a check_mode: false task delegated elsewhere runs in a plan")
    named = sorted(s for s in secrets if f".{s}" in _text(task) or f"['{s}']" in _text(task))
    if named:
        problems.append(
            f"uses the secret setting {', '.join(named)} in a plan: add `when: [{GUARD}, …]`"
        )
    return problems


def _command_problems(task: Mapping[str, Any], action: str) -> list[str]:
    """A command that runs in a plan must be a fixed read."""
    arguments = task[action] if isinstance(task[action], Mapping) else {}
    argv = arguments.get("argv")
    problems = []
    if isinstance(argv, str) and _templated(argv):
        problems.append(f"runs in a plan a command a value chooses ({argv!r})")
    elif not isinstance(argv, list) or not argv:
        problems.append("runs in a plan without an argv list: write the command as argv")
    elif _templated(argv[0]):
        problems.append(f"runs in a plan a program a value chooses ({argv[0]!r})")
    else:
        after = argv.index("--") if "--" in argv else len(argv)
        early = [a for a in argv[1:after] if _templated(a)]
        if early:
            problems.append(f"runs in a plan with templated options before '--': {early}")
    if _templated(arguments.get("stdin", "")):
        problems.append("runs in a plan with a templated stdin")
    if "environment" in task:
        problems.append("runs in a plan with an environment (secrets travel there)")
    if task.get("changed_when") is not False:
        problems.append("runs in a plan without `changed_when: false` (a read changes nothing)")
    return problems


def _templated(value: Any) -> bool:
    text = value if isinstance(value, str) else yaml.safe_dump(value)
    return "{{" in text or "{%" in text


def _text(task: Mapping[str, Any]) -> str:
    return yaml.safe_dump(dict(task), sort_keys=True)
