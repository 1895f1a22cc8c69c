"""Federation: peers and their pinned keys, catalogs, offerings, service instances, usage.

Provider side: ``PublishedOffering`` (what an organisation offers peers, on which host
pool, with which policy), ``ServiceInstance`` (a request from a peer or an OSB platform,
pending until approved), ``ServiceBinding`` (sealed connection details) and
``UsageRecord`` (who used what plan from when to when). Consumer side:
``ConsumerService`` (an offering one of our organisations asked a peer for).
Replay protection: ``PeerNonce``, one unique row per (key id, nonce).
"""

from __future__ import annotations

import enum
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import Enum, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from infracms.models.base import UTCDateTime, created_field, id_field, json_field


def _enum(kind: type[enum.Enum]) -> Any:
    return Enum(kind, native_enum=False, length=16)


class PeerStatus(enum.StrEnum):
    """Whether a peer's signatures are accepted."""

    active = "active"
    suspended = "suspended"  # keys stop resolving; may be resumed
    revoked = "revoked"  # keys removed for good


class Peer(SQLModel, table=True):
    """Another node this one trusts, pinned through an invitation."""

    id: uuid.UUID = id_field()
    name: str = Field(max_length=253, unique=True, index=True)
    base_url: str = Field(max_length=500)
    status: PeerStatus = Field(default=PeerStatus.active, sa_type=_enum(PeerStatus))
    invited_by_us: bool = Field(description="we made the invitation (else we accepted one)")
    created_at: datetime = created_field()
    changed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class PeerKey(SQLModel, table=True):
    """A public key pinned for a peer, with the window in which it may sign."""

    __tablename__ = "peer_key"

    key_id: str = Field(primary_key=True, max_length=43)
    peer_id: uuid.UUID = Field(foreign_key="peer.id", index=True, ondelete="CASCADE")
    public_key: str = Field(max_length=43)
    not_before: datetime | None = Field(default=None, sa_type=UTCDateTime)
    not_after: datetime | None = Field(default=None, sa_type=UTCDateTime)
    created_at: datetime = created_field()


class PeerInvitation(SQLModel, table=True):
    """An invitation this node made: its id is consumed once (the token is never stored)."""

    __tablename__ = "peer_invitation"

    id: str = Field(primary_key=True, max_length=128)
    expires_at: datetime = Field(sa_type=UTCDateTime)
    created_by: str = Field(max_length=200)
    created_at: datetime = created_field()
    used_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    used_by: str | None = Field(default=None, max_length=253)


class PeerNonce(SQLModel, table=True):
    """A (key id, nonce) seen in a signed request, remembered until it expires."""

    __tablename__ = "peer_nonce"

    key_id: str = Field(primary_key=True, max_length=64)
    nonce: str = Field(primary_key=True, max_length=128)
    expires_at: datetime = Field(sa_type=UTCDateTime, index=True)
    seen_at: datetime | None = Field(default=None, sa_type=UTCDateTime, index=True)
    """When the request arrived: a peer's requests of the last minute are counted."""


class NodeCatalog(SQLModel, table=True):
    """This node's catalog as last signed: one row, re-signed when the offerings change."""

    __tablename__ = "node_catalog"

    id: int = Field(default=1, primary_key=True)
    version: int = 0
    content_sha256: str = Field(default="", max_length=64)
    generated_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    key_id: str = Field(default="", max_length=43)
    body: str = Field(default="", sa_type=Text)
    etag: str = Field(default="", max_length=64)


class SyncOutcome(enum.StrEnum):
    """How a peer's last catalog sync ended."""

    updated = "updated"  # a new version was fetched, verified and kept
    unchanged = "unchanged"  # the peer answered 304: the copy held is its current catalog
    failed = "failed"  # the last good copy was kept; ``SyncFailure`` says why


