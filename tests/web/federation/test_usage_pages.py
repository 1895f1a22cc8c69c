"""Usage (node admins): the records per peer, with CSV and JSON downloads."""

from __future__ import annotations

import csv
import io
import json

from fastapi import FastAPI
from sqlalchemy import Engine

from tests.web.federation.conftest import CONSUMER, SMALL, Node, ask, provided


def test_usage_records_per_peer_with_downloads(app: FastAPI, engine: Engine, peered: Node) -> None:
    assert "No usage yet" in peered.admin.get("/usage").text
    ask(app, engine)
    assert (
        peered.admin.post(f"/orgs/coop/requests/{provided(peered)}/approve", {}).status_code == 303
    )
    page = peered.admin.get("/usage").text
    assert f"peer:{CONSUMER}" in page and SMALL in page and "1 record, 1 still running" in page
    assert '<option value="b.test">b.test</option>' in page
    assert 'href="/usage/export?format=csv"' in page
    assert "No usage by nobody.example yet" in peered.admin.get("/usage?peer=nobody.example").text

    exported = peered.admin.get(f"/usage/export?format=csv&peer={CONSUMER}")
    assert exported.headers["content-type"].startswith("text/csv")
    assert exported.headers["content-disposition"] == 'attachment; filename="usage-b.test.csv"'
    rows = list(csv.DictReader(io.StringIO(exported.text)))
    assert [(r["client"], r["organisation"], r["plan_id"], r["to"]) for r in rows] == [
        (f"peer:{CONSUMER}", "clinic", SMALL, "")
    ]
    records = json.loads(peered.admin.get("/usage/export?format=json").text)
    assert [record["organisation"] for record in records] == ["clinic"]
    assert peered.admin.get("/usage/export?format=xml").status_code == 400
