"""docs/modules.md describes the module contract as the code declares it (datasette's
test_docs): every hook in infracms/hookspecs.py, every method a Module or an Offering
subclass may override, and what replaces each per-module hook of earlier versions."""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable
from pathlib import Path

import pytest

from infracms import hookspecs
from infracms.modules.contract import MODULE_METHODS, Module
from infracms.modules.offerings import OFFERING_METHODS, Offering

DOCS = Path(__file__).resolve().parents[1] / "docs" / "modules.md"
SPEC_MARK = f"{hookspecs.PROJECT}_spec"  # what pluggy's HookspecMarker sets on a spec


def declared_hooks() -> dict[str, str]:
    """{hook name: docstring} of every @hookspec function."""
    return {
        name: inspect.getdoc(value) or ""
        for name, value in vars(hookspecs).items()
        if inspect.isfunction(value) and hasattr(value, SPEC_MARK)
    }


def _docstrings(owner: type, names: tuple[str, ...]) -> dict[str, str]:
    found: dict[str, str] = {}
    for name in names:
        method: Callable[..., object] = getattr(owner, name)
        found[name] = inspect.getdoc(method) or ""
    return found


CONTRACT = {
    "The hooks": declared_hooks,
    "The module's methods": lambda: _docstrings(Module, MODULE_METHODS),
    "The offering's methods": lambda: _docstrings(Offering, OFFERING_METHODS),
}
DECLARATIONS = {
    "The module's methods": {"offerings", "data_paths"}
}  # attributes, documented beside


def sections(part: str) -> dict[str, str]:
    """{heading: text} of the `### ...` sections under `## {part}`."""
    text = DOCS.read_text()
    assert f"\n## {part}\n" in text, f"docs/modules.md has no '## {part}'"
    found = text.split(f"\n## {part}\n", 1)[1].split("\n## ", 1)[0]
    parts = re.split(r"^### (\S+)\n", found, flags=re.MULTILINE)[1:]
    return dict(zip(parts[::2], parts[1::2], strict=True))


def words(text: str) -> str:
    return " ".join(text.split())


CASES = [(part, name) for part, declared in CONTRACT.items() for name in sorted(declared())]


def test_there_is_a_contract_to_document() -> None:
    assert set(declared_hooks()) == {"register_modules"}
    assert {"validate_settings", "extra_variables", "refuse_disable"} <= set(MODULE_METHODS)
    assert {"instance_settings", "connection_details"} <= set(OFFERING_METHODS)


@pytest.mark.parametrize(("part", "name"), CASES)
def test_each_is_documented(part: str, name: str) -> None:
    documented = sections(part)
    assert name in documented, f"docs/modules.md has no '### {name}' under '## {part}'"
    docstring = CONTRACT[part]()[name]
    assert docstring, f"{name} has no docstring"
    assert words(docstring) in words(documented[name]), (
        f"the '### {name}' section does not quote the docstring {docstring!r}"
    )
    assert f"def {name}(" in documented[name], f"the '### {name}' section shows no signature"


@pytest.mark.parametrize("part", sorted(CONTRACT))
def test_every_documented_one_exists(part: str) -> None:
    stale = sorted(set(sections(part)) - set(CONTRACT[part]()) - DECLARATIONS.get(part, set()))
    assert stale == [], f"docs/modules.md documents under '## {part}' what the code lacks: {stale}"


def test_every_retired_hook_says_what_replaces_it() -> None:
    moving = DOCS.read_text().split("\n## Moving from the per-module hooks\n", 1)[1]
    missing = [hook for hook in hookspecs.RETIRED_HOOKS if f"`{hook}(module" not in moving]
    assert missing == [], f"the moving section does not name the hooks {missing}"
    assert not set(hookspecs.RETIRED_HOOKS) & set(declared_hooks())