class SyncFailure(enum.StrEnum):
    """Why a catalog sync failed (the error text has the detail); ``label`` says it in words."""

    unreachable = "unreachable"  # the connection failed
    timeout = "timeout"  # the peer did not answer in time
    refused = "refused"  # it answered an error status (did it suspend us?)
    redirected = "redirected"  # redirects are never followed
    url_refused = "url_refused"  # its pinned URL is not one we may contact
    tampered = "tampered"  # the body does not match its signed digest
    bad_signature = "bad_signature"  # a signature does not verify, or is missing
    unknown_key = "unknown_key"  # signed by a key not pinned (or no longer valid) for it
    wrong_node = "wrong_node"  # the catalog names or is signed by another node
    rollback = "rollback"  # an older version, or other content under the same version
    clock = "clock"  # the answer's signature is expired or not yet valid
    replayed = "replayed"  # the answer's nonce was seen before
    malformed = "malformed"  # the answer or catalog does not parse as the protocol says
    error = "error"  # any other federation error

    @property
    def label(self) -> str:
        """The reason in an admin's words: ``timed out``, ``bad signature``."""
        return _FAILURE_LABELS.get(self.value, self.value.replace("_", " "))


_FAILURE_LABELS = {
    "timeout": "timed out",
    "refused": "refused by the peer",
    "url_refused": "address refused",
    "clock": "clock skew",
}


class PeerCatalog(SQLModel, table=True):
    """The last good copy of a peer's signed catalog, and how the last sync went.

    ``fetched_at`` is when the copy held was fetched, ``synced_at`` the last sync that
    succeeded (a new version or a 304), ``checked_at`` the last attempt, whose
    ``outcome`` (and ``failure``, ``error``, ``error_at`` when it failed) it records.
    """

    __tablename__ = "peer_catalog"

    peer_id: uuid.UUID = Field(foreign_key="peer.id", primary_key=True, ondelete="CASCADE")
    body: str | None = Field(default=None, sa_type=Text)
    etag: str | None = Field(default=None, max_length=64)
    version: int | None = None
    fetched_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    checked_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    error: str | None = Field(default=None, sa_type=Text)
    error_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    synced_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    outcome: SyncOutcome | None = Field(default=None, sa_type=_enum(SyncOutcome))
    failure: SyncFailure | None = Field(default=None, sa_type=_enum(SyncFailure))


class ApprovalPolicy(enum.StrEnum):
    """How a provision request for an offering is decided."""

    manual = "manual"  # an owner or operator approves or declines
    auto = "auto"  # approved at once for the listed peers, within the quota


class PublishedOffering(SQLModel, table=True):
    """A module offering an organisation provides to peers, on a pool of its hosts."""

    __tablename__ = "published_offering"

    id: uuid.UUID = id_field()
    offering_id: str = Field(max_length=100, unique=True, index=True)
    organisation_id: uuid.UUID = Field(foreign_key="organisation.id", index=True)
    module: str = Field(max_length=40)
    offering: str = Field(max_length=100, description="the module's offering name")
    name: str = Field(max_length=200)
    description: str = Field(default="", sa_type=Text)
    kind: str = Field(max_length=63)
    group_id: uuid.UUID = Field(foreign_key="hostgroup.id")
    plans: list[dict[str, Any]] = json_field(list)
    settings: dict[str, Any] = json_field()
    policy: ApprovalPolicy = Field(default=ApprovalPolicy.manual, sa_type=_enum(ApprovalPolicy))
    auto_approve_peers: list[str] = json_field(list)
    quota: int = 0
    bindable: bool = True
    created_by: str = Field(max_length=200)
    created_at: datetime = created_field()
    withdrawn_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class BrokerClient(SQLModel, table=True):
    """An Open Service Broker platform allowed to call /v2 (bearer token or basic auth)."""

    __tablename__ = "broker_client"

    id: uuid.UUID = id_field()
    name: str = Field(max_length=63, unique=True, index=True)
    secret_hash: str = Field(max_length=64, unique=True)
    created_by: str = Field(max_length=200)
    created_at: datetime = created_field()
    revoked_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class InstanceStatus(enum.StrEnum):
    """Where a provided service instance is."""

    pending = "pending"  # awaiting approval
    declined = "declined"
    provisioning = "provisioning"  # approved: the apply run says how it goes
    deprovisioning = "deprovisioning"  # the removing run says how it goes
    ended = "ended"


