"""The run page of a held apply: its plan digest and diff, approve and refuse buttons for
approvers only, and the form posting the decision."""

from __future__ import annotations

import secrets
from datetime import timedelta

from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlmodel import Session, select

from infracms.db import session_scope
from infracms.models import Run, RunStatus, User, WebSession
from infracms.models.base import utcnow
from infracms.plugins import Plugins
from infracms.services.auth import token_hash
from tests.services.test_approvals import apply, clinic, person, plugins, set_policy

__all__ = ["clinic", "plugins"]


def signed_in(client: TestClient, engine: Engine, username: str) -> str:
    """A web session made directly (no password to hash); the CSRF token."""
    raw, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(16)
    with session_scope(engine, write=True) as session:
        user = session.exec(select(User).where(User.username == username)).one()
        session.add(
            WebSession(
                token_hash=token_hash(raw),
                csrf_token=csrf,
                user_id=user.id,
                expires_at=utcnow() + timedelta(hours=1),
            )
        )
        session.commit()
    client.cookies.clear()
    client.cookies.set("infracms_session", raw)
    return csrf


def test_approvers_see_the_plan_and_approve_it_from_the_page(
    client: TestClient, clinic: Engine, plugins: Plugins
) -> None:
    set_policy(clinic, approvals_required=1)
    held = apply(clinic, plugins, person(clinic, "oscar"), hosts=["web1"])
    url = f"/orgs/clinic/runs/{held.id}"
    signed_in(client, clinic, "vera")
    page = client.get(url).text
    assert "awaiting approval" in page and "plan-digest" in page
    assert "Approve this plan" not in page  # a viewer presses nothing
    signed_in(client, clinic, "oscar")
    assert "Approve this plan" not in client.get(url).text  # nor the requester
    csrf = signed_in(client, clinic, "olga")
    page = client.get(url).text
    assert "Approve this plan" in page and "Break glass" in page
    assert "+  message: a" in page or "message: a" in page  # the diff of what it applies
    refused = client.post(
        f"{url}/approvals", data={"csrf_token": csrf, "decision": "refuse", "comment": ""}
    )
    assert refused.status_code == 422 and "refusal needs a comment" in refused.text
    done = client.post(
        f"{url}/approvals",
        data={"csrf_token": csrf, "decision": "approve", "comment": "ok"},
        follow_redirects=False,
    )
    assert done.status_code == 303
    with Session(clinic) as session:
        run = session.get(Run, held.id)
        assert run is not None and run.status is not RunStatus.pending_approval
