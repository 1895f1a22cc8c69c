"""Definitions: revisions, history, diff, rollback, secrets as references, import/export."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlmodel import Session, select

from infracms.db import session_scope
from infracms.errors import Conflict, InvalidInput, NotFound
from infracms.models import Revision
from infracms.plugins import Plugins
from infracms.services import definitions, definitions_io, inventory, modules, rendering
from tests.helpers import ADMIN, audit_size, make_org
from tests.services.test_modules import FAKES


@pytest.fixture
def plugins() -> Plugins:
    return Plugins.load(builtins=FAKES, entry_points=False)


@pytest.fixture
def clinic(engine: Engine, plugins: Plugins) -> Engine:
    """An organisation with base, site and motd enabled, hosts web1/web2 and groups all > web."""
    make_org(engine, "clinic")
    with session_scope(engine, write=True) as session:
        for name in ("base", "site", "motd"):
            modules.set_available(
                session=session, actor=ADMIN, plugins=plugins, name=name, available=True
            )
        for name in ("site", "motd"):
            modules.enable_module(
                session=session, actor=ADMIN, plugins=plugins, organisation="clinic", name=name
            )
        inventory.create_group(
            session=session, actor=ADMIN, organisation="clinic", data={"name": "all"}
        )
        inventory.create_group(
            session=session,
            actor=ADMIN,
            organisation="clinic",
            data={"name": "web", "parent": "all"},
        )
        for host in ("web1", "web2"):
            inventory.create_host(
                session=session,
                actor=ADMIN,
                organisation="clinic",
                data={"name": host, "address": "10.0.0.1", "groups": ["web"]},
            )
        inventory.create_host(
            session=session,
            actor=ADMIN,
            organisation="clinic",
            data={"name": "db1", "address": "10.0.0.2", "groups": ["all"]},
        )
    return engine


def create(
    engine: Engine,
    plugins: Plugins,
    name: str,
    module: str,
    target: dict[str, str],
    settings: dict[str, object],
) -> None:
    with session_scope(engine, write=True) as session:
        definitions.create_definition(
            session=session,
            actor=ADMIN,
            plugins=plugins,
            organisation="clinic",
            data={
                "name": name,
                "module": module,
                "target": target,
                "settings": settings,
                "message": "first",
            },
        )


def save(
    engine: Engine, plugins: Plugins, name: str, settings: dict[str, object], **extra: object
) -> definitions.DefinitionPublic:
    with session_scope(engine, write=True) as session:
        return definitions.save_revision(
            session=session,
            actor=ADMIN,
            plugins=plugins,
            organisation="clinic",
            name=name,
            data={"settings": settings, **extra},
        )


def test_every_save_is_a_new_revision_and_rollback_republishes(
    clinic: Engine, plugins: Plugins
) -> None:
    create(clinic, plugins, "motd-web", "motd", {"group": "web"}, {"message": "hello"})
    save(clinic, plugins, "motd-web", {"message": "hi", "lines": 3}, message="shorter")
    draft = save(clinic, plugins, "motd-web", {"message": "draft"}, publish=False)
    assert (draft.published, draft.latest) == (2, 3)
    assert draft.settings == {"message": "hi", "lines": 3, "signature": None}
    with session_scope(clinic, write=True) as session:
        rolled = definitions.rollback(
            session=session,
            actor=ADMIN,
            plugins=plugins,
            organisation="clinic",
            name="motd-web",
            data={"revision": 1},
        )
        assert (rolled.published, rolled.latest) == (4, 4)
        assert rolled.settings == {"message": "hello", "lines": 1, "signature": None}
        history = definitions.history(
            session=session, actor=ADMIN, organisation="clinic", name="motd-web"
        )
        assert [r.number for r in history] == [4, 3, 2, 1]
        assert [r.published for r in history] == [True, False, False, False]
        assert history[0].message == "roll back to revision 1"
        change = definitions.diff(
            session=session, actor=ADMIN, organisation="clinic", name="motd-web", old=1, new=2
        )
    assert {c["field"]: (c["before"], c["after"]) for c in change["changes"]} == {
        "message": ("hello", "hi"),
        "lines": (1, 3),
    }
    assert "-message: hello" in change["text"] and "+message: hi" in change["text"]
    with Session(clinic) as session:
        settings = [r.settings for r in session.exec(select(Revision).order_by(Revision.number))]
    assert settings[0] == {"message": "hello", "lines": 1, "signature": None}  # never overwritten


@pytest.mark.parametrize(
    ("data", "field"),
    [
        (
            {"module": "motd", "target": {"host": "web1"}, "settings": {"lines": 0}},
            "settings.lines",
        ),
        (
            {"module": "motd", "target": {"host": "web1"}, "settings": {"lines": "many"}},
            "settings.lines",
        ),
        (
            {"module": "motd", "target": {"host": "web1"}, "settings": {"colour": "red"}},
            "settings.colour",
        ),
        (
            {
                "module": "motd",
                "target": {"host": "web1"},
                "settings": {"signature": "plain-secret"},
            },
            "settings.signature",
        ),
        ({"module": "motd", "target": {"host": "nowhere"}, "settings": {}}, "target.host"),
        ({"module": "motd", "target": {"group": "nowhere"}, "settings": {}}, "target.group"),
        ({"module": "motd", "target": {"host": "web1", "group": "web"}, "settings": {}}, "target"),
        (
            {"module": "motd", "target": {"host": "web1"}, "settings": {"message": "forbidden"}},
            "settings.message",
        ),
        ({"module": "picky", "target": {"host": "web1"}, "settings": {}}, "module"),
    ],
)
def test_bad_definitions_are_refused_and_nothing_saved(
    clinic: Engine, plugins: Plugins, data: dict[str, object], field: str
) -> None:
    before = audit_size(clinic)
    with session_scope(clinic, write=True) as session, pytest.raises(InvalidInput) as caught:
        definitions.create_definition(
            session=session,
            actor=ADMIN,
            plugins=plugins,
            organisation="clinic",
            data={"name": "bad", **data},
        )
    assert field in caught.value.errors, caught.value.errors
    assert audit_size(clinic) == before
    with session_scope(clinic) as session:
        assert (
            definitions.list_definitions(session=session, actor=ADMIN, organisation="clinic") == []
        )


def test_unknown_module_is_404(clinic: Engine, plugins: Plugins) -> None:
    with session_scope(clinic, write=True) as session, pytest.raises(NotFound):
        definitions.create_definition(
            session=session,
            actor=ADMIN,
            plugins=plugins,
            organisation="clinic",
            data={"name": "x", "module": "nope", "target": {"host": "web1"}},
        )


def test_secret_references_are_stored_not_secrets(clinic: Engine, plugins: Plugins) -> None:
    create(clinic, plugins, "m", "motd", {"host": "web1"}, {"signature": {"$credential": "sig"}})
    with pytest.raises(InvalidInput) as caught:
        save(clinic, plugins, "m", {"signature": {"$file": "relative/path"}})
    assert "absolute" in caught.value.errors["settings.signature"]


def test_rendering_precedence_multiple_conflicts_and_extra_variables(
    clinic: Engine, plugins: Plugins
) -> None:
    create(clinic, plugins, "motd-all", "motd", {"group": "all"}, {"message": "all"})
    create(clinic, plugins, "motd-web", "motd", {"group": "web"}, {"message": "web"})
    create(clinic, plugins, "motd-web1", "motd", {"host": "web1"}, {"message": "mine"})
    create(clinic, plugins, "site-a", "site", {"group": "all"}, {"size": 2})
    create(clinic, plugins, "site-b", "site", {"host": "web2"}, {"size": 3})
    with session_scope(clinic) as session:
        rendered = rendering.host_settings(
            session=session, actor=ADMIN, plugins=plugins, organisation="clinic"
        )
    assert rendered["web1"]["motd"]["message"] == "mine"
    assert rendered["web2"]["motd"]["message"] == "web"
    assert rendered["db1"]["motd"]["message"] == "all"
    assert rendered["web2"]["motd"]["greeting"] == "web, web2"  # the dummy's extra_variables hook
    assert [s["size"] for s in rendered["web2"]["site"]] == [2, 3]
    assert [s["size"] for s in rendered["web1"]["site"]] == [2]
    inventory_group = {"name": "web-b", "parent": "all"}
    with session_scope(clinic, write=True) as session:
        inventory.create_group(
            session=session, actor=ADMIN, organisation="clinic", data=inventory_group
        )
        inventory.update_host(
            session=session,
            actor=ADMIN,
            organisation="clinic",
            name="web2",
            data={"groups": ["web", "web-b"]},
        )
    create(clinic, plugins, "motd-web-b", "motd", {"group": "web-b"}, {"message": "b"})
    with session_scope(clinic) as session, pytest.raises(Conflict, match="motd-web, motd-web-b"):
        rendering.host_settings(
            session=session, actor=ADMIN, plugins=plugins, organisation="clinic"
        )


def test_export_then_import_is_a_round_trip_and_idempotent(
    clinic: Engine, plugins: Plugins, tmp_path: Path
) -> None:
    tmp_path = tmp_path / "export"
    create(clinic, plugins, "motd-web", "motd", {"group": "web"}, {"message": "hello", "lines": 2})
    create(clinic, plugins, "site-a", "site", {"host": "web1"}, {"size": 5})
    with session_scope(clinic) as session:
        files = definitions_io.export_definitions(
            session=session, actor=ADMIN, organisation="clinic"
        )
    definitions_io.write_export(files, tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["motd-web.yaml", "site-a.yaml"]
    before = audit_size(clinic)
    report = _import(clinic, plugins, tmp_path)
    assert (report.created, report.updated, sorted(report.unchanged)) == (
        [],
        {},
        ["motd-web", "site-a"],
    )
    assert audit_size(clinic) == before
    text = (tmp_path / "motd-web.yaml").read_text().replace("lines: 2", "lines: 4")
    (tmp_path / "motd-web.yaml").write_text(text)
    (tmp_path / "motd-db.yaml").write_text(
        "module: motd\ntarget: {host: db1}\nsettings:\n  message: db\n"
    )
    dry = _import(clinic, plugins, tmp_path, dry_run=True)
    assert dry.created == ["motd-db"] and list(dry.updated) == ["motd-web"]
    assert audit_size(clinic) == before
    done = _import(clinic, plugins, tmp_path)
    assert done.created == ["motd-db"]
    with session_scope(clinic) as session:
        updated = definitions.get_definition(
            session=session, actor=ADMIN, organisation="clinic", name="motd-web"
        )
    assert updated.settings and updated.settings["lines"] == 4 and updated.latest == 2
    assert _import(clinic, plugins, tmp_path).unchanged == ["motd-db", "motd-web", "site-a"]


def test_an_import_with_one_bad_file_changes_nothing(
    clinic: Engine, plugins: Plugins, tmp_path: Path
) -> None:
    tmp_path = tmp_path / "export"
    tmp_path.mkdir()
    (tmp_path / "good.yaml").write_text(
        "module: motd\ntarget: {host: db1}\nsettings:\n  message: fine\n"
    )
    (tmp_path / "bad.yaml").write_text(
        "module: motd\ntarget: {host: db1}\nsettings:\n  message: ok\n  lines: 99\n"
    )
    (tmp_path / "broken.yaml").write_text("module: motd\ntarget: [unclosed\n")
    before = audit_size(clinic)
    with pytest.raises(InvalidInput) as caught:
        _import(clinic, plugins, tmp_path)
    assert caught.value.errors == {
        "broken.yaml:3": "expected ',' or ']', but got '<stream end>' "
        "(while parsing a flow sequence started on line 2)"
    }
    (tmp_path / "broken.yaml").unlink()
    with pytest.raises(InvalidInput) as caught:
        _import(clinic, plugins, tmp_path)
    assert list(caught.value.errors) == ["bad.yaml:5 settings.lines"]
    assert audit_size(clinic) == before
    with session_scope(clinic) as session:
        assert (
            definitions.list_definitions(session=session, actor=ADMIN, organisation="clinic") == []
        )


def _import(
    engine: Engine, plugins: Plugins, directory: Path, dry_run: bool = False
) -> definitions_io.ImportReport:
    with session_scope(engine, write=True) as session:
        return definitions_io.import_definitions(
            session=session,
            actor=ADMIN,
            plugins=plugins,
            organisation="clinic",
            files=definitions_io.read_directory(directory),
            dry_run=dry_run,
        )
