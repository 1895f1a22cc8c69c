"""Attacks on the people of a node: accounts, passwords, sessions and API tokens.

An organisation owner (with their session or their token) tries to disable, reset,
edit or delete a node admin and the owner of another organisation; a disabled user's
live session and token are tried at once; a node token tries organisation routes and
an organisation token node routes; a password is changed without the current one.
Each refused attack changes nothing (accounts, sessions, tokens, audit log); what
succeeds is audited."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, select

from infracms.db import session_scope
from infracms.errors import Conflict
from infracms.models import AuditEntry
from infracms.services import user_lifecycle
from tests.helpers import ADMIN, password_of
from tests.security._people_support import API, People, issue, login, people, state

pytestmark = [pytest.mark.security]
__all__ = ["people"]  # the fixture

# what an owner of one organisation tries against others' accounts
AGAINST_ACCOUNTS = [
    ("post", "/users/{who}/disable", None),
    ("post", "/users/{who}/password-reset", {}),
    ("post", "/users/{who}/password-reset", {"password": "chosen-by-the-attacker"}),
    ("patch", "/users/{who}", {"email": "attacker@example.org"}),
    ("patch", "/users/{who}", {"is_admin": False}),
    ("delete", "/users/{who}", None),
]

# organisation content a node token must not reach
ORG_ROUTES = [
    ("get", "/orgs/clinic/hosts", None),
    ("post", "/orgs/clinic/hosts", {"name": "h9", "address": "198.51.100.9"}),
    ("get", "/orgs/clinic/groups", None),
    ("post", "/orgs/clinic/groups", {"name": "g9"}),
    ("get", "/orgs/clinic/credentials", None),
    ("get", "/orgs/clinic/definitions", None),
    ("get", "/orgs/clinic/runs", None),
    ("get", "/audit/entries?organisation=clinic", None),
]

# node-level work an organisation token (even an owner's) must not reach
NODE_ROUTES = [
    ("get", "/users", None),
    ("post", "/users", {"username": "mallory", "password": "a-long-password-1"}),
    ("post", "/users/admin/disable", None),
    ("post", "/users/admin/password-reset", {}),
    ("put", "/modules/base/availability", {"available": True}),
    ("get", "/peers", None),
    ("post", "/orgs", {"name": "phantom"}),
]


def _call(client: TestClient, method: str, path: str, body: object, **kwargs: object):  # type: ignore[no-untyped-def]
    if body is None:
        return client.request(method, API + path, **kwargs)
    return client.request(method, API + path, json=body, **kwargs)


@contextmanager
def signed_in(people: People, username: str, password: str | None = None) -> Iterator[TestClient]:
    """The client with a live session of `username` (cookie and CSRF header)."""
    result = login(people.engine, people.settings, username, password)
    people.client.cookies.set("infracms_session", result.token)
    people.client.headers["x-csrf-token"] = result.csrf_token
    try:
        yield people.client
    finally:
        people.client.cookies.clear()
        people.client.headers.pop("x-csrf-token", None)


@pytest.mark.parametrize(("method", "path", "body"), AGAINST_ACCOUNTS)
@pytest.mark.parametrize("who", ["admin", "boris"])
def test_an_owner_cannot_touch_an_admin_or_another_orgs_user(
    people: People, method: str, path: str, body: object, who: str
) -> None:
    token = issue(people.engine, "olga", organisation="clinic", role="owner")
    before = state(people.engine)
    by_token = _call(
        people.client, method, path.format(who=who), body, headers=people.bearer(token)
    )
    assert by_token.status_code == 403, by_token.text
    with signed_in(people, "olga") as client:
        before = state(people.engine)  # the login itself is audited
        by_session = _call(client, method, path.format(who=who), body)
    assert by_session.status_code == 403, by_session.text
    assert state(people.engine) == before


def test_an_owner_cannot_issue_a_node_token(people: People) -> None:
    with signed_in(people, "olga") as client:
        before = state(people.engine)
        refused = client.post(f"{API}/tokens", json={"name": "n", "scope": "node"})
    assert refused.status_code == 403, refused.text
    assert state(people.engine) == before


def test_a_disabled_users_session_and_token_are_refused_at_once(people: People) -> None:
    token = issue(people.engine, "olga", organisation="clinic", role="owner")
    session = login(people.engine, people.settings, "olga")
    cookie = {"infracms_session": session.token}
    assert people.client.get(f"{API}/me", headers=people.bearer(token)).status_code == 200
    people.client.cookies.update(cookie)
    assert people.client.get(f"{API}/me").status_code == 200
    people.client.cookies.clear()

    admin = issue(people.engine, "root2", scope="node")
    done = people.client.post(f"{API}/users/olga/disable", headers=people.bearer(admin))
    assert done.status_code == 200, done.text

    refused = people.client.get(f"{API}/orgs/clinic/hosts", headers=people.bearer(token))
    assert refused.status_code == 401 and "disabled" in refused.text
    people.client.cookies.update(cookie)
    assert people.client.get(f"{API}/me").status_code == 401
    assert people.client.get("/orgs/clinic", follow_redirects=False).status_code == 303
    people.client.cookies.clear()
    with pytest.raises(Exception, match="disabled"):
        login(people.engine, people.settings, "olga")
    [entry] = _entries(people, "user.disable")
    assert entry.subject == "user:olga" and entry.actor_name.startswith("root2 (")
    assert json.loads(entry.payload) == {"sessions_ended": 1}


@pytest.mark.parametrize(("method", "path", "body"), ORG_ROUTES)
def test_a_node_token_cannot_reach_organisation_content(
    people: People, method: str, path: str, body: object
) -> None:
    token = issue(people.engine, "admin", scope="node")
    before = state(people.engine)
    refused = _call(people.client, method, path, body, headers=people.bearer(token))
    assert refused.status_code == 403, refused.text
    assert state(people.engine) == before


def test_a_node_token_does_node_work(people: People) -> None:
    token = issue(people.engine, "admin", scope="node")
    auth_header = people.bearer(token)
    me = people.client.get(f"{API}/me", headers=auth_header).json()
    assert me["node_scope"] is True and me["is_admin"] is False
    made = people.client.post(
        f"{API}/users",
        json={"username": "nadia", "password": "a-long-password-1"},
        headers=auth_header,
    )
    assert made.status_code == 201, made.text
    member = people.client.put(
        f"{API}/orgs/clinic/members",
        json={"username": "nadia", "role": "viewer"},
        headers=auth_header,
    )
    assert member.status_code in (200, 201), member.text
    available = people.client.put(
        f"{API}/modules/base/availability", json={"available": True}, headers=auth_header
    )
    assert available.status_code == 200, available.text
    assert people.client.get(f"{API}/peers", headers=auth_header).status_code == 200
    assert [e.actor_name for e in _entries(people, "user.create")][-1].startswith("admin (icms_")


def test_a_node_token_stops_when_its_user_is_no_longer_an_admin(people: People) -> None:
    token = issue(people.engine, "root2", scope="node")
    demoted = people.client.patch(
        f"{API}/users/root2",
        json={"is_admin": False},
        headers=people.bearer(issue(people.engine, "admin", scope="node")),
    )
    assert demoted.status_code == 200, demoted.text
    refused = people.client.get(f"{API}/users", headers=people.bearer(token))
    assert refused.status_code == 401 and "node administrator" in refused.text


@pytest.mark.parametrize(("method", "path", "body"), NODE_ROUTES)
def test_an_org_token_cannot_reach_node_routes(
    people: People, method: str, path: str, body: object
) -> None:
    token = issue(people.engine, "olga", organisation="clinic", role="owner")
    before = state(people.engine)
    refused = _call(people.client, method, path, body, headers=people.bearer(token))
    assert refused.status_code == 403, refused.text
    assert state(people.engine) == before


@pytest.mark.parametrize(
    "body",
    [
        {"new_password": "a-brand-new-password"},
        {"current_password": "", "new_password": "a-brand-new-password"},
        {"current_password": "not-the-password", "new_password": "a-brand-new-password"},
    ],
)
def test_a_password_is_not_changed_without_the_current_one(people: People, body: dict) -> None:
    with signed_in(people, "olga") as client:
        before = state(people.engine)
        refused = client.post(f"{API}/me/password", json=body)
    assert refused.status_code == 422, refused.text
    assert "a-brand-new-password" not in refused.text
    assert state(people.engine) == before


def test_a_token_cannot_change_its_users_password(people: People) -> None:
    token = issue(people.engine, "olga", organisation="clinic", role="owner")
    before = state(people.engine)
    body = {"current_password": password_of("olga"), "new_password": "a-brand-new-password"}
    refused = people.client.post(f"{API}/me/password", json=body, headers=people.bearer(token))
    assert refused.status_code == 401, refused.text
    assert state(people.engine) == before


def test_a_password_change_with_the_current_one_ends_the_other_sessions(people: People) -> None:
    other = login(people.engine, people.settings, "olga")
    body = {"current_password": password_of("olga"), "new_password": "a-brand-new-password"}
    with signed_in(people, "olga") as client:
        done = client.post(f"{API}/me/password", json=body)
        assert done.status_code == 204, done.text
        assert client.get(f"{API}/me").status_code == 200  # this session stays
    people.client.cookies.set("infracms_session", other.token)
    assert people.client.get(f"{API}/me").status_code == 401
    people.client.cookies.clear()
    [entry] = _entries(people, "user.password_change")
    assert entry.actor_name == "olga" and "a-brand-new-password" not in entry.payload
    login(people.engine, people.settings, "olga", "a-brand-new-password")


def _entries(people: People, action: str) -> list[AuditEntry]:
    with Session(people.engine) as session:
        return list(
            session.exec(
                select(AuditEntry).where(AuditEntry.action == action).order_by(AuditEntry.index)
            ).all()
        )


def test_the_last_active_admin_cannot_be_disabled_demoted_or_deleted(people: People) -> None:
    auth_header = people.bearer(issue(people.engine, "admin", scope="node"))
    disabled = people.client.post(f"{API}/users/root2/disable", headers=auth_header)
    assert disabled.status_code == 200, disabled.text  # root2 is an admin, but not active
    before = state(people.engine)
    demoted = people.client.patch(
        f"{API}/users/admin", json={"is_admin": False}, headers=auth_header
    )
    assert demoted.status_code == 409, demoted.text
    assert "last active node administrator" in demoted.json()["detail"]
    own = people.client.post(f"{API}/users/admin/disable", headers=auth_header)
    assert own.status_code == 403 and "your own account" in own.text
    for attempt in (user_lifecycle.disable_user, user_lifecycle.delete_user):
        with session_scope(people.engine, write=True) as session, pytest.raises(Conflict) as exc:
            attempt(session=session, actor=ADMIN, username="admin")  # the node's shell
        assert "last active node administrator" in exc.value.detail
    assert state(people.engine) == before


def test_a_node_token_is_revocable_like_the_others(people: People) -> None:
    token = issue(people.engine, "admin", scope="node")
    listed = people.client.get(f"{API}/tokens", headers=people.bearer(token)).json()
    [mine] = [t for t in listed if t["scope"] == "node"]
    assert mine["organisation_id"] is None and mine["role"] is None
    revoked = people.client.delete(f"{API}/tokens/{mine['id']}", headers=people.bearer(token))
    assert revoked.status_code == 200, revoked.text
    refused = people.client.get(f"{API}/users", headers=people.bearer(token))
    assert refused.status_code == 401 and "revoked" in refused.text


@pytest.mark.parametrize("who", ["admin", "nobody-by-this-name"])
def test_a_member_cannot_tell_which_accounts_exist(people: People, who: str) -> None:
    with signed_in(people, "olga") as client:
        shown = client.get(f"{API}/users/{who}")
        edited = client.patch(f"{API}/users/{who}", json={"display_name": "x"})
    assert (shown.status_code, edited.status_code) == (403, 403)
