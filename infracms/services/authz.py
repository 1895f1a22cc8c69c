"""Authorisation, decided here and nowhere else: (actor, action, organisation) → allow or deny.

Node admins may do everything. Everyone else acts through a role in one organisation;
the matrix below lists, for each action, the roles allowed it. Node-level actions
(no organisation) are for admins only.

A node token (an API token a node admin issues with the node scope) acts for its admin
in NODE_TOKEN_ACTIONS only: the node-level actions, and reading organisations and
managing who belongs to them. It reaches no organisation's content (hosts, credentials,
definitions, runs, audit entries): an organisation token does that.
"""

from __future__ import annotations

import enum
import uuid

from infracms.errors import PermissionDenied
from infracms.models.user import Role
from infracms.services.context import Actor


class Action(enum.StrEnum):
    """Everything that can be allowed or denied."""

    org_create = "org.create"
    org_read = "org.read"
    org_update = "org.update"
    org_delete = "org.delete"
    user_create = "user.create"
    user_list = "user.list"
    user_manage = "user.manage"
    node_token_create = "node_token.create"
    member_read = "member.read"
    member_manage = "member.manage"
    host_read = "host.read"
    host_write = "host.write"
    host_connect = "host.connect"
    credential_use = "credential.use"
    group_read = "group.read"
    group_write = "group.write"
    credential_read = "credential.read"
    credential_write = "credential.write"
    token_create = "token.create"
    audit_read = "audit.read"
    module_make_available = "module.make_available"
    module_enable = "module.enable"
    definition_read = "definition.read"
    definition_write = "definition.write"
    run_read = "run.read"
    run_plan = "run.plan"
    run_apply = "run.apply"
    peer_manage = "peer.manage"
    broker_manage = "broker.manage"
    usage_read = "usage.read"
    offering_read = "offering.read"
    offering_publish = "offering.publish"
    provision_read = "provision.read"
    provision_decide = "provision.decide"
    catalog_read = "catalog.read"
    service_read = "service.read"
    service_request = "service.request"
    service_credentials = "service.credentials"
    secret_source_grant = "secret_source.grant"


ALL_ROLES = frozenset(Role)
EDITORS = frozenset({Role.owner, Role.operator, Role.editor})

ROLE_ACTIONS: dict[Action, frozenset[Role]] = {
    Action.org_create: frozenset(),
    Action.org_read: ALL_ROLES,
    Action.org_update: frozenset({Role.owner}),
    Action.org_delete: frozenset(),
    Action.user_create: frozenset(),
    Action.user_list: frozenset(),
    Action.user_manage: frozenset(),
    Action.node_token_create: frozenset(),
    Action.member_read: ALL_ROLES,
    Action.member_manage: frozenset({Role.owner}),
    Action.host_read: ALL_ROLES,
    Action.host_write: EDITORS,
    # where ssh goes and with which secret: only for roles that may already use the secret
    Action.host_connect: frozenset({Role.owner, Role.operator}),
    Action.credential_use: frozenset({Role.owner, Role.operator}),
    Action.group_read: ALL_ROLES,
    Action.group_write: EDITORS,
    Action.credential_read: ALL_ROLES,
    Action.credential_write: frozenset({Role.owner, Role.operator}),
    Action.token_create: ALL_ROLES,
    Action.audit_read: frozenset({Role.owner, Role.auditor}),
    Action.module_make_available: frozenset(),
    Action.module_enable: frozenset({Role.owner}),
    Action.definition_read: ALL_ROLES,
    Action.definition_write: EDITORS,
    Action.run_read: ALL_ROLES,
    Action.run_plan: EDITORS,
    Action.run_apply: frozenset({Role.owner, Role.operator}),
    Action.peer_manage: frozenset(),
    Action.broker_manage: frozenset(),
    Action.usage_read: frozenset(),
    Action.offering_read: ALL_ROLES,
    Action.offering_publish: frozenset({Role.owner}),
    Action.provision_read: ALL_ROLES,
    Action.provision_decide: frozenset({Role.owner, Role.operator}),
    Action.catalog_read: ALL_ROLES,
    Action.service_read: ALL_ROLES,
    Action.service_request: frozenset({Role.owner, Role.operator}),
    Action.service_credentials: frozenset({Role.owner, Role.operator}),
    Action.secret_source_grant: frozenset(),
}

