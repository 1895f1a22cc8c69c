"""A peer hides a formula behind what a spreadsheet import skips: leading spaces (an
import that trims them evaluates `` =1+2``), a no-break space, a zero-width space or a
BOM, a newline, or fullwidth U+FF1D, U+FF0B, U+FF0D or U+FF20. Each cell of the usage CSV
that would start a formula once those are taken away is written as text."""

from __future__ import annotations

import csv
import io
import unicodedata
from collections.abc import Iterator
from pathlib import Path

import pytest

from infracms.services.federation import usage
from infracms.services.federation.usage import UsagePublic
from tests.security._peers_support import Provider, provider_node
from tests.security.test_peers_exports import _approve_all, _export

pytestmark = pytest.mark.security

HIDDEN = [
    ' =HYPERLINK("http://evil","x")',
    "   +1+2",
    "\u00a0=1+2",
    "\u200b=1+2",
    "\ufeff@SUM(A1)",
    "\n=1+2",
    "\uff1d1+2",
    "\uff0b1",
    "\uff0d1+2",
    "\uff20SUM(A1)",
]


def _evaluable(cell: str) -> bool:
    visible = "".join(
        c for c in cell if unicodedata.category(c) not in {"Zs", "Zl", "Zp", "Cc", "Cf"}
    )
    return unicodedata.normalize("NFKC", visible).startswith(usage.FORMULA_STARTS)


@pytest.fixture
def provider(tmp_path: Path) -> Iterator[Provider]:
    with provider_node(tmp_path) as node:
        yield node


def test_a_peer_hides_a_formula_behind_a_space(provider: Provider) -> None:
    answer = provider.provision({"database": "app"}, organization_name=HIDDEN[0])
    assert answer.status_code == 202, answer.text
    _approve_all(provider)
    [row] = _export(provider)
    assert row["organisation"] == "'" + HIDDEN[0]


@pytest.mark.parametrize("cell", HIDDEN)
def test_every_hidden_formula_is_neutralised(cell: str) -> None:
    assert _evaluable(cell)
    record = UsagePublic(
        client="b.test",
        organisation=cell,
        offering_id="o",
        plan_id="p",
        instance_id="i",
        started_at="2026-01-01T00:00:00Z",  # type: ignore[arg-type]
        ended_at=None,
    )
    [row] = list(csv.reader(io.StringIO(usage.export([record], "csv"), newline="")))[1:]
    assert row[1] == "'" + cell


@pytest.mark.parametrize("cell", ["Coop Nord", " Coop", "Coöp", "\uff21 Coop", "1-2", ""])
def test_text_cells_stay_as_they_are(cell: str) -> None:
    assert usage.neutralised(cell) == cell
