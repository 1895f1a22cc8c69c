"""Modules declare where their users' data lives; the backup module backs it up."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from infracms.modules.backup.module import Backup
from infracms.modules.calendars.module import Calendars
from infracms.modules.render import DefinitionRow, HostRow, settle, shapes
from infracms.modules.targets import HostFacts
from tests.modules.samples import sample

CALENDAR_DATA = ("/var/lib/radicale/collections", "/etc/radicale")


def _backup(**fields: Any) -> dict[str, Any]:
    settings = sample("backup") | fields
    return Backup.settings.model_validate(settings).model_dump(mode="json")


def _extra(settings: dict[str, Any], data_paths: tuple[str, ...]) -> dict[str, Any]:
    facts = HostFacts("web1", {}, "root", 22, tuple(sorted(data_paths)))
    return dict(Backup.extra_variables(settings=settings, host=facts))


def test_calendars_declare_their_data() -> None:
    assert Calendars.data_paths == CALENDAR_DATA


def test_backup_adds_the_data_its_paths_do_not_hold() -> None:
    extra = _extra(_backup(paths=["/etc", "/srv/www"]), CALENDAR_DATA)
    assert extra == {"paths": ["/etc", "/srv/www", "/var/lib/radicale/collections"]}


def test_backup_adds_nothing_when_its_paths_hold_it_already_or_it_is_told_not_to() -> None:
    assert _extra(_backup(paths=["/etc", "/var/lib"]), CALENDAR_DATA) == {}
    assert _extra(_backup(paths=["/srv"], module_data=False), CALENDAR_DATA) == {}
    assert _extra(_backup(paths=["/srv"]), ()) == {}
    # a prefix is not a parent: /var/li does not hold /var/lib/radicale/collections
    extra = _extra(_backup(paths=["/var/li", "/etc"]), CALENDAR_DATA)
    assert extra["paths"][-1] == "/var/lib/radicale/collections"


def test_a_host_serving_repositories_only_is_not_made_a_backup_client() -> None:
    key = sample("users")["users"][0]["ssh_keys"][0]
    served = {"serve": [{"name": "office", "ssh_public_key": key}]}
    settings = Backup.settings.model_validate(served).model_dump(mode="json")
    assert _extra(settings, CALENDAR_DATA) == {}


def test_rendering_gives_backup_the_data_of_the_modules_on_each_host() -> None:
    hosts = [HostRow("web1", ("office",), {}), HostRow("web2", ("office",), {})]
    backup = _backup(paths=["/etc", "/srv/www"])
    definitions = [
        DefinitionRow("backup-office", "backup", "group", "office", backup),
        DefinitionRow("calendars-web1", "calendars", "host", "web1", {"users": []}),
    ]
    found = shapes(hosts, {"office": None}, definitions, {"backup": False, "calendars": False})

    def extra(module: str, settings: Mapping[str, Any], host: HostFacts) -> Any:
        return Backup.extra_variables(settings=settings, host=host) if module == "backup" else None

    settled = settle(found, extra, data_paths={"calendars": Calendars.data_paths})
    assert settled["web1"]["backup"]["paths"][-1] == "/var/lib/radicale/collections"
    assert settled["web2"]["backup"]["paths"] == ["/etc", "/srv/www"]  # no calendars there
