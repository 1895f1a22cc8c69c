"""What a module's offerings make of a service instance: its settings, its connection details.

Each function asks the module's offering that the publication names (an
``Offering`` subclass, ``infracms/modules/offerings.py``); one that answers None, or
that the module no longer declares, gets infracms' default.
``instance_settings`` asks the offering's ``instance_settings`` for the settings that
provision a plan with the requester's parameters; without an answer, the
offering's base settings with the parameters merged over them. A secret the module put
in plain in a secret field (a password it generated) becomes a reference to a
credential (``service_secrets``): a definition's revisions never hold the secret.
``connection_details`` asks ``connection_details``
what the requester gets at bind, with the instance's credentials resolved; a module
without an answer hands over where the instance runs, and nothing secret.
``updated_settings`` asks ``updated_settings`` for the instance's settings after a change
of plan or parameters (without an answer: the current settings with the parameters
merged over them); ``removal_settings`` asks ``removal_settings`` for those that remove
the instance from its hosts (without an answer: None, nothing to remove).
"""

from __future__ import annotations

import copy
from typing import Any

from pydantic import ValidationError
from sqlmodel import Session, col, select

from infracms.errors import InvalidInput, NotFound
from infracms.keys import Keyring
from infracms.models.definition import Definition, TargetRef
from infracms.models.federation import PublishedOffering, ServiceInstance
from infracms.models.host import Host, HostGroup
from infracms.models.organisation import Organisation
from infracms.modules.contract import (
    Module,
    Offering,
    Plan,
    ProvidedOffering,
    ServiceHost,
    secret_references,
)
from infracms.plugins import Plugins
from infracms.services import definitions
from infracms.services.common import found
from infracms.services.federation import service_secrets
from infracms.services.federation.broker_errors import BrokerBadRequest, UnsupportedChange
from infracms.services.federation.offerings import module_offerings, plan_of
from infracms.services.modules import module_or_404


def provided(session: Session, *, publication: PublishedOffering) -> ProvidedOffering:
    """A publication as the offering hooks see it."""
    org = session.get(Organisation, publication.organisation_id)
    return ProvidedOffering(
        id=publication.offering_id,
        name=publication.offering,
        organisation=org.name if org else "?",
        settings=copy.deepcopy(publication.settings),
    )


def declared_plan(plugins: Plugins, publication: PublishedOffering, plan: dict[str, Any]) -> Plan:
    """The module's own declaration of a published plan (or one rebuilt from what is stored)."""
    for offering in module_offerings(plugins).get(publication.module, []):
        if offering.name == publication.offering:
            for declared in offering.plans:
                if declared.name == plan.get("plan"):
                    return declared
    return Plan(
        name=str(plan.get("plan", "")),
        title=str(plan.get("title", "")),
        parameters=dict(plan.get("parameters") or {}),
    )


def refuse_references(parameters: dict[str, Any]) -> None:
    """A requester names no secret of ours: a `{"$credential"|"$env"|"$file": …}` in its
    parameters would become a reference in the instance's settings (an offering without
    ``instance_settings`` merges them over the offering's), resolved by our runs."""
    found = [path for path, _, _ in secret_references(parameters)]
    if found:
        raise BrokerBadRequest(
            "parameters may not refer to the provider's secrets ($credential, $env, $file)",
            errors={
                f"parameters.{path}" if path else "parameters": "a secret reference"
                for path in found
            },
        )


def instance_settings(
    session: Session,
    *,
    plugins: Plugins,
    publication: PublishedOffering,
    plan: dict[str, Any],
    parameters: dict[str, Any],
    prefix: str,
) -> service_secrets.InstanceSettings:
    """The settings that provision `plan` with `parameters`, checked by the module's model."""
    refuse_references(parameters)  # again: a request stored before this check existed
    module = module_or_404(plugins, publication.module)
    offering = provided(session, publication=publication)
    try:
        answer = _declared(module, publication).instance_settings(
            provided=offering,
            plan=declared_plan(plugins, publication, plan),
            parameters=copy.deepcopy(parameters),
        )
    except ValueError as exc:  # the module's way to refuse parameters
        raise BrokerBadRequest(f"parameters refused by {module.name}: {exc}") from exc
    if answer is None:
        answer = _merge(copy.deepcopy(publication.settings), parameters)
    generated = service_secrets.take_secrets(module, copy.deepcopy(answer), prefix)
    _validate(module, generated.settings)
    return generated


def updated_settings(
    session: Session,
    *,
    plugins: Plugins,
    row: ServiceInstance,
    plan: dict[str, Any],
    parameters: dict[str, Any],
) -> service_secrets.InstanceSettings:
    """The instance's settings for `plan` and `parameters`, checked by the module's model;
    a secret the module generated anew is taken out under a name not used before."""
    publication = _publication(session, row)
    module = module_or_404(plugins, publication.module)
    current = service_secrets.published_settings(session, row=row)
    try:
        answer = _declared(module, publication).updated_settings(
            provided=provided(session, publication=publication),
            plan=declared_plan(plugins, publication, plan),
            settings=copy.deepcopy(current),
            parameters=copy.deepcopy(parameters),
            previous=copy.deepcopy(row.parameters),
        )
    except ValueError as exc:  # the module's way to refuse a change
        raise UnsupportedChange(f"{module.name} refuses the change: {exc}") from exc
    if answer is None:
        answer = _merge(current, parameters)
    taken = service_secrets.generated_names(session, row=row)
    prefix = service_secrets.credential_prefix(row)
    generated = service_secrets.take_secrets(module, copy.deepcopy(answer), prefix, taken)
    _validate(module, generated.settings)
    return generated


