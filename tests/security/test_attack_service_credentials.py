"""An editor of the provider's organisation refers to a credential generated for a
peer's service instance (``svc-…-1``, the peer's database password) in a definition of
their own on a host outside the instance's pool: the run would have sent it there.
Generated credentials are scoped to the instance's pool, so the run fails before
anything is resolved or sent, naming the definition and the credential."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlmodel import col, select

from infracms.db import session_scope
from infracms.errors import InvalidInput
from infracms.keys import load_keyring
from infracms.models.credential import Credential
from infracms.models.run import Run
from infracms.services import definitions, runs
from infracms.services.run_input import load_run_input
from tests.security._peers_support import ADMIN, Provider, provider_node
from tests.security.test_peers_exports import _approve_all

pytestmark = pytest.mark.security


@pytest.fixture
def provider(tmp_path: Path) -> Iterator[Provider]:
    with provider_node(tmp_path) as node:
        yield node


def _generated(provider: Provider) -> Credential:
    with session_scope(provider.node.engine) as session:
        return session.exec(select(Credential).where(col(Credential.name).startswith("svc-"))).one()


def test_a_generated_credential_cannot_be_sent_outside_its_pool(provider: Provider) -> None:
    assert provider.provision({"database": "app"}).status_code == 202
    _approve_all(provider)
    generated = _generated(provider)
    node = provider.node
    plugins = node.client.app.state.plugins  # type: ignore[attr-defined]
    with session_scope(node.engine, write=True) as session:
        definitions.create_definition(
            session=session,
            actor=ADMIN,
            plugins=plugins,
            organisation="coop",
            data={
                "name": "steal",
                "module": "postgresql",
                "target": {"host": "h2"},  # in group store, not in the pool db
                "settings": {"roles": [{"name": "x", "password": {"$credential": generated.name}}]},
            },
        )
        run_id = runs.create_run(
            session=session,
            actor=ADMIN,
            plugins=plugins,
            organisation="coop",
            data={"kind": "plan", "definitions": ["steal"]},
        ).id
    with session_scope(node.engine) as session:
        run = session.get(Run, run_id)
        assert run is not None
        with pytest.raises(InvalidInput) as refused:
            load_run_input(
                session,
                run=run,
                settings=node.settings,
                plugins=plugins,
                keyring=load_keyring(node.settings),
            )
    assert f"credential {generated.name} may not be sent to host h2" in str(refused.value)
