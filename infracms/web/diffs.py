"""Diffs as the pages show them: (kind, line) pairs, kind one of add, remove, hunk, file
or same, for a CSS class each. Unified text diffs (a definition's revisions) and Ansible
task diffs (a run's changed tasks)."""

from __future__ import annotations

import difflib
import json
from typing import Any

from infracms.web.templating import plain


def task_diff(diff: Any) -> list[tuple[str, str]]:
    """An Ansible task diff as (kind, line) pairs: add, remove, hunk, file or same."""
    if not diff:
        return []
    if isinstance(diff, list):
        return [line for part in diff for line in task_diff(part)]
    if not isinstance(diff, dict):
        return [("same", line) for line in str(diff).splitlines()]
    if "prepared" in diff:
        return line_kinds(str(diff["prepared"]).splitlines())
    if "before" not in diff and "after" not in diff:
        return []
    before, after = _text(diff.get("before")), _text(diff.get("after"))
    unified = difflib.unified_diff(
        before.splitlines(),
        after.splitlines(),
        str(diff.get("before_header", "before")),
        str(diff.get("after_header", "after")),
        lineterm="",
    )
    return line_kinds(list(unified))


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return plain(value)
    return json.dumps(value, indent=2, sort_keys=True, default=str)


def line_kinds(lines: list[str]) -> list[tuple[str, str]]:
    """The lines of a unified diff, each with its kind: add, remove, hunk, file or same."""
    found = []
    for line in lines:
        line = plain(line)
        if line.startswith(("+++", "---")):
            found.append(("file", line))
        elif line.startswith("@@"):
            found.append(("hunk", line))
        elif line.startswith("+"):
            found.append(("add", line))
        elif line.startswith("-"):
            found.append(("remove", line))
        else:
            found.append(("same", line))
    return found
