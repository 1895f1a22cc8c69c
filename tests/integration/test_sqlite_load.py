"""The embedded default (SQLite, one `infracms serve` process) under concurrent reads
and writes: 60 clients at once, more than the request thread pool's 40 threads, which is
where writers holding the write lock across thread hops used to starve each other
(`database is locked` after the busy timeout, dropped connections: issue 12).

Behaviour only: every answer is 200, and every update that was answered is stored with
its audit entry. How fast is bench/api_mixed.py's business.
"""

from __future__ import annotations

import asyncio
import random
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from sqlmodel import col, func, select

from infracms.config import Settings
from infracms.db import make_engine, session_scope
from infracms.models import AuditEntry, Host, Organisation
from infracms.services import auth
from infracms.services.setup import initialise
from tests.conftest import ADMIN_PASSWORD, make_settings
from tests.support.server import live_server

pytestmark = pytest.mark.integration

CLIENTS = 60
REQUESTS_EACH = 12
HOSTS = 30
ORG = "/api/v1/orgs/load"


def node_with_token(settings: Settings) -> str:
    """An initialised node with organisation `load` and its hosts; an owner's API token."""
    engine = make_engine(settings)
    initialise(settings, engine)
    with session_scope(engine, write=True) as session:
        org = Organisation(name="load")
        session.add(org)
        session.flush()
        session.add_all(
            Host(name=f"h{i:02d}", address=f"198.51.100.{i + 1}", organisation_id=org.id)
            for i in range(HOSTS)
        )
        session.commit()
        login = auth.login(
            session=session,
            settings=settings,
            username="admin",
            password=ADMIN_PASSWORD,
            client="test",
        )
        info = auth.session_info(session=session, raw_token=login.token)
        assert info is not None
        issued = auth.issue_token(
            session=session,
            actor=info.actor,
            data={"name": "load", "role": "owner", "organisation": "load"},
        )
    engine.dispose()
    return issued.token


def one_request(rng: random.Random, client_no: int, n: int) -> tuple[str, str, object]:
    """A read or a write, as a user of the API would mix them (a third are writes)."""
    host = f"h{rng.randrange(HOSTS):02d}"
    choice = rng.randrange(6)
    if choice < 2:
        return "PATCH", f"{ORG}/hosts/{host}", {"variables": {"by": client_no, "n": n}}
    if choice == 2:
        return "GET", f"{ORG}/hosts?limit=20", None
    if choice == 3:
        return "GET", f"{ORG}/hosts/{host}", None
    if choice == 4:
        return "GET", f"{ORG}/runs", None
    return "GET", "/api/v1/audit/entries?organisation=load&newest_first=true&limit=10", None


async def drive(base_url: str, token: str) -> list[tuple[str, str, int | str]]:
    """Every client's requests, all at once: (method, path, status or the error)."""
    answers: list[tuple[str, str, int | str]] = []
    limits = httpx.Limits(max_connections=CLIENTS, max_keepalive_connections=CLIENTS)
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(
        base_url=base_url, headers=headers, limits=limits, timeout=300
    ) as client:

        async def user(client_no: int) -> None:
            rng = random.Random(client_no)
            for n in range(REQUESTS_EACH):
                method, path, body = one_request(rng, client_no, n)
                try:
                    status: int | str = (await client.request(method, path, json=body)).status_code
                except httpx.HTTPError as exc:
                    status = repr(exc)
                answers.append((method, path, status))

        await asyncio.gather(*(user(i) for i in range(CLIENTS)))
    return answers


def test_sixty_clients_reading_and_writing_get_no_errors(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "var")
    token = node_with_token(settings)
    # the clients run in a thread of their own: an event loop may be running in this one
    # (a browser test before this one, in the same process, leaves Playwright's)
    with live_server(settings) as base_url, ThreadPoolExecutor(1) as pool:
        answers = pool.submit(lambda: asyncio.run(drive(base_url, token))).result()
    failed = [answer for answer in answers if answer[2] != 200]
    assert failed == [], f"{len(failed)} of {len(answers)} requests failed, e.g. {failed[:5]}"
    updates = sum(1 for method, _, _ in answers if method == "PATCH")
    engine = make_engine(settings)
    with session_scope(engine) as session:
        audited = session.exec(
            select(func.count())
            .select_from(AuditEntry)
            .where(col(AuditEntry.action) == "host.update")
        ).one()
    engine.dispose()
    assert audited == updates, f"{updates} updates answered 200, {audited} audited"
