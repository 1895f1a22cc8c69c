"""`infracms user reset-totp` on the node: the recovery of an admin who lost their
device and their recovery codes, audited as the node's shell."""

from __future__ import annotations

import os
import pwd
from pathlib import Path

import pyotp
from sqlmodel import Session, select

from infracms.config import Settings
from infracms.db import make_engine, session_scope
from infracms.keys import load_keyring
from infracms.models import AuditEntry
from infracms.services import auth, totp, users
from tests.test_cli import cli_runner


def test_reset_totp_on_the_node_lets_a_locked_out_admin_in(tmp_path: Path) -> None:
    cli = cli_runner(tmp_path)
    assert cli("init").returncode == 0
    settings = Settings(data_dir=tmp_path / "var", argon2_time_cost=1, argon2_memory_kib=1024)
    engine = make_engine(settings)
    keyring = load_keyring(settings)
    with session_scope(engine, write=True) as session:
        actor = auth.user_actor(users.user_by_name(session, username="admin"), {})
        pending = totp.start_enrolment(
            session=session, actor=actor, settings=settings, keyring=keyring
        )
    with session_scope(engine, write=True) as session:
        totp.confirm_enrolment(
            session=session,
            actor=actor,
            settings=settings,
            keyring=keyring,
            code=pyotp.TOTP(pending.secret).now(),
        )
    done = cli("user", "reset-totp", "admin")
    assert done.returncode == 0, done.stderr
    assert "is off" in done.stdout
    again = cli("user", "reset-totp", "admin")
    assert again.returncode != 0 and "no two-factor sign-in" in again.stderr
    with Session(engine) as session:
        assert not totp.enrolled(users.user_by_name(session, username="admin"))
        [entry] = session.exec(select(AuditEntry).where(AuditEntry.action == "totp.reset")).all()
    engine.dispose()
    assert entry.actor_name == f"cli:{pwd.getpwuid(os.geteuid()).pw_name}"
    assert entry.subject == "user:admin"
