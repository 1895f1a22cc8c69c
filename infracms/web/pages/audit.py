"""/audit…: the signed log, read only. Entries (filtered, a page at a time), one entry with
its proof, the checkpoints with their signatures checked and the peers' cosignatures of
each (checked too, counted against the witness policy), and how to verify offline.

Owners and auditors read their organisations' entries, node admins every entry
(``services/audit.py`` decides); checkpoints and the verifier key are public.
"""

from __future__ import annotations

import json
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request, Response

from infracms.api.deps import SessionDep, SettingsDep
from infracms.errors import NotFound
from infracms.services import audit, organisations
from infracms.services.authz import Action, is_allowed
from infracms.services.witness.cosignatures import cosignatures_of, witness_policy
from infracms.web.session import SignedIn
from infracms.web.templating import render

router = APIRouter()

PAGE_SIZE = 50
CHECKPOINTS_PAGE = 25
Page = Annotated[int, Query(ge=1, le=1_000_000)]
FILTERS = {"actor": 200, "action": 100, "subject": 300, "organisation": 63}


@router.get("/audit")
def entries(
    request: Request,
    session: SessionDep,
    me: SignedIn,
    page: Page = 1,
    actor: Annotated[str, Query(max_length=FILTERS["actor"])] = "",
    action: Annotated[str, Query(max_length=FILTERS["action"])] = "",
    subject: Annotated[str, Query(max_length=FILTERS["subject"])] = "",
    organisation: Annotated[str, Query(max_length=FILTERS["organisation"])] = "",
) -> Response:
    """The entries you may read, newest first; `x*` in a filter matches by prefix."""
    filters = {"actor": actor, "action": action, "subject": subject, "organisation": organisation}
    filters = {key: value.strip() for key, value in filters.items()}
    found = audit.list_entries(
        session=session,
        actor=me.actor,
        organisation=filters["organisation"] or None,
        actor_name=filters["actor"] or None,
        action=filters["action"] or None,
        subject=filters["subject"] or None,
        limit=PAGE_SIZE,
        offset=(page - 1) * PAGE_SIZE,
        newest_first=True,
    )
    readable = [
        org.name
        for org in organisations.list_organisations(session=session, actor=me.actor)
        if is_allowed(me.actor, Action.audit_read, org.id)
    ]
    context = {
        "entries": found,
        "filters": filters,
        "query": urlencode({key: value for key, value in filters.items() if value}),
        "page": page,
        "pages": max(1, -(-found.total // PAGE_SIZE)),
        "orgs": readable,
        "reads_all": me.actor.is_admin,
        "previews": {entry.index: _preview(entry.payload) for entry in found.items},
        "tab": "entries",
        "section": "audit",
    }
    return render(request, "audit_entries.html", context)


@router.get("/audit/entries/{index}")
def entry(
    index: int, request: Request, session: SessionDep, me: SignedIn, settings: SettingsDep
) -> Response:
    """One entry: its payload, leaf hash, and inclusion proof against the latest checkpoint."""
    detail = audit.get_entry(session=session, actor=me.actor, settings=settings, index=index)
    payload = detail.entry.payload
    context = {
        "detail": detail,
        "entry": detail.entry,
        "pretty": json.dumps(payload, indent=2, sort_keys=True, ensure_ascii=False),
        "canonical": _canonical(payload),
        "tab": "entries",
        "section": "audit",
    }
    return render(request, "audit_entry.html", context)


@router.get("/audit/checkpoints")
def checkpoints(
    request: Request, session: SessionDep, me: SignedIn, settings: SettingsDep, page: Page = 1
) -> Response:
    """The signed checkpoints, newest first, each checked against the node key and the tree,
    with the peers' cosignatures of each and the witness policy."""
    found = audit.list_checkpoints(
        session=session,
        settings=settings,
        limit=CHECKPOINTS_PAGE,
        offset=(page - 1) * CHECKPOINTS_PAGE,
    )
    shown = [(checkpoint.size, checkpoint.note) for checkpoint in found.items]
    cosignatures = cosignatures_of(session=session, checkpoints=shown)
    policy = witness_policy(session=session, settings=settings)
    context = {
        "checkpoints": found,
        "cosignatures": cosignatures,
        "met": {size: policy.met_by(cosigned) for size, cosigned in cosignatures.items()},
        "policy": policy,
        "key": audit.verifier_key(settings),
        "page": page,
        "pages": max(1, -(-found.total // CHECKPOINTS_PAGE)),
        "tab": "checkpoints",
        "section": "audit",
    }
    return render(request, "audit_checkpoints.html", context)


@router.get("/audit/verify")
def verify(request: Request, session: SessionDep, me: SignedIn, settings: SettingsDep) -> Response:
    """The node's verifier key, the latest checkpoint, how to check the log offline, and
    how an auditor saves the checkpoint that later exports must extend."""
    try:
        latest: str | None = audit.latest_checkpoint(session=session)
    except NotFound:
        latest = None
    context = {
        "key": audit.verifier_key(settings),
        "latest": latest,
        "latest_size": latest.split("\n")[1] if latest else None,
        "base_url": str(request.base_url).rstrip("/"),
        "node": settings.node_name,
        "can_export": is_allowed(me.actor, Action.audit_read, None),
        "tab": "verify",
        "section": "audit",
    }
    return render(request, "audit_verify.html", context)


def _canonical(payload: dict[str, Any]) -> str:
    """The payload as recorded: compact JSON with sorted keys (``audit/payload.py``)."""
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _preview(payload: dict[str, Any], width: int = 140) -> str:
    """The start of a payload, for the list ("" when it is empty)."""
    if not payload:
        return ""
    text = _canonical(payload)
    return text if len(text) <= width else text[: width - 1] + "…"
