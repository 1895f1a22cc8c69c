"""ASGI middleware: request ids, body size and content-type limits, security headers, and
admission (how many requests are let in at once)."""

from __future__ import annotations

import asyncio
import json
import secrets
from collections import deque
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

SECURITY_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"same-origin"),
    (
        b"content-security-policy",
        b"default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
        b"frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
    ),
]
JSON_TYPES = ("application/json", "application/merge-patch+json")


def _problem(status: int, title: str, detail: str) -> tuple[list[tuple[bytes, bytes]], bytes]:
    body = json.dumps(
        {"type": "about:blank", "title": title, "status": status, "detail": detail}
    ).encode()
    return [(b"content-type", b"application/problem+json")], body


async def _reply(send: Send, status: int, title: str, detail: str) -> None:
    headers, body = _problem(status, title, detail)
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class GuardMiddleware:
    """Give each request an id, refuse oversized or wrongly typed bodies, add security headers."""

    def __init__(self, app: ASGIApp, *, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {key.decode().lower(): value.decode("latin-1") for key, value in scope["headers"]}
        request_id = secrets.token_hex(8)
        scope.setdefault("state", {})["request_id"] = request_id
        refusal = self._refusal(scope, headers)
        if refusal is not None:
            await _reply(send, *refusal)
            return
        if "content-length" not in headers and "transfer-encoding" in headers:
            buffered = await self._buffer(receive)
            if buffered is None:
                await _reply(send, 413, "Payload too large", self._too_large)
                return
            receive = buffered
        await self.app(scope, self._limited(receive), self._with_headers(send, request_id))

    @property
    def _too_large(self) -> str:
        return f"bodies are limited to {self.max_body_bytes} bytes"

    async def _buffer(self, receive: Receive) -> Receive | None:
        """Read a streamed body whole (up to the limit) so an oversized one is refused cleanly."""
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                break
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            if size > self.max_body_bytes:
                return None
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        sent = False

        async def replay() -> Message:
            nonlocal sent
            if sent:
                return await receive()
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}

        return replay

    def _refusal(self, scope: Scope, headers: dict[str, str]) -> tuple[int, str, str] | None:
        length = headers.get("content-length")
        if length is not None and (not length.isdigit() or int(length) > self.max_body_bytes):
            return 413, "Payload too large", self._too_large
        has_body = scope["method"] in ("POST", "PUT", "PATCH") and (
            (length is not None and length != "0") or "transfer-encoding" in headers
        )
        content_type = headers.get("content-type", "").split(";")[0].strip().lower()
        if scope["path"].startswith("/api/") and has_body and content_type not in JSON_TYPES:
            return 415, "Unsupported media type", "send the body as application/json"
        return None

    def _limited(self, receive: Receive) -> Receive:
        seen = 0
        limit = self.max_body_bytes

        async def wrapped() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise BodyTooLarge
            return message

        return wrapped

    def _with_headers(self, send: Send, request_id: str) -> Send:
        async def wrapped(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers.extend(SECURITY_HEADERS)
                headers.append((b"x-request-id", request_id.encode()))
                message["headers"] = headers
            await send(message)

        return wrapped


class BodyTooLarge(Exception):
    """A streamed body went over the limit."""


class Gate:
    """A first-come, first-served gate of the event loop with `size` places: a place
    given back goes straight to the longest waiter, so no newcomer passes the queue."""

    def __init__(self, size: int) -> None:
        if size < 1:
            raise ValueError("a gate needs at least one place")
        self.size = size
        self.free = size
        self._waiters: deque[asyncio.Future[None]] = deque()

    @property
    def waiting(self) -> int:
        """How many wait for a place."""
        return sum(1 for waiter in self._waiters if not waiter.done())

    async def enter(self) -> None:
        """Take a place, waiting (on the loop, holding nothing) behind earlier comers."""
        if self.free > 0 and not self._waiters:
            self.free -= 1
            return
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self.leave()  # handed a place just as it was cancelled: pass it on
            else:
                self._waiters.remove(waiter)
            raise

    def leave(self) -> None:
        """Give a place back: to the next waiter if any, else to the free places."""
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return
        self.free += 1


class AdmissionMiddleware:
    """Let at most `places` requests into the app at once; the others wait in arrival
    order, on the event loop, holding no thread and no database connection. A request
    holds its place until its answer starts (a stream of events does not keep one).
    Paths in `exempt` (the health check) go straight in.

    Why (docs/performance.md): one server process runs Python on one core at a time,
    so more requests inside only share it thinner and answer later, in no order; and
    the writer that holds SQLite's write lock shares it with all of them, so the lock
    is held longer and every other writer waits longer. Readers and writers queue in
    one line: the answers come back in the order the requests came."""

    def __init__(self, app: ASGIApp, *, places: int, exempt: frozenset[str] = frozenset()) -> None:
        self.app = app
        self.gate = Gate(places)
        self.exempt = exempt

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in self.exempt:
            await self.app(scope, receive, send)
            return
        await self.gate.enter()
        inside = True

        def leave() -> None:
            nonlocal inside
            if inside:
                inside = False
                self.gate.leave()

        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start":
                leave()
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            leave()
