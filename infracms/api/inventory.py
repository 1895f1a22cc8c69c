"""/api/v1/orgs/{org}/hosts, /groups and /credentials: an organisation's inventory."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, status
from pydantic import BaseModel, Field, SecretStr

from infracms import db
from infracms.api.deps import ActorDep, KeyringDep, LoneActorDep, SessionDep, SettingsDep
from infracms.models.credential import (
    CredentialCreate,
    CredentialPublic,
    CredentialReplace,
    CredentialUpdate,
)
from infracms.models.host import (
    GroupCreate,
    GroupHosts,
    GroupPublic,
    GroupUpdate,
    HostCreate,
    HostFilter,
    HostPublic,
    HostSort,
    HostUpdate,
)
from infracms.models.validators import DB_INT_MAX
from infracms.services import bootstrap, credentials, group_hosts, inventory
from infracms.services.common import MAX_PAGE

router = APIRouter(prefix="/orgs/{org}", tags=["inventory"])


class HostPage(BaseModel):
    """A page of hosts."""

    items: list[HostPublic]
    total: int
    limit: int
    offset: int


@router.get("/hosts", response_model=HostPage)
def list_hosts(
    org: str,
    session: SessionDep,
    actor: ActorDep,
    filters: Annotated[HostFilter, Query()],
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50,
    offset: Annotated[int, Query(ge=0, le=DB_INT_MAX)] = 0,
    sort: Annotated[
        HostSort,
        Query(description="a field to order by; a leading `-` for descending; ties by name"),
    ] = "name",
) -> HostPage:
    """A page of the organisation's hosts, narrowed by name, group (and the groups inside
    it), pinned key and standing after their runs, ordered by `sort` (by name unless told)."""
    found = inventory.list_hosts(
        session=session,
        actor=actor,
        organisation=org,
        limit=limit,
        offset=offset,
        filters=filters,
        sort=sort,
    )
    return HostPage(items=found.items, total=found.total, limit=found.limit, offset=found.offset)


@router.post("/hosts", response_model=HostPublic, status_code=status.HTTP_201_CREATED)
def create_host(
    org: str, body: HostCreate, session: SessionDep, actor: ActorDep, settings: SettingsDep
) -> HostPublic:
    """Add a host (owners and operators: its address decides where secrets go)."""
    return inventory.create_host(
        session=session,
        actor=actor,
        organisation=org,
        data=body,
        allow_node_target=settings.allow_node_target,
    )


@router.get("/hosts/{name}", response_model=HostPublic)
def get_host(org: str, name: str, session: SessionDep, actor: ActorDep) -> HostPublic:
    """One host."""
    return inventory.get_host(session=session, actor=actor, organisation=org, name=name)


@router.patch("/hosts/{name}", response_model=HostPublic)
def update_host(
    org: str,
    name: str,
    body: HostUpdate,
    session: SessionDep,
    actor: ActorDep,
    settings: SettingsDep,
) -> HostPublic:
    """Change a host; a pinned key is replaced only with POST …/host-key."""
    return inventory.update_host(
        session=session,
        actor=actor,
        organisation=org,
        name=name,
        data=body,
        allow_node_target=settings.allow_node_target,
    )


class ScanResult(BaseModel):
    """The key a host presents, and the one pinned for it (if any)."""

    host_key: str
    fingerprint: str
    pinned_fingerprint: str | None = None


class BootstrapRequest(BaseModel):
    """A one-time password or key, and the fingerprint the sysadmin confirmed."""

    fingerprint: str = Field(pattern=r"^SHA256:[A-Za-z0-9+/]{43}$")
    password: SecretStr | None = None
    private_key: SecretStr | None = None


class BootstrapReply(BaseModel):
    """How bootstrapping went."""

    fingerprint: str
    status: str
    output: str


class RekeyRequest(BaseModel):
    """The fingerprint of the new key, as the sysadmin confirmed it after a scan."""

    fingerprint: str = Field(pattern=r"^SHA256:[A-Za-z0-9+/]{43}$")


class RekeyReply(BaseModel):
    """The key that was pinned and the one pinned now."""

    old_fingerprint: str | None
    fingerprint: str


@router.get("/hosts/{name}/scan", response_model=ScanResult)
def scan_host(
    org: str, name: str, request: Request, actor: LoneActorDep, settings: SettingsDep
) -> ScanResult:
    """Ask the host for its SSH key, to confirm its fingerprint before bootstrapping
    or replacing the pinned key (shown too)."""
    engine = request.app.state.engine
    found = bootstrap.scan_host(
        engine=engine,
        actor=actor,
        organisation=org,
        name=name,
        allow_node_target=settings.allow_node_target,
    )
    with db.session_scope(engine) as session:
        pinned = inventory.get_host(session=session, actor=actor, organisation=org, name=name)
    return ScanResult(
        host_key=found.host_key,
        fingerprint=found.fingerprint,
        pinned_fingerprint=pinned.host_key_fingerprint,
    )


@router.post("/hosts/{name}/host-key", response_model=RekeyReply)
def replace_host_key(
    org: str,
    name: str,
    body: RekeyRequest,
    request: Request,
    actor: LoneActorDep,
    settings: SettingsDep,
) -> RekeyReply:
    """Replace the pinned key with the key the host presents now, if its fingerprint is
    the confirmed one; audited with both fingerprints."""
    done = bootstrap.rekey_host(
        engine=request.app.state.engine,
        settings=settings,
        actor=actor,
        organisation=org,
        name=name,
        fingerprint=body.fingerprint,
    )
    return RekeyReply(old_fingerprint=done.old_fingerprint, fingerprint=done.fingerprint)


@router.post("/hosts/{name}/bootstrap", response_model=BootstrapReply)
def bootstrap_host(
    org: str,
    name: str,
    body: BootstrapRequest,
    request: Request,
    actor: LoneActorDep,
    settings: SettingsDep,
) -> BootstrapReply:
    """Pin the confirmed host key and install the node's SSH key with a one-time secret."""
    result = bootstrap.bootstrap_host(
        engine=request.app.state.engine,
        settings=settings,
        actor=actor,
        organisation=org,
        name=name,
        fingerprint=body.fingerprint,
        password=body.password.get_secret_value() if body.password else None,
        private_key=body.private_key.get_secret_value() if body.private_key else None,
    )
    return BootstrapReply(
        fingerprint=result.fingerprint, status=result.status, output=result.output
    )


