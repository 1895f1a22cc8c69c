"""/api/v1 federation for this node's users: peers, catalogs, offerings, provision
requests (approve/decline), services requested from peers, usage, broker clients."""

from __future__ import annotations

import json
import uuid
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query, Request, status
from fastapi.responses import PlainTextResponse, Response
from pydantic import BaseModel, Field

from infracms.api.deps import ActorDep, AdminActorDep, KeyringDep, PluginsDep, SessionDep
from infracms.api.peer import federation_context
from infracms.models.federation import InstanceStatus, PeerStatus
from infracms.services.federation import (
    broker_clients,
    consumer,
    instances,
    offerings,
    peering,
    provisioning,
    rotation,
    sync,
    usage,
)
from infracms.services.federation.directory import CatalogFilter, FederatedOffering, search_catalog
from infracms.services.federation.node import FederationContext
from infracms.services.federation.peers import PeerPublic
from infracms.services.federation.rotation import MAX_OVERLAP_DAYS

router = APIRouter(tags=["federation"])
ContextDep = Annotated[FederationContext, Depends(federation_context)]


class InvitationIn(BaseModel):
    valid_hours: int = Field(default=72, ge=1, le=720)


class InvitationOut(BaseModel):
    id: str
    token: str = Field(description="shown once: give it to the other node's admin")
    expires_at: Any


class TokenIn(BaseModel):
    token: str = Field(min_length=10, max_length=4000)


class DeclineIn(BaseModel):
    reason: str = Field(default="", max_length=1000)


class NameIn(BaseModel):
    name: str = Field(max_length=63)


@router.post("/peers/invitations", response_model=InvitationOut, status_code=201)
def invite(
    body: InvitationIn, session: SessionDep, actor: AdminActorDep, ctx: ContextDep
) -> InvitationOut:
    """A one-time invitation token for another node (node admins)."""
    issued = peering.create_invitation(
        session=session, actor=actor, ctx=ctx, valid_hours=body.valid_hours
    )
    return InvitationOut(id=issued.id, token=issued.token, expires_at=issued.expires_at)


@router.get("/peers/invitations", response_model=list[peering.InvitationPublic])
def list_invitations(session: SessionDep, actor: ActorDep) -> list[peering.InvitationPublic]:
    """The invitations this node made, newest first, open, used or ended (node admins)."""
    return peering.list_invitations(session=session, actor=actor)


@router.post("/peers/invitations/{invitation_id}/revoke", response_model=peering.InvitationPublic)
def revoke_invitation(
    invitation_id: Annotated[str, Path(max_length=128)], session: SessionDep, actor: ActorDep
) -> peering.InvitationPublic:
    """End an open invitation: its token is refused from then on (node admins)."""
    return peering.revoke_invitation(session=session, actor=actor, invitation_id=invitation_id)


@router.post("/peers/accept", response_model=PeerPublic, status_code=201)
def accept(body: TokenIn, session: SessionDep, actor: AdminActorDep, ctx: ContextDep) -> PeerPublic:
    """Accept another node's invitation token."""
    return peering.accept_invitation(session=session, actor=actor, ctx=ctx, token=body.token)


@router.get("/peers", response_model=list[PeerPublic])
def list_peers(session: SessionDep, actor: ActorDep) -> list[PeerPublic]:
    """Every peer."""
    return peering.list_peers(session=session, actor=actor)


@router.get("/peers/{name}", response_model=PeerPublic)
def get_peer(name: str, session: SessionDep, actor: ActorDep) -> PeerPublic:
    """One peer with its keys."""
    return peering.get_peer(session=session, actor=actor, name=name)


@router.post("/peers/{name}/{verb}", response_model=PeerPublic)
def set_peer_status(
    name: str, verb: Literal["suspend", "resume", "revoke"], session: SessionDep, actor: ActorDep
) -> PeerPublic:
    """Suspend, resume or revoke a peer."""
    wanted = {"suspend": PeerStatus.suspended, "resume": PeerStatus.active}
    new = wanted.get(verb, PeerStatus.revoked)
    return peering.set_status(session=session, actor=actor, name=name, status=new)


@router.post("/node/rotate-key", response_model=rotation.RotationReport)
def rotate_key(
    session: SessionDep,
    actor: ActorDep,
    ctx: ContextDep,
    overlap_days: Annotated[int, Query(ge=0, le=MAX_OVERLAP_DAYS)] = 7,
) -> rotation.RotationReport:
    """Replace this node's key and tell every active peer."""
    return rotation.rotate_own_key(session=session, actor=actor, ctx=ctx, overlap_days=overlap_days)


