"""The test tiers: `make test-fast` deselects the marked tiers, and a test that still
reaches for something heavy fails in the fast tier, naming the marker it lacks."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

from tests.support import tiers

ROOT = Path(__file__).resolve().parent.parent


def test_the_makefile_runs_the_fast_tier_with_the_guard_on() -> None:
    makefile = (ROOT / "Makefile").read_text()
    expression = re.search(r"^FAST_TIER\s*:=\s*(.+)$", makefile, re.MULTILINE)
    assert expression is not None, "the Makefile defines no FAST_TIER"
    assert expression.group(1).strip() == tiers.FAST_TIER_EXPRESSION
    recipe = makefile.split("\ntest-fast:", 1)[1].split("\n\n", 1)[0]
    assert f"{tiers.TIER_VARIABLE}=fast" in recipe and '-m "$(FAST_TIER)"' in recipe


def _make_variable(makefile: str, name: str) -> str:
    found = re.search(rf"^{name}\s*:=\s*(.+)$", makefile, re.MULTILINE)
    assert found is not None, f"the Makefile defines no {name}"
    return found.group(1).strip()


def _recipe(makefile: str, target: str) -> list[str]:
    body = makefile.split(f"\n{target}:", 1)[1].split("\n\n", 1)[0]
    return [line.strip() for line in body.splitlines()[1:] if line.startswith("\t")]


def test_make_test_runs_every_test_once_fast_tier_in_parallel_then_the_rest() -> None:
    makefile = (ROOT / "Makefile").read_text()
    fast, heavy = _make_variable(makefile, "FAST_TIER"), _make_variable(makefile, "HEAVY_TIER")
    assert fast == f"not ({heavy})", "the heavy tier must be exactly what the fast tier leaves"
    parallel = _make_variable(makefile, "PARALLEL")
    assert parallel.startswith("-n "), parallel
    first, second = (line for line in _recipe(makefile, "test") if "pytest" in line)
    assert '-m "$(FAST_TIER)" $(PARALLEL)' in first and f"{tiers.TIER_VARIABLE}=fast" in first
    assert '-m "$(HEAVY_TIER)"' in second and "$(PARALLEL)" not in second
    [fast_only] = (line for line in _recipe(makefile, "test-fast") if "pytest" in line)
    assert "$(PARALLEL)" in fast_only


def test_every_marker_the_fast_tier_names_is_registered() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    registered = {line.split(":")[0] for line in config["tool"]["pytest"]["ini_options"]["markers"]}
    named = set(re.findall(r"[a-z_0-9]+", tiers.FAST_TIER_EXPRESSION)) - {"not", "or", "and"}
    assert named <= registered, f"unregistered markers: {sorted(named - registered)}"


@pytest.mark.parametrize(
    ("what", "marker"), [("PostgreSQL", "postgres"), ("test hosts", "integration")]
)
def test_a_heavy_resource_fails_an_unmarked_test_in_the_fast_tier(
    monkeypatch: pytest.MonkeyPatch, what: str, marker: str
) -> None:
    monkeypatch.setenv(tiers.TIER_VARIABLE, "fast")
    with pytest.raises(pytest.fail.Exception, match=f"mark it @pytest.mark.{marker}"):
        tiers.needs(what, marker)


def test_outside_the_fast_tier_heavy_resources_are_allowed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(tiers.TIER_VARIABLE, raising=False)
    tiers.needs("PostgreSQL", "postgres")  # does not fail
