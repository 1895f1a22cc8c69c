"""The peer client: every call a node makes to a peer (PROTOCOL.md sections 3-7).

Every request is signed with this node's key; every successful answer must carry a
valid signature by a key pinned for the peer; redirects are refused; only ``https``
is contacted (``http`` to loopback when allowed, for tests). Pass an
``httpx.MockTransport`` as ``transport`` in tests. Errors are ``PeerRequestError``
(the peer is down or refused) or ``VerificationError`` (the peer's answer is not
trustworthy); either way the caller keeps what it held before.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Generic, TypeVar

import httpx

from federation import urls
from federation._http import DEFAULT_TIMEOUT, Exchange, SignedHttp
from federation.broker import (
    API_VERSION_HEADER,
    ORIGINATING_IDENTITY_HEADER,
    REQUEST_IDENTITY_HEADER,
    binding_path,
    instance_path,
)
from federation.catalogs import SignedCatalog, check_catalog_progress, verify_catalog
from federation.encoding import canonical_json, utc_now
from federation.errors import BrokerError, MalformedMessage, PeerAnswerError, WitnessRefused
from federation.httpsig import SignaturePolicy
from federation.keys import KeyResolver, NodeKey
from federation.models.base import WireModel, load
from federation.models.osb import (
    BROKER_API_VERSION,
    BindRequest,
    BindResponse,
    DeprovisionResponse,
    LastOperationResponse,
    OSBCatalog,
    OSBError,
    ProvisionRequest,
    ProvisionResponse,
    UpdateRequest,
    UpdateResponse,
)
from federation.models.peering import PeeringAcceptance, PeeringRequest
from federation.rotation import SignedKeyRotation
from federation.witness import SIZE_MEDIA_TYPE, Cosignature, CosignatureVerifier
from federation.witness_api import (
    AddCheckpointRequest,
    parse_cosignatures,
    parse_size_conflict,
)

T = TypeVar("T", bound=WireModel)


@dataclass(frozen=True)
class Peer:
    """A peer as this node pinned it: name, base URL, and its keys."""

    name: str
    base_url: str
    keys: KeyResolver


@dataclass(frozen=True)
class CatalogFetch:
    """The result of a catalog sync: the catalog to keep, and whether it changed."""

    catalog: SignedCatalog | None
    changed: bool


@dataclass(frozen=True)
class BrokerAnswer(Generic[T]):
    """A successful OSB answer: its status (200, 201, 202, 410) and body."""

    status_code: int
    body: T

    @property
    def pending(self) -> bool:
        """202 Accepted: the operation goes on; poll ``last_operation``."""
        return self.status_code == 202


class PeerClient:
    """Talks to one pinned peer."""

    def __init__(
        self,
        *,
        peer: Peer,
        key: NodeKey,
        transport: httpx.BaseTransport | None = None,
        timeout: httpx.Timeout | float = DEFAULT_TIMEOUT,
        allow_loopback_http: bool = False,
        clock: Callable[[], datetime] = utc_now,
        policy: SignaturePolicy = SignaturePolicy(),
    ) -> None:
        self.peer = peer
        self._http = SignedHttp(
            base_url=peer.base_url,
            key=key,
            peer_keys=peer.keys,
            transport=transport,
            timeout=timeout,
            allow_loopback_http=allow_loopback_http,
            clock=clock,
            policy=policy,
        )

    def __enter__(self) -> PeerClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    def request_peering(self, request: PeeringRequest) -> PeeringAcceptance:
        """``POST /federation/v1/peering``: the invitee asks the inviter to pin it."""
        exchange = self._http.send("POST", urls.PEERING_PATH, body=_json(request))
        _expect(exchange, (200, 201), "peering")
        return load(PeeringAcceptance, exchange.response.body, "peering acceptance")

    def send_key_rotation(self, rotation: SignedKeyRotation) -> None:
        """``POST /federation/v1/key-rotation``: tell the peer about this node's new key."""
        exchange = self._http.send("POST", urls.KEY_ROTATION_PATH, body=rotation.to_bytes())
        _expect(exchange, (200, 204), "key rotation")

    def fetch_catalog(self, *, held: SignedCatalog | None = None) -> CatalogFetch:
        """``GET /federation/v1/catalog`` with ``If-None-Match``; verify a changed catalog."""
        headers = {"If-None-Match": held.etag} if held is not None else None
        exchange = self._http.send("GET", urls.CATALOG_PATH, headers=headers)
        if exchange.status_code == 304 and held is not None:
            return CatalogFetch(held, changed=False)
        _expect(exchange, (200,), "catalog")
        new = verify_catalog(exchange.response.body, keys=self.peer.keys, node=self.peer.name)
        etag = exchange.response.header("etag")
        if etag is not None and etag != new.etag:
            raise MalformedMessage(f"catalog ETag is {etag}, expected {new.etag} for its content")
        check_catalog_progress(held, new)
        return CatalogFetch(new, changed=True)

    def osb_catalog(self) -> OSBCatalog:
        """``GET /v2/catalog``."""
        return self._broker("GET", urls.OSB_CATALOG_PATH, OSBCatalog, ok=(200,)).body

    def provision(
        self,
        instance_id: str,
        request: ProvisionRequest,
        *,
        originating_identity: str | None = None,
    ) -> BrokerAnswer[ProvisionResponse]:
        """``PUT /v2/service_instances/:id?accepts_incomplete=true``; 202 awaits consent."""
        return self._broker(
            "PUT",
            instance_path(instance_id),
            ProvisionResponse,
            ok=(200, 201, 202),
            params={"accepts_incomplete": "true"},
            body=request,
            identity=originating_identity,
        )

    def update_instance(
        self,
        instance_id: str,
        request: UpdateRequest,
        *,
        originating_identity: str | None = None,
    ) -> BrokerAnswer[UpdateResponse]:
        """``PATCH /v2/service_instances/:id?accepts_incomplete=true``: another plan or other
        parameters; 202 while the provider applies it (poll ``last_operation``), 200 done."""
        return self._broker(
            "PATCH",
            instance_path(instance_id),
            UpdateResponse,
            ok=(200, 202),
            params={"accepts_incomplete": "true"},
            body=request,
            identity=originating_identity,
        )

    def last_operation(
        self,
        instance_id: str,
        *,
        service_id: str | None = None,
        plan_id: str | None = None,
        operation: str | None = None,
    ) -> LastOperationResponse:
        """``GET /v2/service_instances/:id/last_operation``."""
        params = _params(service_id=service_id, plan_id=plan_id, operation=operation)
        path = f"{instance_path(instance_id)}/last_operation"
        return self._broker("GET", path, LastOperationResponse, ok=(200,), params=params).body

    def bind(
        self, instance_id: str, binding_id: str, request: BindRequest
    ) -> BrokerAnswer[BindResponse]:
        """``PUT .../service_bindings/:binding_id``: the connection details (keep them secret)."""
        path = binding_path(instance_id, binding_id)
        return self._broker("PUT", path, BindResponse, ok=(200, 201, 202), body=request)

    def unbind(
        self, instance_id: str, binding_id: str, *, service_id: str, plan_id: str
    ) -> BrokerAnswer[DeprovisionResponse]:
        """``DELETE .../service_bindings/:binding_id``; 410 means already gone."""
        params = _params(service_id=service_id, plan_id=plan_id)
        path = binding_path(instance_id, binding_id)
        return self._broker("DELETE", path, DeprovisionResponse, ok=(200, 202, 410), params=params)

    def deprovision(
        self, instance_id: str, *, service_id: str, plan_id: str
    ) -> BrokerAnswer[DeprovisionResponse]:
        """``DELETE /v2/service_instances/:id?accepts_incomplete=true``; 410 means already gone."""
        params = _params(service_id=service_id, plan_id=plan_id, accepts_incomplete="true")
        path = instance_path(instance_id)
        return self._broker("DELETE", path, DeprovisionResponse, ok=(200, 202, 410), params=params)

    def submit_checkpoint(
        self, request: AddCheckpointRequest, *, witness: CosignatureVerifier
    ) -> tuple[Cosignature, ...]:
        """``POST /federation/v1/witness/add-checkpoint``: the peer's verified cosignatures.

        Lines by other keys are dropped (C2SP tlog-witness); a line by ``witness`` that
        does not verify over the checkpoint raises ``SignatureInvalid``.
        """
        exchange = self._http.send(
            "POST",
            urls.ADD_CHECKPOINT_PATH,
            body=request.to_bytes(),
            headers={"Content-Type": "text/plain; charset=utf-8", "Accept": "text/plain"},
        )
        if exchange.status_code != 200:
            raise _witness_refusal(exchange)
        mine = tuple(c for c in parse_cosignatures(exchange.response.body) if witness.matches(c))
        if not mine:
            raise MalformedMessage(f"witness answered no cosignature by {witness.vkey}")
        for cosignature in mine:
            witness.verify(request.checkpoint_text, cosignature)
        return mine

    def _broker(
        self,
        method: str,
        path: str,
        model: type[T],
        *,
        ok: tuple[int, ...],
        params: dict[str, str] | None = None,
        body: WireModel | None = None,
        identity: str | None = None,
    ) -> BrokerAnswer[T]:
        headers = {
            API_VERSION_HEADER: BROKER_API_VERSION,
            REQUEST_IDENTITY_HEADER: str(uuid.uuid4()),
        }
        if identity is not None:
            headers[ORIGINATING_IDENTITY_HEADER] = identity
        content = _json(body) if body is not None else b""
        exchange = self._http.send(method, path, params=params, body=content, headers=headers)
        if exchange.status_code not in ok:
            raise _broker_error(exchange)
        raw = exchange.response.body or b"{}"
        return BrokerAnswer(exchange.status_code, load(model, raw, f"{method} {path} answer"))


