"""Run a module's role with ansible-playbook, the way a run would hand it its settings.

Variables go in as a JSON file whose strings are all marked unsafe, as the renderer
passes what users typed: Ansible must never template them.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

ANSIBLE_PLAYBOOK = Path(sys.executable).with_name("ansible-playbook")
# The system Python: the apt module needs python3-apt, which only it has.
HOST_PYTHON = "/usr/bin/python3"
RECAP_RE = re.compile(r"^(\S+)\s+:\s+ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)")


def unsafe_json(data: Any) -> Any:
    """`data` with every string wrapped as Ansible's unsafe JSON object.

    ansible-core 2.19 re-resolves a YAML ``!unsafe "no"`` as the boolean False (and
    ``!unsafe "22"`` as an int); ``{"__ansible_unsafe": "no"}`` in JSON stays a string.
    """
    if isinstance(data, str):
        return {"__ansible_unsafe": data}
    if isinstance(data, dict):
        return {key: unsafe_json(value) for key, value in data.items()}
    if isinstance(data, list):
        return [unsafe_json(value) for value in data]
    return data


@dataclass(frozen=True)
class PlaybookRun:
    """What ansible-playbook printed and how it ended."""

    returncode: int
    output: str

    def recap(self) -> dict[str, int]:
        """The localhost recap line: ok, changed, unreachable, failed."""
        for line in self.output.splitlines():
            match = RECAP_RE.match(line)
            if match:
                names = ("ok", "changed", "unreachable", "failed")
                return dict(zip(names, map(int, match.groups()[1:]), strict=True))
        raise AssertionError(f"no recap in ansible-playbook output:\n{self.output}")

    def check(self) -> PlaybookRun:
        """Fail with the whole output unless the run ended well."""
        assert self.returncode == 0, f"ansible-playbook ended {self.returncode}:\n{self.output}"
        return self


def _environment(tmp_path: Path, extra: dict[str, str] | None) -> dict[str, str]:
    env = dict(os.environ) | (extra or {})
    env.update(
        ANSIBLE_NOCOLOR="1",
        ANSIBLE_RETRY_FILES_ENABLED="0",
        ANSIBLE_LOCAL_TEMP=str(tmp_path / "ansible-local"),
        ANSIBLE_REMOTE_TEMP=str(tmp_path / "ansible-remote"),
        ANSIBLE_HOME=str(tmp_path / "ansible-home"),
        ANSIBLE_HOST_KEY_CHECKING="1",
        ANSIBLE_DEPRECATION_WARNINGS="0",
    )
    env.pop("ANSIBLE_CONFIG", None)
    return env


def run_playbook(
    plays: list[dict[str, Any]],
    variables: dict[str, Any],
    tmp_path: Path,
    *options: str,
    env: dict[str, str] | None = None,
) -> PlaybookRun:
    """Run `plays` on localhost over the local connection with `variables` as extra vars."""
    playbook = tmp_path / "playbook.yml"
    playbook.write_text(yaml.safe_dump(plays, sort_keys=False))
    extra = tmp_path / "variables.json"
    extra.write_text(json.dumps(unsafe_json(variables)))
    command = [
        str(ANSIBLE_PLAYBOOK),
        "-i",
        "localhost,",
        "-c",
        "local",
        "-e",
        f"ansible_python_interpreter={HOST_PYTHON}",
        "-e",
        f"@{extra}",
        *options,
        str(playbook),
    ]
    done = subprocess.run(
        command,
        env=_environment(tmp_path, env),
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    return PlaybookRun(done.returncode, done.stdout + done.stderr)


def role_play(role: Path) -> list[dict[str, Any]]:
    """A play that applies one role to all hosts."""
    return [{"hosts": "all", "gather_facts": False, "roles": [{"role": str(role)}]}]


def render_play(templates: dict[Path, Path]) -> list[dict[str, Any]]:
    """A play that renders templates (source: destination) to local files."""
    tasks = [
        {"ansible.builtin.template": {"src": str(src), "dest": str(dest), "mode": "0600"}}
        for src, dest in templates.items()
    ]
    return [{"hosts": "all", "gather_facts": False, "tasks": tasks}]


def render_all(
    module_role: Path, templates: list[str], variables: dict[str, Any], tmp_path: Path
) -> dict[str, str]:
    """Some of a role's templates rendered with `variables` and the role's constants."""
    defaults = {}
    for part in ("defaults/main.yml", "vars/main.yml"):
        if (module_role / part).is_file():
            defaults |= yaml.safe_load((module_role / part).read_text()) or {}
    out = tmp_path / "rendered"
    out.mkdir(exist_ok=True)
    plan = {module_role / "templates" / name: out / name for name in templates}
    run_playbook(render_play(plan), defaults | variables, tmp_path).check()
    return {name: (out / name).read_text() for name in templates}


def render(module_role: Path, template: str, variables: dict[str, Any], tmp_path: Path) -> str:
    """One of a role's templates rendered with `variables` (and the role's constants)."""
    return render_all(module_role, [template], variables, tmp_path)[template]
