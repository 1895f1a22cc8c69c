"""What API routes depend on: the database session, the settings, the acting identity."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Annotated, TypeVar

from fastapi import Depends, Request
from sqlmodel import Session
from starlette.concurrency import run_in_threadpool

from infracms import db
from infracms.config import Settings
from infracms.errors import AuthenticationFailed, PermissionDenied
from infracms.keys import Keyring, load_keyring
from infracms.plugins import Plugins
from infracms.services import auth, organisations, totp
from infracms.services.context import Actor

SESSION_COOKIE = "infracms_session"
CSRF_HEADER = "x-csrf-token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
T = TypeVar("T")


async def get_settings(request: Request) -> Settings:
    """The app's settings."""
    settings: Settings = request.app.state.settings
    return settings


def _semaphore(request: Request, name: str, size: int) -> asyncio.Semaphore:
    """One of the app's semaphores, made on first use, on the loop (no await between)."""
    found: asyncio.Semaphore | None = getattr(request.app.state, name, None)
    if found is None:
        found = asyncio.Semaphore(size)
        setattr(request.app.state, name, found)
    return found


async def session_slot(request: Request) -> AsyncIterator[None]:
    """Wait, on the event loop, for one of the requests' session slots, and hold it
    until the request ends (`db.request_slots` says why)."""
    slots = db.request_slots(request.app.state.engine)
    async with _semaphore(request, "session_slots", slots.sessions):
        yield


async def short_read(request: Request, read: Callable[[Request, Session], T]) -> T:
    """`read(request, session)` in a short read session of its own, in one thread, with
    a lookup slot held (waited for on the loop) only meanwhile."""
    slots = db.request_slots(request.app.state.engine)
    engine = request.app.state.engine

    def in_session() -> T:
        with db.session_scope(engine) as session:
            return read(request, session)

    async with _semaphore(request, "lookup_slots", slots.lookups):
        return await run_in_threadpool(in_session)


async def get_session(
    request: Request, _slot: Annotated[None, Depends(session_slot)]
) -> AsyncIterator[Session]:
    """The route's session: on a writing request its first transaction takes the write
    lock, at the route's first query, in the route's thread, and holds it until the
    service commits (`db.request_session`). Nothing here queries: opening and closing a
    session does no I/O worth a thread hop, so this stays on the loop."""
    write = request.method not in SAFE_METHODS
    with db.request_session(request.app.state.engine, write=write) as session:
        yield session


async def get_plugins(request: Request) -> Plugins:
    """The plugin manager and module registry loaded at start-up."""
    plugins: Plugins = request.app.state.plugins
    return plugins


def get_keyring(settings: Annotated[Settings, Depends(get_settings)]) -> Keyring:
    """The node's keyring, read from the key file."""
    return load_keyring(settings)


def request_id(request: Request) -> str | None:
    """The id given to this request by the middleware."""
    value: str | None = getattr(request.state, "request_id", None)
    return value


async def get_actor(request: Request) -> Actor:
    """Who is calling: a bearer token, or a web session (then unsafe methods need CSRF),
    checked before the route reads anything: an organisation named in the path that the
    caller is no member of answers 404 whether it exists or not.

    Found in a short read session of its own, opened and closed in one thread before
    the route runs: checking a token never takes, or waits for, the write lock, and the
    route's write transaction does not start until the route itself queries."""
    return await short_read(request, actor_of)


def actor_of(request: Request, session: Session) -> Actor:
    """The caller's actor, looked up in `session` (reads only), and refused an
    organisation in the path it is no member of."""
    actor = _authenticate(request, session)
    org = request.path_params.get("org")
    if org is not None:
        organisations.check_visible(session=session, actor=actor, name=org)
    return actor


def _authenticate(request: Request, session: Session) -> Actor:
    """A bearer token, or a web session (then unsafe methods need CSRF)."""
    header = request.headers.get("authorization", "")
    if header.lower().startswith("bearer "):
        return auth.token_actor(
            session=session, raw=header[7:].strip(), request_id=request_id(request)
        )
    cookie = request.cookies.get(SESSION_COOKIE)
    if cookie:
        info = auth.session_info(session=session, raw_token=cookie, request_id=request_id(request))
        if info is not None:
            if totp.must_enrol(request.app.state.settings, info.user):
                raise PermissionDenied("set up two-factor sign-in first: this node requires it")
            if request.method not in SAFE_METHODS:
                auth.check_csrf(info.csrf_token, request.headers.get(CSRF_HEADER))
            if info.user.password_must_change:
                _refuse_until_password_changed(request)
            return info.actor
    raise AuthenticationFailed("sign in, or send an API token as `Authorization: Bearer …`")


PASSWORD_CHANGE = ("POST", "/api/v1/me/password")


def _refuse_until_password_changed(request: Request) -> None:
    """A session opened with a one-time password (an admin's reset) may only replace it,
    as the pages allow only the password page: every other call is refused. API tokens
    are separate credentials, made by their user: a reset leaves them working."""
    if (request.method, request.url.path) != PASSWORD_CHANGE:
        raise PermissionDenied(
            "you signed in with a one-time password: choose a new one first, on your "
            "Account page or with POST /api/v1/me/password (current_password, "
            "new_password); until then nothing else is allowed"
        )


# Routes that talk to hosts over ssh for long and open their own short sessions: the
# lookup is as short as any now.
get_actor_alone = get_actor


def get_admin_actor(actor: Annotated[Actor, Depends(get_actor)]) -> Actor:
    """The caller, if a node administrator or a node token (the service then decides what
    the token may do): refused before the request's body is read."""
    if not (actor.is_admin or actor.node_scope):
        raise PermissionDenied("this is for node administrators only")
    return actor


SessionDep = Annotated[Session, Depends(get_session)]
ActorDep = Annotated[Actor, Depends(get_actor)]
LoneActorDep = Annotated[Actor, Depends(get_actor_alone)]
AdminActorDep = Annotated[Actor, Depends(get_admin_actor)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
KeyringDep = Annotated[Keyring, Depends(get_keyring)]
PluginsDep = Annotated[Plugins, Depends(get_plugins)]
