"""A peer sends values with a trailing newline: ``^...$`` with Python's ``re.match`` (and
JSON Schema ``pattern`` as the ``jsonschema`` library checks it) matches before a final
newline, so ``"evil\\n"`` passed as a database name. Every anchored pattern is now
matched whole (``fullmatch``), and plan schemas are checked with ECMA-262 ``$``."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import re
import re._constants as sre
import re._parser as sre_parse
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from sqlmodel import select

from federation.schemas import parameters_validator
from infracms.db import session_scope
from infracms.models.federation import PublishedOffering
from tests.security._peers_support import (
    BACKUP,
    POSTGRES,
    Provider,
    backup_parameters,
    provider_node,
)

pytestmark = pytest.mark.security
SKIP_MODULES = ("infracms.__main__", "infracms.migrations", "federation.vectors.generate")


@pytest.fixture
def provider(tmp_path: Path) -> Iterator[Provider]:
    with provider_node(tmp_path) as node:
        yield node


@pytest.mark.parametrize(
    ("offering", "parameters", "field"),
    [
        (BACKUP, backup_parameters("nl1\n"), "parameters.name"),
        (POSTGRES, {"database": "evil\n"}, "parameters.database"),
        (POSTGRES, {"database": "evil\nhost all all 0.0.0.0/0 trust"}, "parameters.database"),
    ],
)
def test_a_trailing_newline_is_refused_and_nothing_stored(
    provider: Provider, offering: str, parameters: dict[str, Any], field: str
) -> None:
    before = provider.stored()
    answer = provider.provision(parameters, offering)
    assert answer.status_code == 400, answer.text
    assert answer.json()["error"] == "BadRequest"
    assert "does not match" in answer.json()["description"] and field[11:] in answer.text
    assert provider.stored() == before


def test_the_same_values_without_the_newline_are_accepted(provider: Provider) -> None:
    """The refusal above is the newline's, not the request's."""
    assert provider.provision({"database": "evil"}).status_code == 202
    assert provider.provision(backup_parameters("nl1"), BACKUP).status_code == 202


def _our_modules() -> Iterator[ModuleType]:
    for package in ("infracms", "federation"):
        root = importlib.import_module(package)
        for info in pkgutil.walk_packages(root.__path__, f"{package}."):
            if not info.name.startswith(SKIP_MODULES):
                yield importlib.import_module(info.name)


def _anchored() -> dict[str, re.Pattern[str]]:
    """Every module-level compiled pattern of infracms and federation anchored ^...$."""
    found: dict[str, re.Pattern[str]] = {}
    seen: set[int] = set()
    for module in _our_modules():
        for name, value in vars(module).items():
            if isinstance(value, re.Pattern) and isinstance(value.pattern, str):
                anchored = value.pattern.startswith("^") and value.pattern.endswith("$")
                if anchored and id(value) not in seen:
                    seen.add(id(value))
                    found[f"{module.__name__}.{name}"] = value
    return found


ANCHORED = _anchored()


def example(pattern: str) -> str:
    """A short string the pattern matches whole (for the patterns we write)."""
    return "".join(_walk(sre_parse.parse(pattern)))


def _walk(parsed: Any) -> Iterator[str]:
    for op, arg in parsed:
        if op is sre.LITERAL:
            yield chr(arg)
        elif op is sre.IN:
            yield _member(arg)
        elif op is sre.ANY:
            yield "a"
        elif op in (sre.MAX_REPEAT, sre.MIN_REPEAT):
            low, _, item = arg
            for _ in range(max(low, 1)):
                yield from _walk(item)
        elif op is sre.SUBPATTERN:
            yield from _walk(arg[-1])
        elif op is sre.BRANCH:
            yield from _walk(arg[1][0])
        elif op is sre.GROUPREF:
            yield ""


def _member(items: list[tuple[Any, Any]]) -> str:
    negate = items and items[0][0] is sre.NEGATE
    first_op, first = items[0]
    if first_op is sre.LITERAL:
        return chr(first)
    if first_op is sre.RANGE:
        return chr(first[0])
    for candidate in "a0A_.-/: ":
        inside = any(_contains(op, arg, candidate) for op, arg in items)
        if inside != bool(negate):
            return candidate
    raise AssertionError(f"no example character for {items}")


def _contains(op: Any, arg: Any, char: str) -> bool:
    if op is sre.LITERAL:
        return chr(arg) == char
    if op is sre.RANGE:
        return arg[0] <= ord(char) <= arg[1]
    if op is sre.CATEGORY:
        return bool(re.fullmatch(_CATEGORIES.get(arg, "(?!)"), char))
    return False


_CATEGORIES = {
    sre.CATEGORY_DIGIT: r"\d",
    sre.CATEGORY_SPACE: r"\s",
    sre.CATEGORY_WORD: r"\w",
    sre.CATEGORY_NOT_SPACE: r"\S",
}


def test_the_enumeration_found_the_patterns() -> None:
    names = {key.rsplit(".", 1)[-1] for key in ANCHORED}
    assert {"NAME_RE", "IDENTIFIER_RE", "USERNAME_RE", "VARIABLE_RE"} <= names
    assert len(ANCHORED) >= 30, sorted(ANCHORED)


@pytest.mark.parametrize("name", sorted(ANCHORED))
def test_no_anchored_pattern_accepts_a_trailing_newline(name: str) -> None:
    pattern = ANCHORED[name]
    sample = example(pattern.pattern)
    assert pattern.fullmatch(sample), f"{name}: the example {sample!r} does not match"
    assert pattern.fullmatch(sample + "\n") is None
    assert pattern.match(sample + "\n"), "re.match would have accepted it (why fullmatch)"


def test_no_code_matches_an_anchored_pattern_with_match_or_search() -> None:
    """Each use of an anchored pattern is fullmatch: the other methods stop before a \\n."""
    names = {key.rsplit(".", 1)[-1] for key in ANCHORED}
    loose = re.compile(rf"\b({'|'.join(map(re.escape, names))})\.(match|search)\(")
    offenders = []
    for module in _our_modules():
        try:
            source = inspect.getsource(module)
        except (OSError, TypeError):
            continue
        for number, line in enumerate(source.splitlines(), 1):
            if loose.search(line) or re.search(r"\bre\.(match|search)\(\s*r?[\"']\^", line):
                offenders.append(f"{module.__name__}:{number}: {line.strip()}")
    assert offenders == []


def _schema_patterns(provider: Provider) -> list[str]:
    with session_scope(provider.node.engine) as session:
        rows = session.exec(select(PublishedOffering)).all()
        schemas = [plan.get("parameters") or {} for row in rows for plan in row.plans]
    found: list[str] = []
    stack: list[Any] = list(schemas)
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            if isinstance(item.get("pattern"), str):
                found.append(item["pattern"])
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return sorted(set(found))


def test_plan_schema_patterns_refuse_a_trailing_newline(provider: Provider) -> None:
    patterns = _schema_patterns(provider)
    assert len(patterns) >= 3, patterns  # the backup name and key, the database name
    for pattern in patterns:
        validator = parameters_validator({"type": "string", "pattern": pattern})
        sample = example(pattern)
        assert validator.is_valid(sample), f"{pattern}: {sample!r}"
        assert not validator.is_valid(sample + "\n"), pattern
