"""Offerings whose instance is entries named after it in the module's list settings.

postgresql's `managed-postgresql` (a database and its owner role) and backup's
`offsite-backup` (a served repository) work the same way: a parameter names the
instance; provisioning refuses a name already listed; an update keeps the name;
removal takes the entries out and lists the name in the matching ``absent_*`` setting,
which the module's role acts on. ``NamedEntryOffering`` does those steps once; a module
says what its entries are (``provision``) and what else changes (``update``, ``remove``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import ClassVar

from infracms.modules.offerings import Offering, Plan, ProvidedOffering, ServiceHost
from infracms.modules.targets import Plain, PlainMapping


def entries(settings: PlainMapping, listed: str) -> list[Mapping[str, Plain]]:
    """The entries of the list setting `listed` (none when it is not set)."""
    value = settings.get(listed, [])
    if isinstance(value, str) or not isinstance(value, Sequence):
        raise ValueError(f"{listed}: expected a list, got {type(value).__name__}")
    found = [entry for entry in value if isinstance(entry, Mapping)]
    if len(found) != len(value):
        raise ValueError(f"{listed}: expected a list of entries")
    return found


def names(settings: PlainMapping, listed: str) -> list[str]:
    """The strings of the list setting `listed` (an ``absent_*`` list)."""
    value = settings.get(listed, [])
    if isinstance(value, str) or not isinstance(value, Sequence):
        raise ValueError(f"{listed}: expected a list, got {type(value).__name__}")
    return [str(item) for item in value]


class NamedEntryOffering(Offering):
    """An offering whose instance is the entries named after it in the settings' lists."""

    key: ClassVar[str]
    """The parameter that names an instance (``database``, ``name``)."""
    noun: ClassVar[str]
    """What an instance is called in messages (``database``, ``repository``)."""
    place: ClassVar[str]
    """Where its name must be free, in messages (``on this server``)."""
    rename_advice: ClassVar[str] = "request another instance"
    lists: ClassVar[Mapping[str, str]]
    """{list setting whose entries are named: the setting that lists the absent ones}."""

    def provision(
        self, settings: dict[str, Plain], name: str, *, provided: ProvidedOffering,
        parameters: PlainMapping,
    ) -> dict[str, Plain]:  # fmt: skip
        """The base `settings` with the instance called `name` added."""
        raise NotImplementedError(f"{type(self).__name__} does not say what an instance is")

    def update(
        self, settings: dict[str, Plain], name: str, *, provided: ProvidedOffering,
        parameters: PlainMapping,
    ) -> dict[str, Plain]:  # fmt: skip
        """The instance's `settings` after its parameters changed (its name kept)."""
        return settings

    def remove(self, settings: dict[str, Plain], name: str) -> dict[str, Plain]:
        """`settings` (its entries already out, its name listed absent) with anything
        else that was the instance's taken out too."""
        return settings

    def instance_settings(
        self, *, provided: ProvidedOffering, plan: Plan, parameters: PlainMapping
    ) -> dict[str, Plain] | None:
        """The provider's base settings with the instance added; a name taken is refused."""
        name = str(parameters[self.key])
        settings = dict(provided.settings)
        taken = {entry.get("name") for listed in self.lists for entry in entries(settings, listed)}
        if name in taken:
            raise ValueError(f"{self.noun} {name!r} is taken {self.place}")
        return self.provision(settings, name, provided=provided, parameters=parameters)

    def updated_settings(
        self,
        *,
        provided: ProvidedOffering,
        plan: Plan,
        settings: PlainMapping,
        parameters: PlainMapping,
        previous: PlainMapping,
    ) -> dict[str, Plain] | None:
        """The instance changed to these parameters; renaming it is refused."""
        name = str(previous[self.key])
        if parameters[self.key] != name:
            raise ValueError(f"{self.noun} {name!r} cannot be renamed: {self.rename_advice}")
        return self.update(dict(settings), name, provided=provided, parameters=parameters)

    def removal_settings(
        self,
        *,
        provided: ProvidedOffering,
        plan: Plan,
        settings: PlainMapping,
        parameters: PlainMapping,
    ) -> dict[str, Plain] | None:
        """The instance's entries taken out and its name listed absent."""
        name = str(parameters[self.key])
        removed = dict(settings)
        for listed, absent in self.lists.items():
            removed[listed] = [e for e in entries(settings, listed) if e.get("name") != name]
            removed[absent] = sorted({*names(settings, absent), name})
        return self.remove(removed, name)

    def last_entry(
        self, settings: PlainMapping, listed: str, hosts: Sequence[ServiceHost]
    ) -> Mapping[str, Plain]:
        """The instance's entry of `listed` (provisioning adds it last); refused without
        one, or without a host."""
        found = entries(settings, listed)
        if not found or not hosts:
            raise ValueError(f"the instance has no {self.noun} or no host")
        return found[-1]