@router.post("/catalog/sync", response_model=list[sync.SyncResult])
def sync_catalogs(
    session: SessionDep,
    actor: ActorDep,
    ctx: ContextDep,
    peer: Annotated[str | None, Query(max_length=63)] = None,
) -> list[sync.SyncResult]:
    """Fetch the active peers' catalogs now."""
    return sync.sync_catalogs(session=session, actor=actor, ctx=ctx, peer=peer)


@router.get("/catalog", response_model=list[FederatedOffering])
def federated_catalog(
    session: SessionDep, actor: ActorDep, filters: Annotated[CatalogFilter, Query()]
) -> list[FederatedOffering]:
    """Every peer's offerings, filtered by text, kind, region, capacity, price, peer."""
    return search_catalog(session=session, actor=actor, filters=filters)


@router.get("/module-offerings")
def module_offerings(actor: ActorDep, plugins: PluginsDep) -> dict[str, list[Any]]:
    """What each module can offer (to publish)."""
    found = offerings.module_offerings(plugins)
    return {name: [o.__dict__ for o in offered] for name, offered in found.items()}


@router.get("/orgs/{org}/offerings", response_model=list[offerings.PublicationPublic])
def list_offerings(
    org: str, session: SessionDep, actor: ActorDep
) -> list[offerings.PublicationPublic]:
    """The organisation's published offerings."""
    return offerings.list_publications(session=session, actor=actor, organisation=org)


@router.post("/orgs/{org}/offerings", response_model=offerings.PublicationPublic, status_code=201)
def publish(
    org: str,
    body: offerings.PublicationCreate,
    session: SessionDep,
    actor: ActorDep,
    plugins: PluginsDep,
) -> offerings.PublicationPublic:
    """Publish a module's offering to peers."""
    return offerings.publish_offering(
        session=session, actor=actor, plugins=plugins, organisation=org, data=body
    )


@router.post(
    "/orgs/{org}/offerings/{offering_id}/withdraw", response_model=offerings.PublicationPublic
)
def withdraw(
    org: str, offering_id: str, session: SessionDep, actor: ActorDep
) -> offerings.PublicationPublic:
    """Take an offering out of the catalog."""
    return offerings.withdraw_offering(
        session=session, actor=actor, organisation=org, offering_id=offering_id
    )


@router.get("/orgs/{org}/provision-requests", response_model=list[instances.InstancePublic])
def list_requests(
    org: str, session: SessionDep, actor: ActorDep, status: InstanceStatus | None = None
) -> list[instances.InstancePublic]:
    """Provision requests and instances of offerings the organisation provides."""
    return instances.list_requests(session=session, actor=actor, organisation=org, status=status)


@router.get("/orgs/{org}/provision-requests/{instance}", response_model=instances.InstancePublic)
def get_request(
    org: str, instance: uuid.UUID, session: SessionDep, actor: ActorDep
) -> instances.InstancePublic:
    """One provision request."""
    return instances.get_request(session=session, actor=actor, organisation=org, instance=instance)


@router.post(
    "/orgs/{org}/provision-requests/{instance}/approve", response_model=instances.InstancePublic
)
def approve(
    org: str,
    instance: uuid.UUID,
    request: Request,
    session: SessionDep,
    actor: ActorDep,
    plugins: PluginsDep,
    keyring: KeyringDep,
) -> instances.InstancePublic:
    """Approve: create the definition and start the apply run."""
    done = provisioning.approve(
        session=session,
        actor=actor,
        plugins=plugins,
        organisation=org,
        instance=instance,
        keyring=keyring,  # a secret the module generates is sealed with it
    )
    if done.run_id is not None:
        request.app.state.executor.submit(done.run_id)
    return instances.get_request(session=session, actor=actor, organisation=org, instance=instance)


@router.post(
    "/orgs/{org}/provision-requests/{instance}/decline", response_model=instances.InstancePublic
)
def decline(
    org: str, instance: uuid.UUID, body: DeclineIn, session: SessionDep, actor: ActorDep
) -> instances.InstancePublic:
    """Decline a pending request."""
    provisioning.decline(
        session=session, actor=actor, organisation=org, instance=instance, reason=body.reason
    )
    return instances.get_request(session=session, actor=actor, organisation=org, instance=instance)


@router.get("/orgs/{org}/services", response_model=list[consumer.ConsumerServicePublic])
def list_services(
    org: str, session: SessionDep, actor: ActorDep
) -> list[consumer.ConsumerServicePublic]:
    """Services the organisation requested from peers."""
    return consumer.list_services(session=session, actor=actor, organisation=org)