# What each action lets a person do, in their words: refusals name it this way first
# and keep the action's code in brackets for API clients.
ACTION_WORDS: dict[Action, str] = {
    Action.org_create: "create organisations",
    Action.org_read: "see this organisation",
    Action.org_update: "change this organisation",
    Action.org_delete: "delete organisations",
    Action.user_create: "create accounts",
    Action.user_list: "see the node's accounts",
    Action.user_manage: "manage the node's accounts",
    Action.node_token_create: "make node tokens",
    Action.member_read: "see who the members are",
    Action.member_manage: "manage the members",
    Action.host_read: "see the hosts",
    Action.host_write: "change hosts",
    Action.host_connect: "change where hosts are reached: address, port, user or host key",
    Action.credential_use: "use credentials on hosts",
    Action.group_read: "see the groups",
    Action.group_write: "change groups",
    Action.credential_read: "see the credentials",
    Action.credential_write: "change credentials",
    Action.token_create: "make API tokens",
    Action.audit_read: "read the audit log",
    Action.module_make_available: "make modules available on this node",
    Action.module_enable: "enable modules",
    Action.definition_read: "see the definitions",
    Action.definition_write: "change definitions",
    Action.run_read: "see the runs",
    Action.run_plan: "plan runs",
    Action.run_apply: "apply changes to hosts",
    Action.peer_manage: "manage peers",
    Action.broker_manage: "manage the service broker",
    Action.usage_read: "see the usage of services",
    Action.offering_read: "see the offerings",
    Action.offering_publish: "publish offerings",
    Action.provision_read: "see service requests",
    Action.provision_decide: "approve or refuse service requests",
    Action.catalog_read: "browse the catalog",
    Action.service_read: "see the services requested",
    Action.service_request: "request services",
    Action.service_credentials: "see the connection details of services",
    Action.secret_source_grant: "grant secret sources",
}

NODE_ACTIONS = frozenset(
    {Action.org_create, Action.user_create, Action.user_list, Action.user_manage}
    | {Action.node_token_create}
    | {Action.module_make_available}
    | {Action.peer_manage, Action.broker_manage, Action.usage_read}
    | {Action.secret_source_grant}
)


NODE_TOKEN_ACTIONS = NODE_ACTIONS | {Action.org_read, Action.member_read, Action.member_manage}


def is_allowed(actor: Actor, action: Action, organisation_id: uuid.UUID | None) -> bool:
    """Whether `actor` may do `action` in the organisation (None for node-level actions)."""
    if actor.node_scope:
        return action in NODE_TOKEN_ACTIONS
    if actor.is_admin:
        return True
    if action in NODE_ACTIONS or organisation_id is None:
        return False
    role = actor.role_in(organisation_id)
    return role is not None and role in ROLE_ACTIONS[action]


def authorize(actor: Actor, action: Action, organisation_id: uuid.UUID | None) -> None:
    """Raise PermissionDenied unless `actor` may do `action` in the organisation."""
    if is_allowed(actor, action, organisation_id):
        return
    what = f"{ACTION_WORDS[action]} ({action})"
    if actor.node_scope:
        raise PermissionDenied(f"a node token may not {what}: use an organisation token")
    if action in NODE_ACTIONS or organisation_id is None:
        raise PermissionDenied(f"only node administrators may {what}")
    role = actor.role_in(organisation_id)
    if role is None:
        raise PermissionDenied(f"{actor.name} is not a member of this organisation")
    raise PermissionDenied(f"the {role} role may not {what}")


def role_covers(granter: Role, granted: Role) -> bool:
    """Whether everything `granted` may do, `granter` may do too (for scoping tokens)."""
    return all(granter in roles for roles in ROLE_ACTIONS.values() if granted in roles)
