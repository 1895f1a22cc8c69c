"""Errors on pages, mapped in one place.

A form whose values a service refuses (InvalidInput, Conflict) is shown again with
the user's values, a summary and each message beside its field: `submit` does that.
So is a form whose action a peer node refused or did not answer (FederationError):
nothing was changed here, and the page says what the peer said.
Everything else becomes a page, for HTML requests only: a signed-out browser is sent
to /login, PermissionDenied is a 403 page, NotFound a 404 page. Paths under /api/
keep the problem+json responses of ``api/problems.py``: its handlers are called for them.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import RedirectResponse
from sqlmodel import Session
from starlette.exceptions import HTTPException as StarletteHTTPException

from federation.errors import FederationError, PeerRequestError
from infracms.api.problems import http_error_headers
from infracms.errors import AuthenticationFailed, Conflict, InfracmsError, InvalidInput
from infracms.web.session import PasswordMustChange, TotpMustEnrol, login_url
from infracms.web.templating import render

API_PREFIX = "/api/"
FORM_ERRORS = (InvalidInput, Conflict)
# Details that only say "some fields are wrong": the form says it better.
GENERIC_DETAILS = frozenset({"the request has invalid fields", "the form has invalid fields"})
FIELDS_SUMMARY = "Please correct the fields marked below."


@dataclass(frozen=True)
class FormProblem:
    """Why a form was refused: a summary, and a message for each field by its form name."""

    summary: str
    status: int
    errors: dict[str, str] = field(default_factory=dict)

    @classmethod
    def of(cls, exc: InfracmsError) -> FormProblem:
        """The problem a service error describes; `groups.0` is reported on `groups`."""
        errors: dict[str, str] = {}
        for key, message in exc.errors.items():
            errors.setdefault(key.split(".")[0], plain_words(message))
        summary = FIELDS_SUMMARY if exc.detail in GENERIC_DETAILS and errors else exc.detail
        return cls(summary=summary, status=exc.status, errors=errors)

    @classmethod
    def of_peer(cls, exc: FederationError) -> FormProblem:
        """A peer that refused, failed to answer, or sent what does not verify."""
        if isinstance(exc, PeerRequestError):
            return cls(summary=f"the peer did not do it: {exc}", status=502)
        return cls(summary=f"{exc}", status=422)


# pydantic's messages, said as a form would say them (the API keeps pydantic's own)
PLAIN_WORDS = (
    (re.compile(r"^Field required$"), "must be filled in"),
    (re.compile(r"^Extra inputs are not permitted$"), "is not something this form takes"),
    (re.compile(r"^Input should be a valid integer.*"), "must be a whole number"),
    (re.compile(r"^Input should be a valid number.*"), "must be a number"),
    (re.compile(r"^Input should be a valid boolean.*"), "must be yes or no"),
    (re.compile(r"^Input should be a valid (list|array).*"), "must be a list"),
    (re.compile(r"^Input should be a valid dictionary.*"), "must be a mapping of names to values"),
    (re.compile(r"^Input should be a valid string.*"), "must be text"),
    (re.compile(r"^Input should be greater than or equal to (\S+)$"), r"must be at least \1"),
    (re.compile(r"^Input should be less than or equal to (\S+)$"), r"must be at most \1"),
    (re.compile(r"^Input should be greater than (\S+)$"), r"must be more than \1"),
    (re.compile(r"^Input should be less than (\S+)$"), r"must be less than \1"),
    (re.compile(r"^Input should be (.+)$"), r"must be \1"),
    (re.compile(r"^String should have at least 1 character$"), "must not be empty"),
    (
        re.compile(r"^String should have at (least|most) (\d+) characters?$"),
        r"must have at \1 \2 characters",
    ),
    (re.compile(r"^String should match pattern .*"), "is not in the expected form"),
    (re.compile(r"^List should have at (least|most) (\d+) items?.*"), r"must have at \1 \2 items"),
)


def plain_words(message: str) -> str:
    """A field's error in a form's words: pydantic's generic messages are rephrased;
    the messages infracms' validators write are already sentences and kept."""
    for pattern, words in PLAIN_WORDS:
        if pattern.match(message):
            return pattern.sub(words, message)
    return message


