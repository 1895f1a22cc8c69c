"""What API routes depend on: the database session, the settings, the acting identity."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from sqlmodel import Session

from infracms import db
from infracms.config import Settings
from infracms.errors import AuthenticationFailed, PermissionDenied
from infracms.keys import Keyring, load_keyring
from infracms.plugins import Plugins
from infracms.services import auth, organisations
from infracms.services.context import Actor

SESSION_COOKIE = "infracms_session"
CSRF_HEADER = "x-csrf-token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


async def get_settings(request: Request) -> Settings:
    """The app's settings."""
    settings: Settings = request.app.state.settings
    return settings


async def get_session(request: Request) -> AsyncIterator[Session]:
    """A session for this request: writing requests take the write lock up front.

    Opening and closing a session does no I/O worth a thread hop (the queries run in
    the sync routes and dependencies, in the thread pool), so this stays on the loop.
    """
    write = request.method not in SAFE_METHODS
    with db.session_scope(request.app.state.engine, write=write) as session:
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


def get_actor(request: Request, session: Annotated[Session, Depends(get_session)]) -> Actor:
    """Who is calling, checked before the route reads anything: an organisation named in
    the path that the caller is no member of answers 404 whether it exists or not."""
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
            if request.method not in SAFE_METHODS:
                auth.check_csrf(info.csrf_token, request.headers.get(CSRF_HEADER))
            return info.actor
    raise AuthenticationFailed("sign in, or send an API token as `Authorization: Bearer …`")


def get_actor_alone(request: Request) -> Actor:
    """Who is calling, found in a short read session of its own that ends before the
    route runs: for routes that talk to hosts over ssh for long and open their own short
    sessions, which must not wait behind this request's write lock (SQLite)."""
    with db.session_scope(request.app.state.engine) as session:
        return get_actor(request, session)


def get_admin_actor(actor: Annotated[Actor, Depends(get_actor)]) -> Actor:
    """The caller, if a node administrator: refused before the request's body is read."""
    if not actor.is_admin:
        raise PermissionDenied("this is for node administrators only")
    return actor


SessionDep = Annotated[Session, Depends(get_session)]
ActorDep = Annotated[Actor, Depends(get_actor)]
LoneActorDep = Annotated[Actor, Depends(get_actor_alone)]
AdminActorDep = Annotated[Actor, Depends(get_admin_actor)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
KeyringDep = Annotated[Keyring, Depends(get_keyring)]
PluginsDep = Annotated[Plugins, Depends(get_plugins)]
