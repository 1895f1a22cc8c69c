"""A FederationError that escapes a route (a peer answered badly, or not at all) is a
problem+json gateway answer that says what happened, never a 500."""

from __future__ import annotations

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from federation.errors import (
    BrokerError,
    FederationError,
    PeerTimeout,
    PeerUnreachable,
    RedirectRefused,
    SignatureInvalid,
)
from infracms.api import problems

CASES: list[tuple[FederationError, int, str]] = [
    (PeerTimeout("GET https://a.test/v2/catalog timed out"), 504, "peer-timeout"),
    (PeerUnreachable("PATCH https://a.test/v2/x failed: refused"), 503, "peer-unreachable"),
    (
        BrokerError(
            "PATCH https://a.test/v2/x answered 422: ConcurrencyError: still applying",
            status_code=422,
            error="ConcurrencyError",
            description="still applying",
        ),
        502,
        "peer-error",
    ),
    (SignatureInvalid("the answer's signature does not verify"), 502, "peer-error"),
    (RedirectRefused("answered 302", status_code=302, location="https://x"), 502, "peer-error"),
]


@pytest.fixture
def client() -> TestClient:
    app = FastAPI()
    problems.install(app)

    @app.get("/api/v1/fails/{case}")
    def fails(case: int) -> None:
        raise CASES[case][0]

    return TestClient(app)


@pytest.mark.parametrize("case", range(len(CASES)))
def test_peer_failures_are_gateway_problems(client: TestClient, case: int) -> None:
    error, status, code = CASES[case]
    answer = client.get(f"/api/v1/fails/{case}")
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    body = answer.json()
    assert body["type"] == f"https://infracms.org/problems/{code}" and body["status"] == status
    assert body["error"] == type(error).__name__
    assert body["detail"] == f"nothing was changed here: {type(error).__name__}: {error}"
    assert body["instance"] == f"/api/v1/fails/{case}"


def test_an_error_answer_carries_the_peers_status_and_code(client: TestClient) -> None:
    body = client.get("/api/v1/fails/2").json()
    assert (body["peer_status"], body["peer_error"]) == (422, "ConcurrencyError")
    assert "peer_status" not in client.get("/api/v1/fails/3").json()