@router.delete("/hosts/{name}", status_code=status.HTTP_204_NO_CONTENT)
def delete_host(org: str, name: str, session: SessionDep, actor: ActorDep) -> None:
    """Remove a host from the inventory."""
    inventory.delete_host(session=session, actor=actor, organisation=org, name=name)


@router.get("/groups", response_model=list[GroupPublic])
def list_groups(org: str, session: SessionDep, actor: ActorDep) -> list[GroupPublic]:
    """The organisation's groups."""
    return inventory.list_groups(session=session, actor=actor, organisation=org)


@router.post("/groups", response_model=GroupPublic, status_code=status.HTTP_201_CREATED)
def create_group(org: str, body: GroupCreate, session: SessionDep, actor: ActorDep) -> GroupPublic:
    """Add a group."""
    return inventory.create_group(session=session, actor=actor, organisation=org, data=body)


@router.get("/groups/{name}", response_model=GroupPublic)
def get_group(org: str, name: str, session: SessionDep, actor: ActorDep) -> GroupPublic:
    """One group."""
    return inventory.get_group(session=session, actor=actor, organisation=org, name=name)


@router.patch("/groups/{name}", response_model=GroupPublic)
def update_group(
    org: str, name: str, body: GroupUpdate, session: SessionDep, actor: ActorDep
) -> GroupPublic:
    """Change a group."""
    return inventory.update_group(
        session=session, actor=actor, organisation=org, name=name, data=body
    )


