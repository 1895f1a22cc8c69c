"""Fixed keys, a fixed clock, and a fake peer node served through ``httpx.MockTransport``."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import httpx

from federation.catalogs import SignedCatalog, sign_catalog
from federation.errors import VerificationError
from federation.httpsig import sign_response, verify_request
from federation.keys import KeyResolver, NodeKey, StaticKeyResolver, TrustedKey
from federation.messages import HttpRequest, HttpResponse
from federation.models import Catalog, NodeIdentity, Offering, Plan, Price
from federation.nonces import MemoryNonceStore
from federation.urls import CATALOG_PATH, IDENTITY_PATH

NOW = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)


def seeded_key(label: str) -> NodeKey:
    """A key from a fixed seed derived from ``label``, the same on every run."""
    return NodeKey.from_seed(hashlib.sha256(label.encode()).digest())


A_KEY = seeded_key("node a")
B_KEY = seeded_key("node b")
C_KEY = seeded_key("node c")


def identity(name: str, key: NodeKey, base_url: str | None = None) -> NodeIdentity:
    """The identity document of a node."""
    return NodeIdentity(
        name=name,
        base_url=base_url or f"https://{name}",
        public_key=key.public_key_b64,
        key_id=key.key_id,
    )


def make_catalog(node: str = "a.example", *, version: int = 1, offerings: int = 2) -> Catalog:
    """A catalog with ``offerings`` offerings of two plans each."""
    return Catalog(
        node=node,
        version=version,
        generated_at=NOW,
        offerings=tuple(_offering(i) for i in range(offerings)),
    )


def _offering(i: int) -> Offering:
    schema = {
        "type": "object",
        "properties": {"size_gb": {"type": "integer", "minimum": 1, "maximum": 500}},
        "required": ["size_gb"],
        "additionalProperties": False,
    }
    plans = (
        Plan(id=f"o{i}-small", name="Small", parameters=schema, capacity=10, region="eu-west"),
        Plan(
            id=f"o{i}-large",
            name="Large",
            parameters=schema,
            price=Price(amount="12.50", currency="EUR", unit="month"),
            capacity=3,
            region="eu-west",
        ),
    )
    return Offering(id=f"o{i}", name=f"Offering {i}", kind="storage", plans=plans, tags=("backup",))


Route = Callable[[HttpRequest], HttpResponse]


@dataclass
class FakeNode:
    """A peer node: verifies every signed request, routes it, signs every answer."""

    name: str
    key: NodeKey
    peers: list[TrustedKey]
    clock: Callable[[], datetime] = lambda: NOW
    routes: dict[tuple[str, str], Route] = field(default_factory=dict)
    signed_catalog: SignedCatalog | None = None
    seen: list[HttpRequest] = field(default_factory=list)
    sign_answers: bool = True
    open_paths: set[str] = field(default_factory=lambda: {IDENTITY_PATH})
    """Paths the fake does not verify itself (identity; peering, which its route checks)."""

    def __post_init__(self) -> None:
        self.nonces = MemoryNonceStore(clock=self.clock)

    @property
    def base_url(self) -> str:
        return f"https://{self.name}"

    @property
    def keys(self) -> KeyResolver:
        """What a peer pins for this node."""
        return StaticKeyResolver([self.key.trusted(self.name)])

    def publish(self, catalog: Catalog) -> SignedCatalog:
        self.signed_catalog = sign_catalog(catalog, self.key)
        return self.signed_catalog

    def route(self, method: str, path: str) -> Callable[[Route], Route]:
        def register(handler: Route) -> Route:
            self.routes[(method, path)] = handler
            return handler

        return register

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle)

    def handle(self, raw: httpx.Request) -> httpx.Response:
        request = HttpRequest.from_httpx(raw)
        self.seen.append(request)
        path = urlsplit(request.url).path
        if path not in self.open_paths:
            try:
                verify_request(
                    request,
                    keys=StaticKeyResolver(self.peers),
                    nonces=self.nonces,
                    now=self.clock(),
                )
            except VerificationError as exc:
                return httpx.Response(401, json={"description": str(exc)})
        answer = self._answer(request, path)
        if self.sign_answers and answer.status_code < 400:
            answer = sign_response(
                answer, request=request, key=self.key, created=self.clock()
            ).response
        return httpx.Response(answer.status_code, headers=list(answer.headers), content=answer.body)

    def _answer(self, request: HttpRequest, path: str) -> HttpResponse:
        if (request.method, path) in self.routes:
            return self.routes[(request.method, path)](request)
        if (request.method, path) == ("GET", CATALOG_PATH) and self.signed_catalog is not None:
            return catalog_answer(self.signed_catalog, request)
        return HttpResponse.build(404, [("Content-Type", "application/json")], b"{}")


def catalog_answer(signed: SignedCatalog, request: HttpRequest) -> HttpResponse:
    """200 with the signed catalog, or 304 when If-None-Match names its ETag."""
    if request.header("if-none-match") == signed.etag:
        return HttpResponse.build(304, [("ETag", signed.etag)])
    headers = [("Content-Type", "application/json"), ("ETag", signed.etag)]
    return HttpResponse.build(200, headers, signed.to_bytes())


def later(seconds: float) -> datetime:
    return NOW + timedelta(seconds=seconds)
