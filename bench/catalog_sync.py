"""Catalog sync between nodes: 10 peers x 100 offerings, signed, served and verified.

Each peer is served in-process through ``httpx.MockTransport`` by a handler that does
what a node does: verify the signed request (RFC 9421, nonce), answer 200 with the
signed catalog or 304 when ``If-None-Match`` names its ETag, and sign the answer.
The client does the whole sync: sign the request, check the answer's signature, and
for a 200 check the catalog's Ed25519 signature over its RFC 8785 form and parse it.
The serving side runs in the same process and its time is included, so the figures
are an upper bound; the client's own share is shown too.

Targets (DESIGN.md): full sync of 10 peers <= 1 s; an unchanged sync <= 20 ms a peer.

    .venv/bin/python bench/catalog_sync.py [--peers 10] [--offerings 100] [--rounds 5]
"""

from __future__ import annotations

import argparse
import hashlib
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from federation.catalogs import SignedCatalog, sign_catalog
from federation.client import Peer, PeerClient
from federation.httpsig import sign_response, verify_request
from federation.keys import NodeKey, StaticKeyResolver
from federation.messages import HttpRequest, HttpResponse
from federation.models import Catalog, Offering, Plan, Price
from federation.nonces import MemoryNonceStore

SCHEMA = {
    "type": "object",
    "properties": {
        "size_gb": {"type": "integer", "minimum": 1, "maximum": 1000},
        "name": {"type": "string", "maxLength": 64, "pattern": "^[a-z][a-z0-9-]*$"},
        "backups": {"type": "boolean", "default": True},
    },
    "required": ["size_gb", "name"],
    "additionalProperties": False,
}


def key(label: str) -> NodeKey:
    return NodeKey.from_seed(hashlib.sha256(label.encode()).digest())


def catalog(node: str, offerings: int) -> Catalog:
    """A catalog of ``offerings`` offerings with three plans each."""
    return Catalog(
        node=node,
        version=1,
        generated_at=datetime.now(UTC),
        offerings=tuple(
            Offering(
                id=f"offering-{i}",
                name=f"Offering {i} of {node}",
                description="Managed service run by the co-op on its own hosts. " * 3,
                kind=("storage", "compute", "backup", "hosted-app")[i % 4],
                module=f"module{i % 8}",
                tags=("managed", "eu"),
                plans=tuple(
                    Plan(
                        id=f"offering-{i}-plan-{p}",
                        name=f"Plan {p}",
                        description="A plan.",
                        parameters=SCHEMA,
                        price=Price(amount=f"{5 * (p + 1)}.00", currency="EUR", unit="month"),
                        capacity=10 * (p + 1),
                        region="eu-west",
                    )
                    for p in range(3)
                ),
            )
            for i in range(offerings)
        ),
    )


class ServedPeer:
    """One peer node answering catalog requests as a node would, and timing itself."""

    def __init__(self, name: str, offerings: int, consumer: NodeKey) -> None:
        self.name, self.key = name, key(name)
        self.signed: SignedCatalog = sign_catalog(catalog(name, offerings), self.key)
        self.body = self.signed.to_bytes()
        self.consumer_keys = StaticKeyResolver([consumer.trusted("consumer.example")])
        self.nonces = MemoryNonceStore()
        self.serving_seconds = 0.0

    def handle(self, raw: httpx.Request) -> httpx.Response:
        started = time.perf_counter()
        request = HttpRequest.from_httpx(raw)
        now = datetime.now(UTC)
        verify_request(request, keys=self.consumer_keys, nonces=self.nonces, now=now)
        if request.header("if-none-match") == self.signed.etag:
            answer = HttpResponse.build(304, [("ETag", self.signed.etag)])
        else:
            headers = [("Content-Type", "application/json"), ("ETag", self.signed.etag)]
            answer = HttpResponse.build(200, headers, self.body)
        signed = sign_response(answer, request=request, key=self.key, created=now).response
        response = httpx.Response(
            signed.status_code, headers=list(signed.headers), content=signed.body
        )
        self.serving_seconds += time.perf_counter() - started
        return response

    def client(self, consumer: NodeKey) -> PeerClient:
        peer = Peer(
            self.name, f"https://{self.name}", StaticKeyResolver([self.key.trusted(self.name)])
        )
        return PeerClient(peer=peer, key=consumer, transport=httpx.MockTransport(self.handle))


def sync_round(
    peers: list[ServedPeer], clients: list[PeerClient], held: list[SignedCatalog | None]
) -> tuple[float, float]:
    """Sync every peer once; the wall time and the serving side's share."""
    served_before = sum(p.serving_seconds for p in peers)
    started = time.perf_counter()
    for i, client in enumerate(clients):
        result = client.fetch_catalog(held=held[i])
        assert result.catalog is not None
        held[i] = result.catalog
    elapsed = time.perf_counter() - started
    return elapsed, sum(p.serving_seconds for p in peers) - served_before


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--peers", type=int, default=10)
    parser.add_argument("--offerings", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()

    consumer = key("consumer.example")
    peers = [ServedPeer(f"peer{i}.example", args.offerings, consumer) for i in range(args.peers)]
    clients = [peer.client(consumer) for peer in peers]
    size = len(peers[0].body)

    full, full_served, unchanged, unchanged_served = [], [], [], []
    for _ in range(args.rounds):
        held: list[SignedCatalog | None] = [None] * len(peers)
        elapsed, served = sync_round(peers, clients, held)
        full.append(elapsed)
        full_served.append(served)
        elapsed, served = sync_round(peers, clients, held)
        unchanged.append(elapsed)
        unchanged_served.append(served)
    for client in clients:
        client.close()

    full_s = statistics.median(full)
    full_client = statistics.median(f - s for f, s in zip(full, full_served, strict=True))
    per_peer_ms = statistics.median(unchanged) / len(peers) * 1000
    per_peer_client_ms = (
        statistics.median(
            (u - s) / len(peers) for u, s in zip(unchanged, unchanged_served, strict=True)
        )
        * 1000
    )
    rows = [
        (
            "catalog size per peer",
            f"{size / 1024:.0f} KiB, {args.offerings} offerings x 3 plans",
            "",
            "",
        ),
        (
            f"full sync, {len(peers)} peers (with serving)",
            f"{full_s * 1000:.0f} ms",
            "<= 1000 ms",
            full_s <= 1.0,
        ),
        ("  of which the client (sign, verify, parse)", f"{full_client * 1000:.0f} ms", "", ""),
        (
            "unchanged sync (304), per peer (with serving)",
            f"{per_peer_ms:.2f} ms",
            "<= 20 ms",
            per_peer_ms <= 20,
        ),
        ("  of which the client", f"{per_peer_client_ms:.2f} ms", "", ""),
    ]
    print(f"catalog sync, median of {args.rounds} rounds")
    print(f"{'figure':<48} {'measured':>36} {'target':>11}  ok")
    for name, measured, target, ok in rows:
        mark = "" if ok == "" else ("yes" if ok else "NO")
        print(f"{name:<48} {measured:>36} {target:>11}  {mark}")
    return 0 if full_s <= 1.0 and per_peer_ms <= 20 else 1


if __name__ == "__main__":
    sys.exit(main())
