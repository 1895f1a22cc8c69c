"""/peers (node admins): the nodes this one trusts, with their status, key fingerprints and
catalog syncs (the copy held, the last success, the last attempt and why it failed, whether
the copy is stale); making an invitation (its token shown once), accepting another node's,
suspending, resuming and revoking a peer (each confirmed first), syncing catalogs now."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Request, Response
from sqlmodel import Session

from federation.errors import FederationError
from infracms.api.deps import SessionDep
from infracms.api.peer import federation_context
from infracms.errors import InvalidInput
from infracms.models.federation import PeerStatus
from infracms.services.authz import Action, authorize
from infracms.services.federation import peering, sync
from infracms.services.federation.node import FederationContext
from infracms.services.federation.sync import CatalogStatus, SyncResult
from infracms.web.errors import FormProblem, redirect, submit
from infracms.web.forms import text
from infracms.web.session import Form, Poster, SignedIn, WebUser
from infracms.web.templating import render

router = APIRouter()

ContextDep = Annotated[FederationContext, Depends(federation_context)]
Verb = Literal["suspend", "resume", "revoke"]
NEW = {"valid_hours": "72", "token": ""}
LABELS = {"valid_hours": "Valid for (hours)", "token": "Invitation token"}
VERBS: dict[str, tuple[PeerStatus, str, str]] = {
    "suspend": (
        PeerStatus.suspended,
        "Its signed requests are refused and its catalog is hidden until you resume it.",
        "Suspend peer",
    ),
    "resume": (
        PeerStatus.active,
        "Its signed requests are accepted again and its catalog is shown.",
        "Resume peer",
    ),
    "revoke": (
        PeerStatus.revoked,
        "Its keys are removed for good: it can only peer again through a new invitation.",
        "Revoke peer",
    ),
}


@router.get("/peers")
def list_peers(request: Request, session: SessionDep, me: SignedIn, notice: str = "") -> Response:
    """Every peer, with the forms to invite a node and accept an invitation."""
    return _page(request, session, me, NEW, notice=notice)


@router.post("/peers/invitations")
def create_invitation(
    request: Request, session: SessionDep, me: Poster, form: Form, ctx: ContextDep
) -> Response:
    """Make a one-time invitation and show its token, this once."""
    values = {**NEW, "valid_hours": text(form, "valid_hours")}

    def action() -> Response:
        issued = peering.create_invitation(
            session=session, actor=me.actor, ctx=ctx, valid_hours=_hours(values["valid_hours"])
        )
        context = {"issued": issued, "node": ctx.name, "section": "peers"}
        return render(request, "peer_invitation.html", context)

    return submit(session, action, lambda problem: _page(request, session, me, values, problem))


@router.post("/peers/invitations/{invitation_id}/revoke")
def revoke_invitation(
    invitation_id: str, request: Request, session: SessionDep, me: Poster
) -> Response:
    """End an open invitation: its token is refused from then on."""

    def action() -> Response:
        peering.revoke_invitation(session=session, actor=me.actor, invitation_id=invitation_id)
        return redirect("/peers?notice=invitation-revoked#invitations")

    return submit(session, action, lambda problem: _page(request, session, me, NEW, problem))


@router.post("/peers/accept")
def accept_invitation(
    request: Request, session: SessionDep, me: Poster, form: Form, ctx: ContextDep
) -> Response:
    """Accept another node's invitation: ask it to peer, and pin its key."""
    values = {**NEW, "token": text(form, "token")}

    def action() -> Response:
        if not values["token"]:
            raise InvalidInput("no token", errors={"token": "paste the token the other node made"})
        try:
            peer = peering.accept_invitation(
                session=session, actor=me.actor, ctx=ctx, token=values["token"]
            )
        except FederationError as exc:
            raise InvalidInput(
                "the invitation was not accepted", errors={"token": str(exc)}
            ) from exc
        return redirect(f"/peers/{peer.name}?notice=peer-accepted")

    return submit(session, action, lambda problem: _page(request, session, me, values, problem))


@router.post("/peers/sync")
def sync_now(
    request: Request, session: SessionDep, me: Poster, form: Form, ctx: ContextDep
) -> Response:
    """Fetch every active peer's catalog (or the one named) now; show how each went."""
    peer = text(form, "peer") or None

    def action() -> Response:
        results = sync.sync_catalogs(session=session, actor=me.actor, ctx=ctx, peer=peer)
        return _page(request, session, me, NEW, results=results)

    return submit(session, action, lambda problem: _page(request, session, me, NEW, problem))


@router.get("/peers/{name}")
def show_peer(
    name: str, request: Request, session: SessionDep, me: SignedIn, notice: str = ""
) -> Response:
    """One peer: its keys and their validity, its catalog, what can be done."""
    peer = peering.get_peer(session=session, actor=me.actor, name=name)
    [catalog] = sync.catalog_status(session=session, actor=me.actor, peer=peer.name)
    context = {
        "peer": peer,
        "catalog": catalog,
        "notice": notice,
        "section": "peers",
    }
    return render(request, "peer.html", context)


@router.get("/peers/{name}/{verb}")
def confirm_status(
    name: str, verb: Verb, request: Request, session: SessionDep, me: SignedIn
) -> Response:
    """Ask before suspending, resuming or revoking a peer."""
    peering.get_peer(session=session, actor=me.actor, name=name)
    return _confirm(request, name, verb)


@router.post("/peers/{name}/{verb}")
def set_status(
    name: str, verb: Verb, request: Request, session: SessionDep, me: Poster
) -> Response:
    """Suspend, resume or revoke a peer."""
    status = VERBS[verb][0]

    def action() -> Response:
        peering.set_status(session=session, actor=me.actor, name=name, status=status)
        return redirect(f"/peers/{name}?notice=peer-{status.value}")

    return submit(session, action, lambda problem: _confirm(request, name, verb, problem))


def _hours(value: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise InvalidInput(
            "bad expiry", errors={"valid_hours": "must be a whole number of hours"}
        ) from None


def _catalogs(session: Session, me: WebUser) -> dict[str, CatalogStatus]:
    """Each peer's catalog sync status, by peer name."""
    return {s.peer: s for s in sync.catalog_status(session=session, actor=me.actor)}


def _page(
    request: Request,
    session: Session,
    me: WebUser,
    values: dict[str, str],
    problem: FormProblem | None = None,
    *,
    results: list[SyncResult] | None = None,
    notice: str = "",
) -> Response:
    authorize(me.actor, Action.peer_manage, None)
    context: dict[str, Any] = {
        "peers": peering.list_peers(session=session, actor=me.actor),
        "invitations": peering.list_invitations(session=session, actor=me.actor),
        "catalogs": _catalogs(session, me),
        "results": results,
        "values": values,
        "labels": LABELS,
        "problem": problem,
        "notice": notice,
        "section": "peers",
    }
    return render(request, "peers.html", context, status=problem.status if problem else 200)


def _confirm(
    request: Request, name: str, verb: str, problem: FormProblem | None = None
) -> Response:
    _, message, button = VERBS[verb]
    context = {
        "title": f"{verb.capitalize()} {name}?",
        "message": message,
        "action": f"/peers/{name}/{verb}",
        "cancel": f"/peers/{name}",
        "button": button,
        "button_class": "button-primary" if verb == "resume" else "button-danger",
        "problem": problem,
        "section": "peers",
    }
    return render(request, "confirm.html", context, status=problem.status if problem else 200)
