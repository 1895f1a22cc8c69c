"""The calendars module (Radicale): who may sign in, TLS before the network, the config."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from infracms.modules.calendars.module import Calendars, CalendarsSettings
from tests.modules.ansible import render
from tests.modules.conftest import errors_of, refused_field
from tests.modules.samples import role_variables, sample

ROLE = Path(Calendars.role)
ALICE = {"name": "alice", "password": {"$credential": "cal-alice"}}


def calendars(**fields: Any) -> dict[str, Any]:
    return {"users": [ALICE]} | fields


def test_defaults_listen_on_the_host_only_without_tls() -> None:
    settings = CalendarsSettings.model_validate(calendars())
    assert (settings.listen, settings.port, settings.tls_certificate_path) == (
        "localhost",
        5232,
        None,
    )


def test_the_network_without_tls_is_refused_on_listen() -> None:
    errors = errors_of(CalendarsSettings, calendars(listen="network"))
    assert list(errors) == ["listen"], errors
    assert "in the clear" in errors["listen"]


def test_a_certificate_needs_its_key_and_the_other_way_round() -> None:
    path = {"tls_certificate_path": "/etc/ssl/certs/site.pem"}
    assert refused_field(CalendarsSettings, calendars(**path)) == "tls_key"
    key = {"tls_key": {"$credential": "site-key"}}
    assert refused_field(CalendarsSettings, calendars(**key)) == "tls_key"


def test_people_are_listed_once_and_need_a_password_reference() -> None:
    assert refused_field(CalendarsSettings, calendars(users=[ALICE, ALICE])) == "users"
    plain = {"name": "bob", "password": "in the clear"}
    assert refused_field(CalendarsSettings, calendars(users=[plain])) == "users"
    assert refused_field(CalendarsSettings, calendars(users=[])) == "users"
    odd = {"name": "Bob:1", "password": {"$credential": "cal-bob"}}
    assert refused_field(CalendarsSettings, calendars(users=[odd])) == "users"


def test_passwords_and_the_tls_key_are_secret_fields() -> None:
    assert Calendars.secret_fields() == {"users[].password", "tls_key"}


def test_the_config_listens_where_asked_and_keeps_collections_private(tmp_path: Path) -> None:
    local = render(ROLE, "config.j2", role_variables(Calendars, calendars()), tmp_path)
    assert "hosts = 127.0.0.1:5232, [::1]:5232" in local
    assert "ssl = False" in local
    assert "type = owner_only" in local
    assert "htpasswd_encryption = bcrypt" in local
    network = render(ROLE, "config.j2", role_variables(Calendars, sample("calendars")), tmp_path)
    assert "hosts = 0.0.0.0:5232, [::]:5232" in network
    assert "ssl = True" in network
    assert "certificate = /etc/ssl/certs/ssl-cert-snakeoil.pem" in network
    assert "key = /etc/radicale/infracms-tls.key" in network
    assert "BEGIN PRIVATE KEY" not in network  # the key goes to its own file, 0640 root:radicale
