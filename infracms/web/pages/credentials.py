"""/orgs/{org}/credentials…: credential metadata, adding and deleting. Secrets never show."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from sqlmodel import Session

from infracms.api.deps import KeyringDep, SessionDep
from infracms.models.credential import CredentialKind
from infracms.services import credentials, organisations
from infracms.services.authz import Action, authorize, is_allowed
from infracms.services.credential_usage import credential_usage
from infracms.web.errors import FormProblem, redirect, submit
from infracms.web.forms import or_none, text
from infracms.web.pages.orgs import org_view
from infracms.web.session import Form, Poster, SignedIn, WebUser
from infracms.web.templating import render

router = APIRouter()

KINDS = {CredentialKind.ssh_key.value: "SSH private key", CredentialKind.password.value: "Password"}
NEW_CREDENTIAL = {
    "name": "",
    "kind": CredentialKind.ssh_key.value,
    "username": "",
    "description": "",
    "scope_hosts": "",
    "scope_groups": "",
}


@router.get("/orgs/{org}/credentials")
def org_credentials(
    org: str, request: Request, session: SessionDep, me: SignedIn, notice: str = ""
) -> Response:
    """An organisation's credentials: name, kind, user name and fingerprint only."""
    view = org_view(session, me.actor, org)
    found = credentials.list_credentials(session=session, actor=me.actor, organisation=org)
    context = {
        "view": view,
        "tab": "credentials",
        "credentials": [credentials.describe(session, c) for c in found],
        "kinds": KINDS,
        "notice": notice,
    }
    return render(request, "org_credentials.html", context)


@router.get("/orgs/{org}/credentials/new")
def new_credential(org: str, request: Request, session: SessionDep, me: SignedIn) -> Response:
    """The form to add a credential."""
    return _form(request, session, me, org, NEW_CREDENTIAL)


@router.post("/orgs/{org}/credentials/new")
def create_credential(
    org: str, request: Request, session: SessionDep, me: Poster, form: Form, keyring: KeyringDep
) -> Response:
    """Store a credential, sealed; on error the form comes back without the secret."""
    values = {key: text(form, key) for key in NEW_CREDENTIAL}
    field = "secret_password" if values["kind"] == CredentialKind.password else "secret_key"

    def action() -> Response:
        data = {
            **{key: value for key, value in values.items() if key not in SCOPE_KEYS},
            "username": or_none(values["username"]),
            "secret": text(form, field, strip=False),
            "passphrase": _passphrase(form, values["kind"]),
            "scope": _scope(values),
        }
        credentials.create_credential(
            session=session, actor=me.actor, keyring=keyring, organisation=org, data=data
        )
        return redirect(f"/orgs/{org}/credentials/{values['name']}?notice=credential-created")

    def on_error(problem: FormProblem) -> Response:
        return _form(request, session, me, org, values, problem)

    return submit(session, action, on_error)


@router.get("/orgs/{org}/credentials/{name}")
def show_credential(
    org: str, name: str, request: Request, session: SessionDep, me: SignedIn, notice: str = ""
) -> Response:
    """A credential: its public key and fingerprint, where it is used, replacing its secret."""
    return _page(request, session, me, org, name, notice=notice)


@router.post("/orgs/{org}/credentials/{name}/replace")
def replace_credential(
    org: str,
    name: str,
    request: Request,
    session: SessionDep,
    me: Poster,
    form: Form,
    keyring: KeyringDep,
) -> Response:
    """Give a credential a new secret; on error the page comes back without it."""

    def action() -> Response:
        found = credentials.get_credential(
            session=session, actor=me.actor, organisation=org, name=name
        )
        field = "secret_password" if found.kind is CredentialKind.password else "secret_key"
        data = {
            "secret": text(form, field, strip=False),
            "passphrase": _passphrase(form, found.kind.value),
        }
        credentials.replace_credential(
            session=session, actor=me.actor, keyring=keyring, organisation=org, name=name, data=data
        )
        return redirect(f"/orgs/{org}/credentials/{name}?notice=credential-replaced")

    def on_error(problem: FormProblem) -> Response:
        return _page(request, session, me, org, name, problem=problem)

    return submit(session, action, on_error)


@router.get("/orgs/{org}/credentials/{name}/delete")
def confirm_delete_credential(
    org: str, name: str, request: Request, session: SessionDep, me: SignedIn
) -> Response:
    """Ask before deleting a credential."""
    found = credentials.get_credential(session=session, actor=me.actor, organisation=org, name=name)
    authorize(me.actor, Action.credential_write, found.organisation_id)
    return _confirm(request, org, name)


@router.post("/orgs/{org}/credentials/{name}/delete")
def delete_credential(
    org: str, name: str, request: Request, session: SessionDep, me: Poster
) -> Response:
    """Delete a credential no host uses."""

    def action() -> Response:
        credentials.delete_credential(session=session, actor=me.actor, organisation=org, name=name)
        return redirect(f"/orgs/{org}/credentials?notice=credential-deleted")

    return submit(session, action, lambda problem: _confirm(request, org, name, problem))


def _passphrase(form: Any, kind: str) -> str | None:
    """The passphrase typed for an SSH key, if any (a password has none)."""
    typed = text(form, "passphrase", strip=False)
    return typed if typed and kind == CredentialKind.ssh_key.value else None


def _scope(values: dict[str, str]) -> dict[str, list[str]] | None:
    """The scope typed as names separated by spaces or commas; none typed: any host."""
    hosts, groups = (values[key].replace(",", " ").split() for key in SCOPE_KEYS)
    return {"hosts": hosts, "groups": groups} if hosts or groups else None


SCOPE_KEYS = ("scope_hosts", "scope_groups")  # a problem with either is shown on "scope"


def _form(
    request: Request,
    session: Session,
    me: WebUser,
    org: str,
    values: dict[str, Any],
    problem: FormProblem | None = None,
) -> Response:
    found = organisations.get_organisation(session=session, actor=me.actor, name=org)
    authorize(me.actor, Action.credential_write, found.id)
    context = {
        "org": found,
        "values": values,
        "problem": problem,
        "kinds": KINDS,
        "section": "orgs",
    }
    return render(
        request, "credential_new.html", context, status=problem.status if problem else 200
    )


def _page(
    request: Request,
    session: Session,
    me: WebUser,
    org: str,
    name: str,
    *,
    problem: FormProblem | None = None,
    notice: str = "",
) -> Response:
    found = organisations.get_organisation(session=session, actor=me.actor, name=org)
    credential = credentials.get_credential(
        session=session, actor=me.actor, organisation=org, name=name
    )
    context = {
        "org": found,
        "credential": credentials.describe(session, credential),
        "usage": credential_usage(session, credential),
        "kinds": KINDS,
        "can_write": is_allowed(me.actor, Action.credential_write, found.id),
        "problem": problem,
        "notice": notice,
        "section": "orgs",
    }
    return render(request, "credential.html", context, status=problem.status if problem else 200)


def _confirm(request: Request, org: str, name: str, problem: FormProblem | None = None) -> Response:
    context = {
        "title": f"Delete credential {name}?",
        "message": "The sealed secret is deleted for good. Hosts must not be using it.",
        "action": f"/orgs/{org}/credentials/{name}/delete",
        "cancel": f"/orgs/{org}/credentials",
        "button": "Delete credential",
        "problem": problem,
        "section": "orgs",
    }
    return render(request, "confirm.html", context, status=problem.status if problem else 200)