class ServiceInstance(SQLModel, table=True):
    """A provision request received from a peer or an OSB platform (provider side)."""

    __tablename__ = "service_instance"
    __table_args__ = (UniqueConstraint("client", "instance_id"),)

    id: uuid.UUID = id_field()
    instance_id: str = Field(max_length=128, index=True)
    client: str = Field(max_length=300, description="peer:<name> or platform:<name>")
    peer_id: uuid.UUID | None = Field(default=None, foreign_key="peer.id")
    publication_id: uuid.UUID = Field(foreign_key="published_offering.id", index=True)
    organisation_id: uuid.UUID = Field(foreign_key="organisation.id", index=True)
    offering_id: str = Field(max_length=100)
    plan_id: str = Field(max_length=128)
    parameters: dict[str, Any] = json_field()
    context: dict[str, Any] = json_field()
    status: InstanceStatus = Field(default=InstanceStatus.pending, sa_type=_enum(InstanceStatus))
    operation: str = Field(max_length=64)
    request_nonce: str | None = Field(default=None, max_length=128)
    definition: str | None = Field(default=None, max_length=63)
    run_id: uuid.UUID | None = Field(default=None, foreign_key="run.id")
    decided_by: str | None = Field(default=None, max_length=200)
    decided_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    reason: str | None = Field(default=None, sa_type=Text)
    created_at: datetime = created_field()
    ended_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class ServiceBinding(SQLModel, table=True):
    """Connection details handed to the requester, sealed at rest (provider side)."""

    __tablename__ = "service_binding"
    __table_args__ = (UniqueConstraint("instance_id", "binding_id"),)

    id: uuid.UUID = id_field()
    instance_id: uuid.UUID = Field(foreign_key="service_instance.id", index=True)
    binding_id: str = Field(max_length=128)
    sealed: str = Field(sa_type=Text)
    created_at: datetime = created_field()
    deleted_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class UsageRecord(SQLModel, table=True):
    """Who used which plan of which offering, from when to when: the basis for settling."""

    __tablename__ = "usage_record"

    id: uuid.UUID = id_field()
    instance_id: uuid.UUID = Field(foreign_key="service_instance.id", index=True)
    client: str = Field(max_length=300, index=True)
    organisation: str = Field(max_length=300, description="the requesting organisation")
    offering_id: str = Field(max_length=100)
    plan_id: str = Field(max_length=128)
    started_at: datetime = Field(sa_type=UTCDateTime)
    ended_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class ConsumerStatus(enum.StrEnum):
    """Where a service one of our organisations requested from a peer is."""

    requesting = "requesting"  # being sent
    in_progress = "in progress"  # the provider is deciding or provisioning
    updating = "updating"  # the provider applies a change of plan or parameters
    succeeded = "succeeded"
    failed = "failed"
    deprovisioning = "deprovisioning"
    ended = "ended"


class ConsumerService(SQLModel, table=True):
    """A service an organisation of ours requested from a peer (consumer side)."""

    __tablename__ = "consumer_service"

    id: uuid.UUID = id_field()
    organisation_id: uuid.UUID = Field(foreign_key="organisation.id", index=True)
    peer_id: uuid.UUID = Field(foreign_key="peer.id", index=True)
    offering_id: str = Field(max_length=100)
    plan_id: str = Field(max_length=128)
    parameters: dict[str, Any] = json_field()
    status: ConsumerStatus = Field(default=ConsumerStatus.requesting, sa_type=_enum(ConsumerStatus))
    operation: str | None = Field(default=None, max_length=128)
    description: str | None = Field(default=None, sa_type=Text)
    binding_id: str | None = Field(default=None, max_length=128)
    sealed: str | None = Field(default=None, sa_type=Text)
    requested_by: str = Field(max_length=200)
    created_at: datetime = created_field()
    checked_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    ended_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
