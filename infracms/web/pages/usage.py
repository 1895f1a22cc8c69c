"""/usage (node admins): who used which plan of which offering, from when to when, per
peer, with CSV and JSON downloads: the basis for settling accounts between co-ops."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request, Response

from infracms.api.deps import SessionDep
from infracms.services.federation import peering, usage
from infracms.web.session import SignedIn
from infracms.web.templating import NO_STORE, render

router = APIRouter()

PeerName = Annotated[str, Query(max_length=253)]
MEDIA = {"csv": "text/csv; charset=utf-8", "json": "application/json"}


@router.get("/usage")
def usage_records(
    request: Request, session: SessionDep, me: SignedIn, peer: PeerName = ""
) -> Response:
    """The usage records, oldest first, of every peer or of one."""
    records = usage.usage_records(session=session, actor=me.actor, peer=peer or None)
    context = {
        "records": records,
        "peer": peer,
        "peers": [found.name for found in peering.list_peers(session=session, actor=me.actor)],
        "open": sum(1 for record in records if record.ended_at is None),
        "section": "peers",
    }
    return render(request, "usage.html", context)


@router.get("/usage/export")
def export(
    session: SessionDep,
    me: SignedIn,
    format: Literal["csv", "json"] = "csv",
    peer: PeerName = "",
) -> Response:
    """The records as a file to download."""
    records = usage.usage_records(session=session, actor=me.actor, peer=peer or None)
    name = f"usage-{peer or 'all-peers'}.{format}"
    headers = {**NO_STORE, "content-disposition": f'attachment; filename="{name}"'}
    return Response(usage.export(records, format), media_type=MEDIA[format], headers=headers)