@router.post("/orgs/{org}/services", response_model=consumer.ConsumerServicePublic, status_code=201)
def request_service(
    org: str,
    body: consumer.ServiceRequestIn,
    session: SessionDep,
    actor: ActorDep,
    ctx: ContextDep,
) -> consumer.ConsumerServicePublic:
    """Request an offering from a peer for the organisation."""
    return consumer.request_service(
        session=session, actor=actor, ctx=ctx, organisation=org, data=body
    )


@router.get("/orgs/{org}/services/{service}", response_model=consumer.ConsumerServicePublic)
def get_service(
    org: str, service: uuid.UUID, session: SessionDep, actor: ActorDep
) -> consumer.ConsumerServicePublic:
    """One requested service."""
    return consumer.get_service(session=session, actor=actor, organisation=org, service=service)


@router.patch("/orgs/{org}/services/{service}", response_model=consumer.ConsumerServicePublic)
def update_service(
    org: str,
    service: uuid.UUID,
    body: consumer.ServiceUpdateIn,
    session: SessionDep,
    actor: ActorDep,
    ctx: ContextDep,
) -> consumer.ConsumerServicePublic:
    """Ask the peer for another plan of the service's offering, or other parameters (those
    given replace the ones of the same name); it applies them, then the service is bound
    again."""
    return consumer.update_service(
        session=session, actor=actor, ctx=ctx, organisation=org, service=service, data=body
    )


@router.post(
    "/orgs/{org}/services/{service}/refresh", response_model=consumer.ConsumerServicePublic
)
def refresh_service(
    org: str, service: uuid.UUID, session: SessionDep, actor: ActorDep, ctx: ContextDep
) -> consumer.ConsumerServicePublic:
    """Ask the peer how it goes now."""
    return consumer.refresh_service(
        session=session, actor=actor, ctx=ctx, organisation=org, service=service
    )


@router.get("/orgs/{org}/services/{service}/credentials")
def service_credentials(
    org: str, service: uuid.UUID, session: SessionDep, actor: ActorDep, keyring: KeyringDep
) -> Response:
    """The connection details (owners and operators); never cached."""
    found = consumer.service_credentials(
        session=session, actor=actor, keyring=keyring, organisation=org, service=service
    )
    return Response(
        json.dumps(found), media_type="application/json", headers={"Cache-Control": "no-store"}
    )


@router.post(
    "/orgs/{org}/services/{service}/deprovision", response_model=consumer.ConsumerServicePublic
)
def deprovision_service(
    org: str, service: uuid.UUID, session: SessionDep, actor: ActorDep, ctx: ContextDep
) -> consumer.ConsumerServicePublic:
    """Ask the peer to remove the service."""
    return consumer.deprovision_service(
        session=session, actor=actor, ctx=ctx, organisation=org, service=service
    )


@router.get("/usage")
def usage_export(
    session: SessionDep,
    actor: ActorDep,
    peer: str | None = None,
    format: Literal["csv", "json"] = "json",
) -> Response:
    """Usage records (per peer), as CSV or JSON."""
    records = usage.usage_records(session=session, actor=actor, peer=peer)
    media = "text/csv" if format == "csv" else "application/json"
    return PlainTextResponse(usage.export(records, format), media_type=media)


@router.post("/broker-clients", status_code=status.HTTP_201_CREATED)
def issue_broker_client(body: NameIn, session: SessionDep, actor: AdminActorDep) -> dict[str, Any]:
    """A credential for an OSB platform (the token is shown once)."""
    issued = broker_clients.issue(session=session, actor=actor, name=body.name)
    return {**issued.client.model_dump(mode="json"), "token": issued.token}


@router.get("/broker-clients", response_model=list[broker_clients.BrokerClientPublic])
def list_broker_clients(
    session: SessionDep, actor: ActorDep
) -> list[broker_clients.BrokerClientPublic]:
    """Every OSB platform credential."""
    return broker_clients.list_clients(session=session, actor=actor)


@router.post("/broker-clients/{name}/revoke", status_code=204)
def revoke_broker_client(name: str, session: SessionDep, actor: ActorDep) -> None:
    """Revoke an OSB platform credential."""
    broker_clients.revoke(session=session, actor=actor, name=name)


@router.get("/catalog/status", response_model=list[sync.CatalogStatus])
def catalog_status(
    session: SessionDep, actor: ActorDep, peer: str | None = None
) -> list[sync.CatalogStatus]:
    """Each peer's catalog sync: the copy held, the last success and attempt, if stale."""
    return sync.catalog_status(session=session, actor=actor, peer=peer)
