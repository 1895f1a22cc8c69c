"""/tokens: your API tokens; issuing one (shown once) and revoking."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, time

from fastapi import APIRouter, Request, Response
from sqlmodel import Session

from infracms.api.deps import SessionDep
from infracms.errors import InvalidInput
from infracms.models.user import Role
from infracms.services import auth, organisations, users
from infracms.web.errors import FormProblem, redirect, submit
from infracms.web.forms import text
from infracms.web.session import Form, Poster, SignedIn, WebUser
from infracms.web.templating import render

router = APIRouter()

ROLES = [role.value for role in Role]
NEW_TOKEN = {
    "name": "",
    "scope": "organisation",
    "organisation": "",
    "role": Role.viewer.value,
    "expires_at": "",
}


@router.get("/tokens")
def list_tokens(request: Request, session: SessionDep, me: SignedIn, notice: str = "") -> Response:
    """Your tokens, with the form to issue one."""
    return _page(request, session, me, NEW_TOKEN, notice=notice)


@router.post("/tokens")
def issue_token(request: Request, session: SessionDep, me: Poster, form: Form) -> Response:
    """Issue a token and show it, this once."""
    values = {key: text(form, key) for key in NEW_TOKEN}
    values["scope"] = values["scope"] or "organisation"  # only admins see the choice

    def action() -> Response:
        data = {**values, "expires_at": _end_of(values["expires_at"])}
        if values["scope"] == "node":  # the form keeps its organisation fields: not sent
            data = {**data, "organisation": None, "role": None}
        issued = auth.issue_token(session=session, actor=me.actor, data=data)
        context = {"issued": issued, "organisation": data["organisation"], "section": "tokens"}
        return render(request, "token_issued.html", context)

    return submit(session, action, lambda problem: _page(request, session, me, values, problem))


@router.post("/tokens/{token_id}/revoke")
def revoke_token(token_id: uuid.UUID, session: SessionDep, me: Poster) -> Response:
    """Revoke a token: it stops working at once."""
    auth.revoke_token(session=session, actor=me.actor, token_id=token_id)
    return redirect("/tokens?notice=token-revoked")


def _end_of(value: str) -> datetime | None:
    """A token valid through the given day (UTC) expires at its last second."""
    if not value:
        return None
    try:
        day = date.fromisoformat(value)
    except ValueError as exc:
        raise InvalidInput(
            "the expiry date is not a date", errors={"expires_at": "must be a date like 2030-12-31"}
        ) from exc
    return datetime.combine(day, time(23, 59, 59), tzinfo=UTC)


def _page(
    request: Request,
    session: Session,
    me: WebUser,
    values: dict[str, str],
    problem: FormProblem | None = None,
    notice: str = "",
) -> Response:
    orgs = organisations.list_organisations(session=session, actor=me.actor)
    owners = {me.user.id: me.user.username}
    if me.actor.is_admin:
        owners = {
            user.id: user.username for user in users.list_users(session=session, actor=me.actor)
        }
    context = {
        "tokens": auth.list_tokens(session=session, actor=me.actor),
        "org_names": {org.id: org.name for org in orgs},
        "owners": owners,
        "orgs": [org.name for org in orgs],
        "roles": ROLES,
        "values": values,
        "problem": problem,
        "notice": notice,
        "section": "tokens",
    }
    return render(request, "tokens.html", context, status=problem.status if problem else 200)
