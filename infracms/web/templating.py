"""Rendering pages: the Jinja2 environment, the navigation, and `render`."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import jinja2
from fastapi import Request
from fastapi.responses import HTMLResponse
from starlette.templating import Jinja2Templates

TEMPLATES_DIR = Path(__file__).parent / "templates"
NO_STORE = {"cache-control": "no-store"}
ANSI_RE = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07")
CONTROL_RE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


@dataclass(frozen=True)
class NavItem:
    """One link of the top navigation; `section` marks it current."""

    label: str
    href: str
    section: str
    admin_only: bool = False


# The top navigation, in order: the one place a new part of the site adds its item.
NAV: list[NavItem] = [
    NavItem("Organisations", "/orgs", "orgs"),
    NavItem("Modules", "/modules", "modules"),
    NavItem("Definitions", "/definitions", "definitions"),
    NavItem("Runs", "/runs", "runs"),
    NavItem("Catalog", "/catalog", "catalog"),
    NavItem("Audit", "/audit", "audit"),
    NavItem("Peers", "/peers", "peers", admin_only=True),  # with usage, on a tab
    NavItem("Users", "/users", "users", admin_only=True),
    NavItem("API tokens", "/tokens", "tokens"),
]


# Messages shown after a form redirects (`?notice=key`); unknown keys show nothing.
NOTICES = {
    "host-created": "Host added.",
    "schedule-added": "Schedule added: its first check is queued when it is next due.",
    "schedule-removed": "Schedule removed; its runs stay.",
    "drift-acknowledged": "Drift acknowledged: it leaves the dashboard until it changes.",
    "host-deleted": "Host removed from the inventory.",
    "group-created": "Group added.",
    "group-deleted": "Group deleted.",
    "credential-created": "Credential stored. Its secret is sealed and will not be shown.",
    "credential-deleted": "Credential deleted.",
    "credential-replaced": "Secret replaced. The new one is sealed and will not be shown.",
    "host-key-pinned": "Host key pinned: plans and applies can reach the host now.",
    "member-saved": "Role saved.",
    "member-removed": "Member removed.",
    "user-created": "User created.",
    "user-disabled": "User disabled: their sessions ended and their API tokens are refused.",
    "user-enabled": "User enabled: they may sign in again.",
    "user-deleted": "User deleted. Their audit entries keep the name they recorded.",
    "password-changed": "Password changed. Your other sessions were signed out.",
    "password-must-change": "Choose a new password: the one you signed in with works once.",
    "totp-required": "This node asks its administrators for a code at sign-in: set it up first.",
    "totp-off": "Two-factor sign-in is off: your password alone signs you in.",
    "totp-reset": "Two-factor sign-in reset: the user signs in with the password alone now.",
    "hosts-added": "Hosts added to the group.",
    "host-removed-from-group": "Host taken out of the group; it stays in the inventory.",
    "token-revoked": "Token revoked: it no longer works.",
    "saved": "Changes saved.",
    "module-available": "The module is available to organisations now.",
    "module-withdrawn": "The module is no longer available to organisations.",
    "module-enabled": "Module enabled.",
    "module-disabled": "Module disabled.",
    "definition-created": "Definition created; its first revision is published.",
    "revision-saved": "Revision saved and published.",
    "draft-saved": "Revision saved as a draft: publish it to apply it.",
    "revision-published": "Revision published.",
    "rolled-back": "Rolled back: the old settings are published as a new revision.",
    "definition-retired": "Definition retired: it is no longer applied. Its history stays.",
    "run-cancelling": "Cancellation asked: the run stops at its next step.",
    "peer-accepted": "Invitation accepted: the nodes are peers. Sync catalogs for its offerings.",
    "peer-suspended": "Peer suspended: its requests are refused until it is resumed.",
    "peer-active": "Peer resumed: its requests are accepted again.",
    "peer-revoked": "Peer revoked: its keys are removed for good.",
    "invitation-revoked": "Invitation revoked: its token is refused from now on.",
    "offering-published": "Offering published: peers see it at their next catalog sync.",
    "offering-withdrawn": "Offering withdrawn: its instances stay until they are deprovisioned.",
    "request-approved": "Request approved: the run that provisions it has started.",
    "request-declined": "Request declined: the requester is told so.",
    "service-requested": "Service requested: the provider decides, then provisions it.",
    "service-refreshed": "Status asked of the provider.",
    "service-updating": "Change asked: the provider applies it, then hands the details over again.",
    "service-deprovisioning": "Deprovisioning asked: the provider removes the service.",
}


def make_templates() -> Jinja2Templates:
    """The page templates, autoescaped, failing loudly on an undefined name."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES_DIR),
        autoescape=jinja2.select_autoescape(["html"]),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["when"] = _when
    env.filters["sentence"] = _sentence
    env.filters["compact"] = compact
    env.filters["plain"] = plain
    env.filters["price"] = price
    return Jinja2Templates(env=env)


def compact(value: Any) -> str:
    """A setting's value on one line: strings as they are, anything else as JSON."""
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


def price(value: dict[str, Any] | None) -> str:
    """A catalog plan's price in words: ``4.50 EUR a month``, ``free``, or ``—``."""
    if not value:
        return "—"
    if float(value.get("amount", 0)) == 0:
        return "free"
    unit = value.get("unit", "")
    per = {"once": "once", "hour": "an hour"}.get(unit, f"a {unit}")
    return f"{value.get('amount')} {value.get('currency', '')} {per}"


def plain(value: str) -> str:
    """Terminal output without its colour codes and other control characters."""
    return CONTROL_RE.sub("", ANSI_RE.sub("", value))


def _when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M UTC") if value else ""


def _sentence(value: str) -> str:
    """A service message as a sentence: a capital first letter, a full stop at the end."""
    value = value.strip()
    if not value:
        return value
    value = value[0].upper() + value[1:]
    return value if value[-1] in ".!?:" else value + "."


def render(
    request: Request, template: str, context: dict[str, Any] | None = None, status: int = 200
) -> HTMLResponse:
    """A page: `template` with `context`, the signed-in user and the navigation."""
    me = getattr(request.state, "web_user", None)
    nav = [item for item in NAV if me and (me.actor.is_admin or not item.admin_only)]
    full = {"me": me, "nav": nav, "section": "", "problem": None, **(context or {})}
    full["notice"] = NOTICES.get(str(full.get("notice", "")), "")
    templates: Jinja2Templates = request.app.state.web_templates
    return templates.TemplateResponse(request, template, full, status_code=status, headers=NO_STORE)