def _json(model: WireModel) -> bytes:
    return canonical_json(model.to_json_value())


def _params(**values: str | None) -> dict[str, str]:
    return {name: value for name, value in values.items() if value is not None}


def _expect(exchange: Exchange, ok: tuple[int, ...], what: str) -> None:
    if exchange.status_code not in ok:
        raise PeerAnswerError(
            f"{what}: {exchange.request.method} {exchange.request.url} answered "
            f"{exchange.status_code}, expected {' or '.join(map(str, ok))}: {_excerpt(exchange)}",
            status_code=exchange.status_code,
        )


def _broker_error(exchange: Exchange) -> BrokerError:
    try:
        error = load(OSBError, exchange.response.body, "OSB error")
    except MalformedMessage:
        error = OSBError(description=_excerpt(exchange))
    return BrokerError(
        f"{exchange.request.method} {exchange.request.url} answered {exchange.status_code}: "
        f"{error.error or 'error'}: {error.description or ''}".rstrip(": "),
        status_code=exchange.status_code,
        error=error.error,
        description=error.description,
    )


def _witness_refusal(exchange: Exchange) -> WitnessRefused:
    latest = None
    content_type = exchange.response.header("content-type") or ""
    if exchange.status_code == 409 and content_type.startswith(SIZE_MEDIA_TYPE):
        latest = parse_size_conflict(exchange.response.body)
    return WitnessRefused(
        f"witness {exchange.request.url} refused the checkpoint with {exchange.status_code}"
        + (f", its latest size is {latest}" if latest is not None else f": {_excerpt(exchange)}"),
        status_code=exchange.status_code,
        latest_size=latest,
    )


def _excerpt(exchange: Exchange) -> str:
    return exchange.response.body[:200].decode("utf-8", errors="replace")
