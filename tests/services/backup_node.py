"""A node worth backing up, for the backup tests: people, hosts, a sealed credential,
definitions with revisions, runs, and a few thousand audit entries."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlmodel import select

from infracms.config import Settings
from infracms.db import make_engine, session_scope
from infracms.keys import load_keyring
from infracms.models import Credential, Definition, Host, Revision, Run, User
from infracms.plugins import Plugins
from infracms.services import audit, credentials, definitions, inventory, modules, node_backup, runs
from infracms.services.context import Actor
from infracms.services.credentials import sealing_context
from infracms.services.setup import initialise
from tests.conftest import make_settings
from tests.helpers import ADMIN, count, make_org, make_user
from tests.services.test_modules import FAKES

PASSPHRASE = b"correct horse battery staple, twice"
SECRET = "the clinic's root password"
FILLER = Actor(kind="user", id="5f0c7a34-1d2e-4e5f-9a7b-0c1d2e3f4a5b", name="alice")


@dataclass(frozen=True)
class Contents:
    """What a node holds, counted (to compare a restored node with the original)."""

    users: int
    hosts: int
    definitions: int
    revisions: int
    runs: int
    credentials: int


def plugins() -> Plugins:
    """The fake modules the tests use."""
    return Plugins.load(builtins=FAKES, entry_points=False)


def populate(settings: Settings, engine: Engine, *, entries: int = 2_000) -> None:
    """Fill the node; its log then holds about `entries` more entries, all integrated."""
    found = plugins()
    make_org(engine, "clinic")
    make_user(engine, settings, "olga")
    with session_scope(engine, write=True) as session:
        for name in ("base", "motd"):
            modules.set_available(
                session=session, actor=ADMIN, plugins=found, name=name, available=True
            )
        modules.enable_module(
            session=session, actor=ADMIN, plugins=found, organisation="clinic", name="motd"
        )
        credentials.create_credential(
            session=session,
            actor=ADMIN,
            keyring=load_keyring(settings),
            organisation="clinic",
            data={"name": "root-pw", "kind": "password", "secret": SECRET},
        )
        inventory.create_group(
            session=session, actor=ADMIN, organisation="clinic", data={"name": "web"}
        )
        for name in ("web1", "web2", "db1"):
            inventory.create_host(
                session=session,
                actor=ADMIN,
                organisation="clinic",
                data={"name": name, "address": "198.51.100.1", "credential": "root-pw"}
                | ({"groups": ["web"]} if name.startswith("web") else {}),
            )
        definitions.create_definition(
            session=session,
            actor=ADMIN,
            plugins=found,
            organisation="clinic",
            data={
                "name": "motd-web",
                "module": "motd",
                "target": {"group": "web"},
                "settings": {"message": "a"},
            },
        )
        definitions.save_revision(
            session=session,
            actor=ADMIN,
            plugins=found,
            organisation="clinic",
            name="motd-web",
            data={"settings": {"message": "b"}},
        )
        for kind in ("plan", "apply"):
            runs.create_run(
                session=session,
                actor=ADMIN,
                plugins=found,
                organisation="clinic",
                data={"kind": kind},
            )
    fill_log(engine, entries)
    audit.sign_checkpoint(engine=engine, settings=settings)


def fill_log(engine: Engine, entries: int, per_transaction: int = 1_000) -> None:
    """Append `entries` audit entries through the audit service, in batches."""
    done = 0
    while done < entries:
        with session_scope(engine, write=True) as session:
            for _ in range(min(per_transaction, entries - done)):
                audit.record(
                    session,
                    actor=FILLER,
                    action="host.update",
                    subject=f"host:clinic/web{done % 50}",
                    payload={"before": {"ssh_port": 22}, "after": {"ssh_port": 2200 + done % 7}},
                )
                done += 1
            session.commit()


def contents(engine: Engine) -> Contents:
    """The node's rows, counted."""
    return Contents(
        users=count(engine, User),
        hosts=count(engine, Host),
        definitions=count(engine, Definition),
        revisions=count(engine, Revision),
        runs=count(engine, Run),
        credentials=count(engine, Credential),
    )


def open_credential(settings: Settings, engine: Engine) -> str:
    """The clinic's root password, opened with the node's keyring."""
    with session_scope(engine) as session:
        credential = session.exec(select(Credential).where(Credential.name == "root-pw")).one()
    return load_keyring(settings).open(credential.ciphertext, context=sealing_context(credential))


FAST_KDF = 10  # scrypt N = 2^10: the format's floor, so each test derives its key in ms


@dataclass(frozen=True)
class Original:
    """The node backed up, what it held, and its archive."""

    settings: Settings
    archive: Path
    contents: Contents
    checkpoint: str
    verifier_key: str


@pytest.fixture(scope="session")
def original(tmp_path_factory: pytest.TempPathFactory) -> Original:
    """A populated SQLite node and one archive of it, made once for the backup tests."""
    root = tmp_path_factory.mktemp("original")
    settings = make_settings(root / "var")
    engine = make_engine(settings)
    initialise(settings, engine)
    populate(settings, engine, entries=2_000)
    with session_scope(engine) as session:
        checkpoint = audit.latest_checkpoint(session=session)
    report = node_backup.create(
        settings=settings,
        engine=engine,
        actor=ADMIN,
        to=root / "backups",
        passphrase=PASSPHRASE,
        kdf_log2_n=FAST_KDF,
    )
    held = contents(engine)
    engine.dispose()
    return Original(settings, report.path, held, checkpoint, audit.verifier_key(settings))
