"""/orgs/{org}/notifications: channels and rules (owners manage), my email subscriptions,
and every delivery with its state and last error."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from sqlmodel import Session

from infracms.api.deps import SessionDep, SettingsDep
from infracms.errors import InvalidInput
from infracms.models.notification import BodyFormat, ChannelKind, NotificationKind
from infracms.services import notification_settings as service
from infracms.services.authz import Action, is_allowed
from infracms.web.errors import FormProblem, redirect, submit
from infracms.web.forms import text
from infracms.web.pages.orgs import org_view
from infracms.web.session import Form, Poster, SignedIn, WebUser
from infracms.web.templating import render

router = APIRouter()

NEW_CHANNEL = {
    "name": "",
    "kind": "webhook",
    "url": "",
    "body_format": "json",
    "recipients": "",
    "sign_with_node_key": "on",
}


@router.get("/orgs/{org}/notifications")
def notifications_page(
    org: str, request: Request, session: SessionDep, me: SignedIn, notice: str = ""
) -> Response:
    """Channels, rules, my subscriptions and the latest deliveries."""
    return _page(request, session, me, org, NEW_CHANNEL, notice=notice)


@router.post("/orgs/{org}/notifications/channels")
def add_channel(
    org: str, request: Request, session: SessionDep, settings: SettingsDep, me: Poster, form: Form
) -> Response:
    """Add a channel (owners)."""
    values = {key: text(form, key) for key in NEW_CHANNEL}
    secret = text(form, "hmac_secret", strip=False)

    def action() -> Response:
        service.create_channel(
            session=session,
            actor=me.actor,
            settings=settings,
            organisation=org,
            data=_channel_fields(values, secret),
        )
        return redirect(f"/orgs/{org}/notifications?notice=channel-added")

    return submit(
        session, action, lambda problem: _page(request, session, me, org, values, problem)
    )


def _channel_fields(values: dict[str, str], secret: str) -> dict[str, Any]:
    email = values["kind"] == ChannelKind.email
    recipients = [r.strip() for r in values["recipients"].replace(";", ",").split(",") if r.strip()]
    return {
        "name": values["name"],
        "kind": values["kind"],
        "url": None if email else values["url"],
        "body_format": "json" if email else values["body_format"],
        "sign_with_node_key": bool(values["sign_with_node_key"]) and not email,
        "hmac_secret": secret or None,
        "recipients": recipients if email else [],
    }


@router.post("/orgs/{org}/notifications/channels/{name}/delete")
def delete_channel(
    org: str, name: str, request: Request, session: SessionDep, me: Poster
) -> Response:
    """Remove a channel (owners)."""

    def action() -> Response:
        service.delete_channel(session=session, actor=me.actor, organisation=org, name=name)
        return redirect(f"/orgs/{org}/notifications?notice=channel-removed")

    return submit(
        session, action, lambda problem: _page(request, session, me, org, NEW_CHANNEL, problem)
    )


@router.post("/orgs/{org}/notifications/rules")
def add_rule(org: str, request: Request, session: SessionDep, me: Poster, form: Form) -> Response:
    """Send a kind of event to a channel (owners)."""
    data = {"channel": text(form, "channel"), "kind": text(form, "kind")}

    def action() -> Response:
        service.add_rule(session=session, actor=me.actor, organisation=org, data=data)
        return redirect(f"/orgs/{org}/notifications?notice=rule-added")

    return submit(
        session, action, lambda problem: _page(request, session, me, org, NEW_CHANNEL, problem)
    )


@router.post("/orgs/{org}/notifications/rules/remove")
def remove_rule(
    org: str, request: Request, session: SessionDep, me: Poster, form: Form
) -> Response:
    """Stop sending a kind of event to a channel (owners)."""

    def action() -> Response:
        service.remove_rule(
            session=session,
            actor=me.actor,
            organisation=org,
            channel=text(form, "channel"),
            kind=_kind(text(form, "kind")),
        )
        return redirect(f"/orgs/{org}/notifications?notice=rule-removed")

    return submit(
        session, action, lambda problem: _page(request, session, me, org, NEW_CHANNEL, problem)
    )


@router.post("/orgs/{org}/notifications/subscriptions")
def toggle_subscription(
    org: str, request: Request, session: SessionDep, me: Poster, form: Form
) -> Response:
    """Subscribe to, or unsubscribe from, one kind of my own events."""

    def action() -> Response:
        kind = _kind(text(form, "kind"))
        if text(form, "subscribe"):
            data = {"kind": kind}
            service.subscribe(session=session, actor=me.actor, organisation=org, data=data)
        else:
            service.unsubscribe(session=session, actor=me.actor, organisation=org, kind=kind)
        return redirect(f"/orgs/{org}/notifications?notice=subscriptions-saved")

    return submit(
        session, action, lambda problem: _page(request, session, me, org, NEW_CHANNEL, problem)
    )


def _kind(value: str) -> NotificationKind:
    try:
        return NotificationKind(value)
    except ValueError as exc:
        raise InvalidInput(
            "no such kind of event", errors={"kind": "is not a kind of event"}
        ) from exc


def _page(
    request: Request,
    session: Session,
    me: WebUser,
    org: str,
    values: dict[str, str],
    problem: FormProblem | None = None,
    notice: str = "",
) -> Response:
    view = org_view(session, me.actor, org)
    mine = service.my_subscriptions(session=session, actor=me.actor, organisation=org)
    context = {
        "view": view,
        "tab": "notifications",
        "manage": is_allowed(me.actor, Action.org_update, view.org.id),
        "channels": service.list_channels(session=session, actor=me.actor, organisation=org),
        "rules": service.list_rules(session=session, actor=me.actor, organisation=org),
        "deliveries": service.list_deliveries(
            session=session, actor=me.actor, organisation=org, limit=50
        ),
        "subscribed": {row.kind for row in mine},
        "kinds": [kind.value for kind in NotificationKind],
        "formats": [fmt.value for fmt in BodyFormat],
        "values": values,
        "problem": problem,
        "notice": notice,
    }
    status = problem.status if problem else 200
    return render(request, "org_notifications.html", context, status=status)