@router.delete("/groups/{name}", status_code=status.HTTP_204_NO_CONTENT)
def delete_group(org: str, name: str, session: SessionDep, actor: ActorDep) -> None:
    """Delete a group."""
    inventory.delete_group(session=session, actor=actor, organisation=org, name=name)


@router.get("/groups/{name}/hosts", response_model=list[HostPublic])
def list_group_hosts(org: str, name: str, session: SessionDep, actor: ActorDep) -> list[HostPublic]:
    """The hosts directly in a group (those of its child groups are listed there)."""
    return group_hosts.group_hosts(session=session, actor=actor, organisation=org, name=name)


@router.post("/groups/{name}/hosts", response_model=list[HostPublic])
def add_group_hosts(
    org: str, name: str, body: GroupHosts, session: SessionDep, actor: ActorDep
) -> list[HostPublic]:
    """Put hosts into a group; the group's hosts after."""
    group_hosts.add_hosts(session=session, actor=actor, organisation=org, name=name, data=body)
    return group_hosts.group_hosts(session=session, actor=actor, organisation=org, name=name)


@router.delete("/groups/{name}/hosts/{host}", status_code=status.HTTP_204_NO_CONTENT)
def remove_group_host(org: str, name: str, host: str, session: SessionDep, actor: ActorDep) -> None:
    """Take a host out of a group (it stays in the inventory)."""
    group_hosts.remove_hosts(
        session=session, actor=actor, organisation=org, name=name, data={"hosts": [host]}
    )


@router.get("/credentials", response_model=list[CredentialPublic])
def list_credentials(org: str, session: SessionDep, actor: ActorDep) -> list[CredentialPublic]:
    """The organisation's credentials: metadata only, never the secret."""
    found = credentials.list_credentials(session=session, actor=actor, organisation=org)
    return [credentials.describe(session, item) for item in found]


@router.post("/credentials", response_model=CredentialPublic, status_code=status.HTTP_201_CREATED)
def create_credential(
    org: str, body: CredentialCreate, session: SessionDep, actor: ActorDep, keyring: KeyringDep
) -> CredentialPublic:
    """Store a credential, encrypted at rest."""
    created = credentials.create_credential(
        session=session, actor=actor, keyring=keyring, organisation=org, data=body
    )
    return credentials.describe(session, created)


@router.get("/credentials/{name}", response_model=CredentialPublic)
def get_credential(org: str, name: str, session: SessionDep, actor: ActorDep) -> CredentialPublic:
    """One credential's metadata."""
    found = credentials.get_credential(session=session, actor=actor, organisation=org, name=name)
    return credentials.describe(session, found)


@router.post("/credentials/{name}/secret", response_model=CredentialPublic)
def replace_credential(
    org: str,
    name: str,
    body: CredentialReplace,
    session: SessionDep,
    actor: ActorDep,
    keyring: KeyringDep,
) -> CredentialPublic:
    """Give a credential a new secret: same name, kind, scope and hosts (audited)."""
    found = credentials.replace_credential(
        session=session, actor=actor, keyring=keyring, organisation=org, name=name, data=body
    )
    return credentials.describe(session, found)


@router.patch("/credentials/{name}", response_model=CredentialPublic)
def update_credential(
    org: str, name: str, body: CredentialUpdate, session: SessionDep, actor: ActorDep
) -> CredentialPublic:
    """Change a credential's description or scope (owners, operators)."""
    found = credentials.update_credential(
        session=session,
        actor=actor,
        organisation=org,
        name=name,
        data=body.model_dump(exclude_unset=True),
    )
    return credentials.describe(session, found)


@router.delete("/credentials/{name}", status_code=status.HTTP_204_NO_CONTENT)
def delete_credential(org: str, name: str, session: SessionDep, actor: ActorDep) -> None:
    """Delete a credential that no host uses."""
    credentials.delete_credential(session=session, actor=actor, organisation=org, name=name)
