"""/account: your own account: names, your password, and two-factor sign-in (TOTP)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from sqlmodel import Session

from infracms.api.deps import SESSION_COOKIE, KeyringDep, SessionDep, SettingsDep
from infracms.config import Settings
from infracms.errors import InvalidInput
from infracms.keys import Keyring
from infracms.services import totp, user_lifecycle, user_passwords
from infracms.web.errors import FormProblem, redirect, submit
from infracms.web.forms import text
from infracms.web.session import Form, Poster, SignedIn, WebUser
from infracms.web.templating import render

router = APIRouter()


@router.get("/account")
def account(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    keyring: KeyringDep,
    me: SignedIn,
    notice: str = "",
) -> Response:
    """Your names, the password form and two-factor sign-in."""
    return _page(request, session, me, settings, keyring, notice=notice)


@router.post("/account")
def update_account(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    keyring: KeyringDep,
    me: Poster,
    form: Form,
) -> Response:
    """Save your display name and email."""
    values = {"display_name": text(form, "display_name"), "email": text(form, "email")}

    def action() -> Response:
        user_lifecycle.update_user(
            session=session, actor=me.actor, username=me.user.username, data=values
        )
        return redirect("/account?notice=saved")

    return submit(
        session,
        action,
        lambda problem: _page(request, session, me, settings, keyring, values, problem=problem),
    )


@router.post("/account/password")
def change_password(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    keyring: KeyringDep,
    me: Poster,
    form: Form,
) -> Response:
    """Change your password, giving the current one; your other sessions end."""

    def action() -> Response:
        new = text(form, "new_password", strip=False)
        if new != text(form, "confirm_password", strip=False):
            raise InvalidInput(
                "the two new passwords differ", errors={"confirm_password": "does not match"}
            )
        user_passwords.change_password(
            session=session,
            actor=me.actor,
            settings=settings,
            data={"current_password": text(form, "current_password", strip=False)}
            | {"new_password": new},
            keep_session=request.cookies.get(SESSION_COOKIE),
        )
        return redirect("/account?notice=password-changed")

    return submit(
        session,
        action,
        lambda problem: _page(request, session, me, settings, keyring, password_problem=problem),
    )


@router.post("/account/totp/start")
def start_totp(
    session: SessionDep, settings: SettingsDep, keyring: KeyringDep, me: Poster
) -> Response:
    """Make a secret: the page then shows it (QR code and text) and asks for a first code."""
    totp.start_enrolment(session=session, actor=me.actor, settings=settings, keyring=keyring)
    return redirect("/account#totp")


@router.post("/account/totp/confirm")
def confirm_totp(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    keyring: KeyringDep,
    me: Poster,
    form: Form,
) -> Response:
    """Turn TOTP on with a first code; the recovery codes are shown on this answer only."""
    code = text(form, "code")

    def action() -> Response:
        codes = totp.confirm_enrolment(
            session=session, actor=me.actor, settings=settings, keyring=keyring, code=code
        )
        return _page(request, session, me, settings, keyring, recovery_codes=codes)

    return submit(
        session,
        action,
        lambda problem: _page(request, session, me, settings, keyring, totp_problem=problem),
    )


@router.post("/account/totp/disable")
def disable_totp(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    keyring: KeyringDep,
    me: Poster,
    form: Form,
) -> Response:
    """Turn TOTP off, with a code or a recovery code."""
    code = text(form, "code")

    def action() -> Response:
        totp.disable(session=session, actor=me.actor, settings=settings, keyring=keyring, code=code)
        return redirect("/account?notice=totp-off")

    return submit(
        session,
        action,
        lambda problem: _page(request, session, me, settings, keyring, totp_problem=problem),
    )


@router.post("/account/totp/recovery-codes")
def new_recovery_codes(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    keyring: KeyringDep,
    me: Poster,
    form: Form,
) -> Response:
    """Replace your recovery codes (with a code); the new ones are shown once."""
    code = text(form, "code")

    def action() -> Response:
        codes = totp.new_recovery_codes(
            session=session, actor=me.actor, settings=settings, keyring=keyring, code=code
        )
        return _page(request, session, me, settings, keyring, recovery_codes=codes)

    return submit(
        session,
        action,
        lambda problem: _page(request, session, me, settings, keyring, totp_problem=problem),
    )


def _page(
    request: Request,
    session: Session,
    me: WebUser,
    settings: Settings,
    keyring: Keyring,
    values: dict[str, str] | None = None,
    *,
    problem: FormProblem | None = None,
    password_problem: FormProblem | None = None,
    totp_problem: FormProblem | None = None,
    recovery_codes: list[str] | None = None,
    notice: str = "",
) -> Response:
    user = user_lifecycle.get_user(session=session, actor=me.actor, username=me.user.username)
    context: dict[str, Any] = {
        "user": user,
        "values": values or {"display_name": user.display_name, "email": user.email or ""},
        "problem": problem,
        "password_problem": password_problem,
        "totp_problem": totp_problem,
        "totp_on": totp.enrolled(user),
        "totp_required": totp.must_enrol(settings, user),
        "pending": totp.pending_enrolment(
            session=session, actor=me.actor, settings=settings, keyring=keyring
        ),
        "codes_left": totp.recovery_codes_left(session=session, user_id=user.id),
        "recovery_codes": recovery_codes,
        "notice": notice,
        "section": "account",
    }
    failed = problem or password_problem or totp_problem
    return render(request, "account.html", context, status=failed.status if failed else 200)
