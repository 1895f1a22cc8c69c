"""One signed exchange with a peer: build, sign, send without redirects, verify the answer."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime

import httpx

from federation.errors import MessageTooLarge, PeerTimeout, PeerUnreachable, RedirectRefused
from federation.httpsig import SignaturePolicy, new_nonce, sign_request, verify_response
from federation.keys import KeyResolver, NodeKey
from federation.limits import MAX_ANSWER_BYTES
from federation.messages import HttpRequest, HttpResponse
from federation.urls import check_peer_url

DEFAULT_TIMEOUT = httpx.Timeout(10.0, connect=5.0)
USER_AGENT = "infracms-federation/1"


@dataclass(frozen=True)
class Exchange:
    """A signed request and the answer to it, as sent and received."""

    request: HttpRequest
    response: HttpResponse

    @property
    def status_code(self) -> int:
        """The answer's status."""
        return self.response.status_code


class SignedHttp:
    """Sends signed requests to one peer; refuses redirects, other schemes and bad answers."""

    def __init__(
        self,
        *,
        base_url: str,
        key: NodeKey,
        peer_keys: KeyResolver | None,
        transport: httpx.BaseTransport | None,
        timeout: httpx.Timeout | float,
        allow_loopback_http: bool,
        clock: Callable[[], datetime],
        policy: SignaturePolicy,
    ) -> None:
        check_peer_url(base_url, allow_loopback_http=allow_loopback_http)
        self.base_url = base_url
        self._key, self._peer_keys, self._clock, self._policy = key, peer_keys, clock, policy
        self._allow_loopback_http = allow_loopback_http
        self._client = httpx.Client(
            transport=transport, timeout=timeout, follow_redirects=False, trust_env=False
        )

    def close(self) -> None:
        """Close the connection pool."""
        self._client.close()

    def send(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        body: bytes = b"",
        headers: Mapping[str, str] | None = None,
    ) -> Exchange:
        """Sign and send one request; verify a signed answer (2xx and 304 must be signed)."""
        url = str(httpx.URL(self.base_url + path, params=params))
        check_peer_url(url, allow_loopback_http=self._allow_loopback_http)
        signed = sign_request(
            HttpRequest.build(method, url, _headers(headers, body), body),
            key=self._key,
            created=self._clock(),
            nonce=new_nonce(),
        ).request
        response = self._transmit(signed)
        if self._peer_keys is not None and (
            response.status_code < 300 or response.status_code == 304
        ):
            verify_response(
                response,
                request=signed,
                keys=self._peer_keys,
                now=self._clock(),
                policy=self._policy,
            )
        return Exchange(signed, response)

    def _transmit(self, signed: HttpRequest) -> HttpResponse:
        request = self._client.build_request(
            signed.method, signed.url, headers=list(signed.headers), content=signed.body
        )
        try:
            answer = self._client.send(request, stream=True)
            try:
                body = _read_bounded(answer, f"{signed.method} {signed.url} answer")
            finally:
                answer.close()
        except httpx.TimeoutException as exc:
            raise PeerTimeout(f"{signed.method} {signed.url} timed out: {exc!r}") from exc
        except httpx.TransportError as exc:
            raise PeerUnreachable(f"{signed.method} {signed.url} failed: {exc!r}") from exc
        if 300 <= answer.status_code < 400 and answer.status_code != 304:
            location = answer.headers.get("location")
            raise RedirectRefused(
                f"{signed.method} {signed.url} answered {answer.status_code} to {location!r}; "
                "redirects are not followed",
                status_code=answer.status_code,
                location=location,
            )
        return HttpResponse.build(answer.status_code, answer.headers.multi_items(), body)


def _read_bounded(answer: httpx.Response, what: str) -> bytes:
    """The answer's body, read no further than ``MAX_ANSWER_BYTES`` (then refused)."""
    declared = answer.headers.get("content-length", "")
    if declared.isdigit():
        check_size_declared(int(declared), what)
    chunks: list[bytes] = []
    size = 0
    for chunk in answer.iter_bytes():
        size += len(chunk)
        check_size_declared(size, what)
        chunks.append(chunk)
    return b"".join(chunks)


def check_size_declared(size: int, what: str) -> None:
    """Refuse an answer of ``size`` bytes over ``MAX_ANSWER_BYTES``."""
    if size > MAX_ANSWER_BYTES:
        raise MessageTooLarge(f"{what} is over {MAX_ANSWER_BYTES} bytes; not read further")


def _headers(extra: Mapping[str, str] | None, body: bytes) -> list[tuple[str, str]]:
    headers = [("Accept", "application/json"), ("User-Agent", USER_AGENT)]
    names = {name.lower() for name in (extra or {})}
    headers = [(k, v) for k, v in headers if k.lower() not in names]
    headers += list((extra or {}).items())
    if body and "content-type" not in names:
        headers.append(("Content-Type", "application/json"))
    return headers
