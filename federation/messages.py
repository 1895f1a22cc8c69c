"""Framework-neutral HTTP messages, as signing and verification see them.

The node builds an ``HttpRequest`` from whatever served the request (Starlette, a
test client) and the peer client builds one from an ``httpx.Request``. The URL must
be the one the peer signed: the node's public base URL with the request's path and
query, never a URL rebuilt from a ``Host`` header behind a proxy.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import httpx


def _pairs(headers: Iterable[tuple[str, str]]) -> tuple[tuple[str, str], ...]:
    return tuple((str(name), str(value)) for name, value in headers)


@dataclass(frozen=True)
class HttpRequest:
    """A request: method, absolute URL, header field lines in order, and the body bytes."""

    method: str
    url: str
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes = field(default=b"", repr=False)

    @classmethod
    def build(
        cls, method: str, url: str, headers: Iterable[tuple[str, str]] = (), body: bytes = b""
    ) -> HttpRequest:
        """A request from any iterable of (name, value) pairs."""
        return cls(method=method.upper(), url=url, headers=_pairs(headers), body=body)

    @classmethod
    def from_httpx(cls, request: httpx.Request) -> HttpRequest:
        """The request httpx is about to send (its body must already be read)."""
        return cls.build(
            request.method, str(request.url), request.headers.multi_items(), request.content
        )

    def header(self, name: str) -> str | None:
        """All lines of a field, combined with ``", "`` as RFC 9110 does; None if absent."""
        return _combined(self.headers, name)

    def with_headers(self, extra: Iterable[tuple[str, str]]) -> HttpRequest:
        """A copy with ``extra`` fields replacing any of the same name."""
        return HttpRequest(self.method, self.url, _replace(self.headers, extra), self.body)


@dataclass(frozen=True)
class HttpResponse:
    """A response: status, header field lines in order, and the body bytes."""

    status_code: int
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes = field(default=b"", repr=False)

    @classmethod
    def build(
        cls, status_code: int, headers: Iterable[tuple[str, str]] = (), body: bytes = b""
    ) -> HttpResponse:
        """A response from any iterable of (name, value) pairs."""
        return cls(status_code=status_code, headers=_pairs(headers), body=body)

    @classmethod
    def from_httpx(cls, response: httpx.Response) -> HttpResponse:
        """A response httpx received (its body must already be read)."""
        return cls.build(response.status_code, response.headers.multi_items(), response.content)

    def header(self, name: str) -> str | None:
        """All lines of a field, combined with ``", "``; None if absent."""
        return _combined(self.headers, name)

    def with_headers(self, extra: Iterable[tuple[str, str]]) -> HttpResponse:
        """A copy with ``extra`` fields replacing any of the same name."""
        return HttpResponse(self.status_code, _replace(self.headers, extra), self.body)


def _combined(headers: tuple[tuple[str, str], ...], name: str) -> str | None:
    values = [value.strip(" \t") for key, value in headers if key.lower() == name.lower()]
    return ", ".join(values) if values else None


def _replace(
    headers: tuple[tuple[str, str], ...], extra: Iterable[tuple[str, str]]
) -> tuple[tuple[str, str], ...]:
    extra = _pairs(extra)
    replaced = {name.lower() for name, _ in extra}
    return tuple((k, v) for k, v in headers if k.lower() not in replaced) + extra


@dataclass
class LibraryRequest:
    """The request shape ``http_message_signatures`` resolves components from."""

    method: str
    url: str
    headers: httpx.Headers


@dataclass
class LibraryResponse:
    """The response shape ``http_message_signatures`` resolves components from."""

    status_code: int
    headers: httpx.Headers
    request: LibraryRequest


def library_request(request: HttpRequest) -> LibraryRequest:
    """A mutable view of ``request`` for the signing library."""
    return LibraryRequest(request.method, request.url, httpx.Headers(list(request.headers)))


def library_response(response: HttpResponse, request: HttpRequest) -> LibraryResponse:
    """A mutable view of ``response`` (answering ``request``) for the signing library."""
    headers = httpx.Headers(list(response.headers))
    return LibraryResponse(response.status_code, headers, library_request(request))