def removal_settings(
    session: Session, *, plugins: Plugins, row: ServiceInstance
) -> dict[str, Any] | None:
    """The settings whose run removes the instance from its hosts, checked by the module's
    model; None when the module has nothing to remove. They may not use the instance's
    generated credentials, which are deleted when it is deprovisioned."""
    publication = _publication(session, row)
    module = module_or_404(plugins, publication.module)
    plan = plan_of(publication, row.plan_id) or {"plan": row.plan_id}
    try:
        answer = _declared(module, publication).removal_settings(
            provided=provided(session, publication=publication),
            plan=declared_plan(plugins, publication, plan),
            settings=service_secrets.published_settings(session, row=row),
            parameters=copy.deepcopy(row.parameters),
        )
    except ValueError as exc:
        raise InvalidInput(f"{module.name} cannot remove the instance: {exc}") from exc
    if answer is None:
        return None
    kept = service_secrets.own_references(answer, row)
    if kept:
        raise InvalidInput(
            f"{module.name}'s removal settings still use the instance's credentials "
            f"{', '.join(sorted(kept))}, which deprovisioning deletes"
        )
    _validate(module, answer)
    return dict(answer)


def connection_details(
    session: Session, *, keyring: Keyring, plugins: Plugins, row: ServiceInstance
) -> dict[str, Any]:
    """What the requester gets at bind: the module's answer, or where the instance runs."""
    publication = session.get(PublishedOffering, row.publication_id)
    publication = found(publication, "the offering")
    hosts = pool_hosts(session, publication=publication)
    plan = next((p for p in publication.plans if p["id"] == row.plan_id), {"plan": row.plan_id})
    answer = _declared(module_or_404(plugins, publication.module), publication).connection_details(
        provided=provided(session, publication=publication),
        plan=declared_plan(plugins, publication, plan),
        settings=service_secrets.resolved_settings(session, keyring=keyring, row=row),
        hosts=hosts,
    )
    details: dict[str, Any] = dict(answer or {"hosts": [host.address for host in hosts]})
    details.update(instance_id=row.instance_id, offering=row.offering_id, plan=row.plan_id)
    return details


def pool_hosts(session: Session, *, publication: PublishedOffering) -> list[ServiceHost]:
    """The hosts an offering's instances go on (the pool group and the groups in it)."""
    org = session.get(Organisation, publication.organisation_id)
    group = session.get(HostGroup, publication.group_id)
    if org is None or group is None:
        return []
    names = definitions.hosts_of(session, org=org, target=TargetRef(group=group.name))
    rows = session.exec(
        select(Host).where(Host.organisation_id == org.id, col(Host.name).in_(names))
    ).all()
    return [
        ServiceHost(name=h.name, address=h.address, ssh_port=h.ssh_port, host_key=h.host_key)
        for h in sorted(rows, key=lambda h: h.name)
    ]


def definitions_on_pool(
    session: Session, *, plugins: Plugins, publication: PublishedOffering
) -> list[str]:
    """Definitions of a single-definition module that already apply to the pool's hosts."""
    module = plugins.registry.get(publication.module)
    org = session.get(Organisation, publication.organisation_id)
    if module is None or module.multiple or org is None:
        return []
    pool = {host.name for host in pool_hosts(session, publication=publication)}
    found = session.exec(
        select(Definition).where(
            Definition.organisation_id == org.id,
            Definition.module == module.name,
            col(Definition.retired_at).is_(None),
        )
    ).all()
    return sorted(
        d.name
        for d in found
        if pool
        & set(
            definitions.hosts_of(
                session, org=org, target=definitions.target_of(session, definition=d)
            )
        )
    )


_UNDECLARED = Offering(name="", title="", description="", plans=())
"""An offering the module no longer declares: every answer is None (infracms' default)."""


def _declared(module: type[Module], publication: PublishedOffering) -> Offering:
    """The module's offering that the publication names."""
    return module.offering(publication.offering) or _UNDECLARED


def _publication(session: Session, row: ServiceInstance) -> PublishedOffering:
    publication = session.get(PublishedOffering, row.publication_id)
    if publication is None:
        raise NotFound(f"the offering of instance {row.instance_id} is gone")
    return publication


def _validate(module: type[Module], settings: dict[str, Any]) -> None:
    try:
        module.settings.model_validate(settings)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()[:10]
        )
        raise BrokerBadRequest(
            f"parameters do not make valid {module.name} settings: {problems}"
        ) from exc


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            base[key] = _merge(base[key], value)
        else:
            base[key] = value
    return base
