"""Run a module's role with ansible-playbook, the way a run would hand it its settings.

Variables go in as a YAML file whose strings are all tagged ``!unsafe``, as the
renderer passes what users typed: Ansible must never template them.
"""

from __future__ import annotations

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


class _UnsafeDumper(yaml.SafeDumper):
    """Tags every string `!unsafe`."""


def _unsafe_string(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    return dumper.represent_scalar("!unsafe", value, style="'")


_UnsafeDumper.add_representer(str, _unsafe_string)


def unsafe_yaml(data: Any) -> str:
    """YAML of `data` with every string tagged !unsafe."""
    return yaml.dump(data, Dumper=_UnsafeDumper, sort_keys=False)


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


def _environment(tmp_path: Path) -> dict[str, str]:
    env = dict(os.environ)
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
    plays: list[dict[str, Any]], variables: dict[str, Any], tmp_path: Path, *options: str
) -> PlaybookRun:
    """Run `plays` on localhost over the local connection with `variables` as extra vars."""
    playbook = tmp_path / "playbook.yml"
    playbook.write_text(yaml.safe_dump(plays, sort_keys=False))
    extra = tmp_path / "variables.yml"
    extra.write_text(unsafe_yaml(variables))
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
        env=_environment(tmp_path),
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    return PlaybookRun(done.returncode, done.stdout + done.stderr)


def role_play(role: Path) -> list[dict[str, Any]]:
    """A play that applies one role to all hosts."""
    return [{"hosts": "all", "gather_facts": False, "roles": [{"role": str(role)}]}]


def render_play(template: Path, dest: Path) -> list[dict[str, Any]]:
    """A play that renders one of a role's templates to a local file."""
    task = {"ansible.builtin.template": {"src": str(template), "dest": str(dest), "mode": "0600"}}
    return [{"hosts": "all", "gather_facts": False, "tasks": [task]}]
