"""Request admission: the first-come, first-served gate and the middleware that lets a
few requests into the app at once (docs/performance.md, issue 12). Fast: no server, no
database; the app here is a stand-in that records who is inside."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from sqlalchemy import create_engine

from infracms.app import create_app
from infracms.config import Settings
from infracms.db import admission_places
from infracms.middleware import AdmissionMiddleware, Gate


def test_the_gate_lets_waiters_in_in_the_order_they_came() -> None:
    async def scenario() -> list[int]:
        gate = Gate(1)
        order: list[int] = []
        await gate.enter()

        async def comer(n: int) -> None:
            await gate.enter()
            order.append(n)
            await asyncio.sleep(0)
            gate.leave()

        tasks = [asyncio.create_task(comer(n)) for n in range(5)]
        await asyncio.sleep(0)  # all five now wait
        assert gate.waiting == 5
        gate.leave()
        await asyncio.gather(*tasks)
        return order

    assert asyncio.run(scenario()) == [0, 1, 2, 3, 4]


def test_a_newcomer_does_not_pass_the_queue_when_a_place_is_given_back() -> None:
    async def scenario() -> list[str]:
        gate = Gate(1)
        order: list[str] = []
        await gate.enter()

        async def comer(name: str) -> None:
            await gate.enter()
            order.append(name)
            gate.leave()

        waiter = asyncio.create_task(comer("waiter"))
        await asyncio.sleep(0)
        gate.leave()  # handed to the waiter, not left free for whoever asks next
        assert gate.free == 0
        await asyncio.gather(waiter, comer("newcomer"))
        return order

    assert asyncio.run(scenario()) == ["waiter", "newcomer"]


def test_a_cancelled_waiter_leaves_the_line_and_loses_no_place() -> None:
    async def scenario() -> int:
        gate = Gate(2)
        await gate.enter()
        await gate.enter()
        gone = asyncio.create_task(gate.enter())
        await asyncio.sleep(0)
        gone.cancel()
        with pytest.raises(asyncio.CancelledError):
            await gone
        assert gate.waiting == 0
        gate.leave()
        gate.leave()
        return gate.free

    assert asyncio.run(scenario()) == 2


def test_a_place_handed_to_a_waiter_as_it_is_cancelled_goes_to_the_next() -> None:
    async def scenario() -> int:
        gate = Gate(1)
        await gate.enter()
        first = asyncio.create_task(gate.enter())
        second = asyncio.create_task(gate.enter())
        await asyncio.sleep(0)
        gate.leave()  # the place goes to `first`...
        first.cancel()  # ...which is cancelled before it runs
        with pytest.raises(asyncio.CancelledError):
            await first
        await asyncio.wait_for(second, 1)  # so `second` gets it
        gate.leave()
        return gate.free

    assert asyncio.run(scenario()) == 1


def test_a_gate_needs_a_place() -> None:
    with pytest.raises(ValueError):
        Gate(0)


class Recorder:
    """An ASGI app that counts who is inside, and answers when released (or streams)."""

    def __init__(self) -> None:
        self.inside = 0
        self.most = 0
        self.release = asyncio.Event()

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        self.inside += 1
        self.most = max(self.most, self.inside)
        try:
            if scope["path"] == "/stream":
                await send({"type": "http.response.start", "status": 200, "headers": []})
                await self.release.wait()
            else:
                await self.release.wait()
                await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": b""})
        finally:
            self.inside -= 1


def http(path: str, method: str = "GET") -> dict[str, Any]:
    return {"type": "http", "method": method, "path": path, "headers": []}


async def call(app: Any, scope: dict[str, Any]) -> list[Any]:
    sent: list[Any] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Any) -> None:
        sent.append(message)

    await app(scope, receive, send)
    return sent


def test_no_more_requests_than_the_places_are_inside_at_once_reads_and_writes_alike() -> None:
    async def scenario() -> tuple[int, int]:
        inner = Recorder()
        app = AdmissionMiddleware(inner, places=3)
        methods = ["GET", "PATCH", "POST", "GET", "DELETE", "GET", "PATCH"] * 2
        tasks = [asyncio.create_task(call(app, http("/x", m))) for m in methods]
        for _ in range(5):
            await asyncio.sleep(0)
        inside, waiting = inner.inside, app.gate.waiting
        inner.release.set()
        answers = await asyncio.gather(*tasks)
        assert all(answer[0]["status"] == 200 for answer in answers)
        assert inner.most == 3 and app.gate.free == 3
        return inside, waiting

    assert asyncio.run(scenario()) == (3, 11)


def test_a_request_gives_its_place_back_when_its_answer_starts() -> None:
    async def scenario() -> int:
        inner = Recorder()
        app = AdmissionMiddleware(inner, places=1)
        stream = asyncio.create_task(call(app, http("/stream")))
        await asyncio.sleep(0)
        # the stream has started its answer: the next request gets in while it goes on
        other = asyncio.create_task(call(app, http("/stream")))
        for _ in range(3):
            await asyncio.sleep(0)
        inside = inner.inside
        inner.release.set()
        await asyncio.gather(stream, other)
        return inside

    assert asyncio.run(scenario()) == 2


def test_a_failing_request_gives_its_place_back() -> None:
    async def broken(scope: Any, receive: Any, send: Any) -> None:
        raise RuntimeError("boom")

    async def scenario() -> int:
        app = AdmissionMiddleware(broken, places=1)
        for _ in range(3):
            with pytest.raises(RuntimeError):
                await call(app, http("/x"))
        return app.gate.free

    assert asyncio.run(scenario()) == 1


def test_the_health_check_and_other_protocols_go_straight_in() -> None:
    async def scenario() -> int:
        inner = Recorder()
        app = AdmissionMiddleware(inner, places=1, exempt=frozenset({"/healthz"}))
        held = asyncio.create_task(call(app, http("/x")))
        await asyncio.sleep(0)
        health = asyncio.create_task(call(app, http("/healthz")))
        lifespan = asyncio.create_task(call(app, {"type": "lifespan", "path": "/"}))
        for _ in range(3):
            await asyncio.sleep(0)
        inside = inner.inside
        inner.release.set()
        await asyncio.gather(held, health, lifespan)
        return inside

    assert asyncio.run(scenario()) == 3


def test_the_app_admits_a_few_requests_on_sqlite(settings: Settings) -> None:
    app = create_app(settings)
    admission = [m for m in app.user_middleware if m.cls is AdmissionMiddleware]
    assert len(admission) == 1
    assert admission[0].kwargs["places"] == admission_places(app.state.engine) == 8
    app.state.engine.dispose()


def test_postgresql_is_left_without_a_line() -> None:
    engine = create_engine("postgresql+psycopg://nobody@127.0.0.1:1/none")  # never connected
    assert admission_places(engine) is None
