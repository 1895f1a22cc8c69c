"""The new-credential form takes where the credential may be sent; the list shows it."""

from __future__ import annotations

import re

from sqlalchemy import Engine

from infracms.models import Credential
from tests.helpers import count, make_org
from tests.web.conftest import Site
from tests.web.test_inventory_pages import GOOD_HOST


def field_errors(html: str) -> dict[str, str]:
    """The field-level messages of a page, by field name (dotted names too)."""
    found = re.findall(r'<p class="field-error" id="error-([\w.-]+)">(.*?)</p>', html, re.S)
    hidden = '<span class="visually-hidden">Error: </span>'
    return {name: message.replace(hidden, "") for name, message in found}


def test_a_credential_is_limited_to_hosts_and_groups_in_the_form(
    admin: Site, engine: Engine
) -> None:
    make_org(engine, "clinic")
    admin.post("/orgs/clinic/groups/new", {"name": "db", "parent": ""})
    assert admin.post("/orgs/clinic/hosts/new", GOOD_HOST).status_code == 303
    base = {"name": "pg", "kind": "password", "secret_password": "s3cret-Password-1"}
    unknown = admin.post("/orgs/clinic/credentials/new", {**base, "scope_hosts": "nope"})
    assert unknown.status_code == 422
    assert field_errors(unknown.text)["scope"] == "no host called &#39;nope&#39;"
    assert count(engine, Credential) == 0
    made = admin.post(
        "/orgs/clinic/credentials/new", {**base, "scope_hosts": "web-1", "scope_groups": "db"}
    )
    assert made.status_code == 303, made.text
    admin.post("/orgs/clinic/credentials/new", {**base, "name": "any"})
    listed = admin.get("/orgs/clinic/credentials").text
    assert "host <code>web-1</code>, group <code>db</code>" in listed
    assert "any host" in listed
