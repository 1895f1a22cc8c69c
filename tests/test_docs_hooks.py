"""docs/modules.md describes every hook in infracms/hookspecs.py (datasette's test_docs)."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest

from infracms import hookspecs

DOCS = Path(__file__).resolve().parents[1] / "docs" / "modules.md"
SPEC_MARK = f"{hookspecs.PROJECT}_spec"  # what pluggy's HookspecMarker sets on a spec


def declared_hooks() -> dict[str, str]:
    """{hook name: docstring} of every @hookspec function."""
    return {
        name: inspect.getdoc(value) or ""
        for name, value in vars(hookspecs).items()
        if inspect.isfunction(value) and hasattr(value, SPEC_MARK)
    }


def sections() -> dict[str, str]:
    """{heading: text} of the `### ...` sections under `## The hooks`."""
    text = DOCS.read_text()
    hooks = text.split("\n## The hooks\n", 1)[1].split("\n## ", 1)[0]
    parts = re.split(r"^### (\S+)\n", hooks, flags=re.MULTILINE)[1:]
    return dict(zip(parts[::2], parts[1::2], strict=True))


def words(text: str) -> str:
    return " ".join(text.split())


def test_there_are_hooks_to_document() -> None:
    assert {"register_modules", "offering_settings", "offering_credentials"} <= set(
        declared_hooks()
    )


@pytest.mark.parametrize("hook", sorted(declared_hooks()))
def test_hook_is_documented(hook: str) -> None:
    documented = sections()
    assert hook in documented, f"docs/modules.md has no '### {hook}' under '## The hooks'"
    docstring = declared_hooks()[hook]
    assert docstring, f"hookspecs.{hook} has no docstring"
    assert words(docstring) in words(documented[hook]), (
        f"the '### {hook}' section does not quote the spec's docstring {docstring!r}"
    )
    assert f"def {hook}(" in documented[hook], f"the '### {hook}' section shows no spec"


def test_every_documented_hook_exists() -> None:
    stale = sorted(set(sections()) - set(declared_hooks()))
    assert stale == [], f"docs/modules.md documents hooks that hookspecs.py lacks: {stale}"
