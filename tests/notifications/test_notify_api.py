"""The notifications API and page: owners manage, members read without secrets, bad
channels are refused with a field error and nothing saved."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from infracms.config import Settings
from infracms.db import session_scope
from infracms.errors import InvalidInput
from infracms.models import Role
from infracms.models.notification import NotificationChannel
from infracms.services import notification_settings as channels
from infracms.services.notification_senders import DeliveryFailed, check_resolved_target
from tests.helpers import count, make_org, make_user, password_of, sign_in
from tests.notifications.conftest import owner_of

API = "/api/v1/orgs/clinic/notifications"
HOOK = {
    "name": "ops",
    "kind": "webhook",
    "url": "https://hooks.example/services/T000/B000/XXXXSECRETPATH",
    "hmac_secret": "a-shared-secret-of-enough-length",
}


@pytest.fixture
def people(client: TestClient, engine: Engine, settings: Settings) -> TestClient:
    make_org(engine, "clinic")
    make_user(engine, settings, "olivia", clinic=Role.owner)
    make_user(engine, settings, "victor", clinic=Role.viewer)
    make_user(engine, settings, "edwina", clinic=Role.editor)
    return client


def csrf_of(page: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert found is not None
    return found.group(1)


def as_user(client: TestClient, engine: Engine, settings: Settings, name: str) -> TestClient:
    client.cookies.clear()
    sign_in(client, engine, settings, name, password_of(name))
    return client


def test_owner_adds_a_channel_and_a_rule_and_members_read_them(
    people: TestClient, engine: Engine, settings: Settings
) -> None:
    owner = as_user(people, engine, settings, "olivia")
    made = owner.post(f"{API}/channels", json=HOOK)
    assert made.status_code == 201, made.text
    assert made.json()["has_hmac_secret"] is True and "hmac_secret" not in made.json()
    assert (
        owner.post(f"{API}/rules", json={"channel": "ops", "kind": "run.failed"}).status_code == 201
    )
    assert owner.get(f"{API}/channels").json()[0]["url"] == HOOK["url"]
    page = owner.get("/orgs/clinic/notifications")
    assert page.status_code == 200 and "run.failed" in page.text and "Add a channel" in page.text
    assert owner.get(f"{API}/deliveries").json()["total"] == 0
    bad = owner.post(f"{API}/channels", json={**HOOK, "name": "lan", "url": "http://10.0.0.9/"})
    assert bad.status_code == 422 and "private address" in bad.text


@pytest.mark.security
def test_a_viewer_sees_no_secret_and_no_webhook_path_and_cannot_manage(
    people: TestClient, engine: Engine, settings: Settings
) -> None:
    as_user(people, engine, settings, "olivia").post(f"{API}/channels", json=HOOK)
    viewer = as_user(people, engine, settings, "victor")
    [seen] = viewer.get(f"{API}/channels").json()
    assert seen["url"] == "https://hooks.example/…"
    page = viewer.get("/orgs/clinic/notifications")
    for answer in (viewer.get(f"{API}/channels").text, page.text):
        assert "XXXXSECRETPATH" not in answer and HOOK["hmac_secret"] not in answer
    assert "Add a channel" not in page.text
    for name in ("victor", "edwina"):
        member = as_user(people, engine, settings, name)
        assert member.post(f"{API}/channels", json={**HOOK, "name": "mine"}).status_code == 403
        assert (
            member.post(
                f"{API}/rules", json={"channel": "ops", "kind": "run.succeeded"}
            ).status_code
            == 403
        )
        assert member.delete(f"{API}/channels/ops").status_code == 403
    assert count(engine, NotificationChannel) == 1


@pytest.mark.security
def test_an_outsider_reads_nothing(people: TestClient, engine: Engine, settings: Settings) -> None:
    make_org(engine, "other")
    make_user(engine, settings, "mallory", other=Role.owner)
    as_user(people, engine, settings, "olivia").post(f"{API}/channels", json=HOOK)
    mallory = as_user(people, engine, settings, "mallory")
    for path in ("channels", "rules", "deliveries"):
        answer = mallory.get(f"{API}/{path}")
        assert answer.status_code in (403, 404) and "hooks.example" not in answer.text


@pytest.mark.security
@pytest.mark.parametrize(
    ("url", "complaint"),
    [
        ("ftp://hooks.example/x", "http:// or https://"),
        ("file:///etc/passwd", "http:// or https://"),
        ("https://user:pw@hooks.example/x", "credentials"),
        ("https://token@hooks.example/x", "credentials"),
        ("http://127.0.0.1:8000/api/v1/orgs", "loopback"),
        ("http://localhost/x", "loopback"),
        ("http://[::1]/x", "loopback"),
        ("http://[::ffff:127.0.0.1]/x", "loopback"),
        ("http://169.254.169.254/latest/meta-data", "link-local"),
        ("http://10.0.0.5/x", "private"),
        ("http://192.168.1.1/x", "private"),
        ("http://0.0.0.0/x", "unspecified"),
        ("http://127.1/x", "not a valid IP address"),
        ("http://2130706433/x", "not a valid IP address"),
        ("http://0x7f000001/x", "not a valid IP address"),
        ("https://hooks.example/x#frag", "fragment"),
        ("https:///nohost", "must name a host"),
        ("https://hooks.example/a b", "without spaces"),
    ],
)
def test_bad_webhook_urls_are_refused_with_a_field_error_and_nothing_saved(
    clinic: Engine, settings: Settings, url: str, complaint: str
) -> None:
    with session_scope(clinic, write=True) as session, pytest.raises(InvalidInput) as refused:
        channels.create_channel(
            session=session,
            actor=owner_of(clinic),
            settings=settings,
            organisation="clinic",
            data={**HOOK, "url": url},
        )
    assert complaint in refused.value.errors["url"]
    assert count(clinic, NotificationChannel) == 0


def test_a_node_admin_may_allow_private_targets(clinic: Engine, node: Settings) -> None:
    with session_scope(clinic, write=True) as session:
        channels.create_channel(
            session=session,
            actor=owner_of(clinic),
            settings=node,
            organisation="clinic",
            data={**HOOK, "url": "http://127.0.0.1:9/hook"},
        )
    assert count(clinic, NotificationChannel) == 1


@pytest.mark.security
def test_a_name_resolving_to_a_private_address_is_not_sent_to(
    clinic: Engine, settings: Settings
) -> None:
    with pytest.raises(DeliveryFailed, match="loopback"):
        check_resolved_target("http://127.1/x")


@pytest.mark.parametrize(
    ("body", "complaint"),
    [
        ({"name": "m", "kind": "email", "recipients": []}, "at least one recipient"),
        ({"name": "m", "kind": "email", "recipients": ["not-an-address"]}, "not an email address"),
        (
            {"name": "m", "kind": "email", "recipients": ["a@b.example\r\nBcc: x@y.example"]},
            "not an email address",
        ),
        ({"name": "m", "kind": "webhook"}, "needs a url"),
        (
            {"name": "m", "kind": "webhook", "url": "https://h.example/", "hmac_secret": "short"},
            "at least 16",
        ),
        ({"name": "Bad Name", "kind": "webhook", "url": "https://h.example/"}, "lower-case"),
    ],
)
def test_bad_channels_are_refused(
    clinic: Engine, settings: Settings, body: dict[str, object], complaint: str
) -> None:
    with session_scope(clinic, write=True) as session, pytest.raises(InvalidInput) as refused:
        channels.create_channel(
            session=session,
            actor=owner_of(clinic),
            settings=settings,
            organisation="clinic",
            data=body,
        )
    assert complaint in str(refused.value.errors), refused.value.errors
    assert count(clinic, NotificationChannel) == 0


def test_the_page_form_adds_a_channel_and_shows_a_refusal(
    people: TestClient, engine: Engine, settings: Settings
) -> None:
    owner = as_user(people, engine, settings, "olivia")
    form = {
        "name": "desk",
        "kind": "email",
        "recipients": "desk@clinic.example, boss@clinic.example",
        "body_format": "json",
        "url": "",
        "csrf_token": csrf_of(owner.get("/orgs/clinic/notifications").text),
    }
    answer = owner.post("/orgs/clinic/notifications/channels", data=form, follow_redirects=False)
    assert answer.status_code == 303, answer.text[-1500:]
    bad = owner.post(
        "/orgs/clinic/notifications/channels",
        data={**form, "name": "hook", "kind": "webhook", "url": "http://10.1.1.1/"},
    )
    assert bad.status_code == 422 and "private address" in bad.text
    assert count(engine, NotificationChannel) == 1


def test_duplicates_are_conflicts_with_nothing_written(
    people: TestClient, engine: Engine, settings: Settings
) -> None:
    owner = as_user(people, engine, settings, "olivia")
    assert owner.post(f"{API}/channels", json=HOOK).status_code == 201
    assert owner.post(f"{API}/channels", json=HOOK).status_code == 409
    rule = {"channel": "ops", "kind": "run.failed"}
    assert owner.post(f"{API}/rules", json=rule).status_code == 201
    assert owner.post(f"{API}/rules", json=rule).status_code == 409
    mine = {"kind": "run.failed"}
    assert owner.post(f"{API}/subscriptions", json=mine).status_code == 201
    assert owner.post(f"{API}/subscriptions", json=mine).status_code == 409
    assert [s["kind"] for s in owner.get(f"{API}/subscriptions").json()] == ["run.failed"]
    assert owner.delete(f"{API}/subscriptions?kind=run.failed").status_code == 204