def submit(
    session: Session,
    action: Callable[[], Response],
    on_error: Callable[[FormProblem], Response],
    problem_of: Callable[[InfracmsError], FormProblem] = FormProblem.of,
) -> Response:
    """Run a form's `action`; if a service refuses the values, show the form again.

    `problem_of` maps the service's error keys to the form's field names (the
    definition form keeps ``settings.<field>`` apart, for one).
    """
    try:
        return action()
    except FORM_ERRORS as exc:
        session.rollback()  # nothing the refused action flushed may show on the page
        return on_error(problem_of(exc))
    except FederationError as exc:
        session.rollback()
        return on_error(FormProblem.of_peer(exc))


def redirect(url: str) -> RedirectResponse:
    """See other: after a form post, or to /login."""
    return RedirectResponse(url, status_code=303)


def install(app: FastAPI) -> None:
    """Render errors of page requests as pages; leave /api/ to the problem handlers."""
    for kind, page_handler in (
        (InfracmsError, _infracms_page),
        (StarletteHTTPException, _http_page),
        (RequestValidationError, _validation_page),
    ):
        api_handler = app.exception_handlers.get(kind)
        if api_handler is None:
            raise RuntimeError(f"install the API's handler for {kind.__name__} before the pages")
        app.add_exception_handler(kind, _dispatch(api_handler, page_handler))


def _dispatch(
    api_handler: Callable[[Request, Any], Any], page_handler: Callable[[Request, Any], Response]
) -> Callable[[Request, Exception], Any]:
    async def handle(request: Request, exc: Exception) -> Response:
        if request.url.path.startswith(API_PREFIX):
            result = api_handler(request, exc)
            response: Response = await result if inspect.isawaitable(result) else result
            return response
        return page_handler(request, exc)

    return handle


def _infracms_page(request: Request, exc: InfracmsError) -> Response:
    if isinstance(exc, AuthenticationFailed):
        return redirect(login_url(request))
    if isinstance(exc, PasswordMustChange):
        return redirect("/account?notice=password-must-change")
    if isinstance(exc, TotpMustEnrol):
        return redirect("/account?notice=totp-required")
    return error_page(request, exc.status, PAGE_TITLES.get(exc.code, exc.title), exc.detail)


# A page's heading for each kind of error, in a person's words (the API's problem
# documents keep their titles: "Forbidden", "Conflict", …)
PAGE_TITLES = {
    "forbidden": "Not allowed",
    "invalid-input": "That cannot be done as asked",
    "payload-too-large": "Too much at once",
    "conflict": "That cannot be done now",
    "not-found": "Not found",
    "secret": "A secret cannot be used",
    "audit-unavailable": "The audit log cannot be written",
}


def _http_page(request: Request, exc: StarletteHTTPException) -> Response:
    titles = {404: "Page not found", 405: "This address does not take that"}
    title = titles.get(exc.status_code, str(exc.detail))
    detail = "There is no page at this address." if exc.status_code == 404 else str(exc.detail)
    response = error_page(request, exc.status_code, title, detail)
    response.headers.update(http_error_headers(request, exc))
    return response


def _validation_page(request: Request, exc: RequestValidationError) -> Response:
    wrong = ", ".join(dict.fromkeys(str(error["loc"][-1]) for error in exc.errors()))
    detail = (
        f"This address has a value the page cannot use ({wrong}): follow a link from the "
        "page rather than editing the address."
    )
    return error_page(request, 400, "This link is not right", detail)


def error_page(request: Request, status: int, title: str, detail: str) -> Response:
    """A page that says what went wrong."""
    context = {"title": title, "detail": detail, "status": status}
    return render(request, "error.html", context, status=status)
