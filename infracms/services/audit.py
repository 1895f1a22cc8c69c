"""The audit log: the choke point every change appends through, and reading the log.

An entry gets the next index from the single ``audit_head`` row, which the appending
transaction locks (``SELECT … FOR UPDATE`` on PostgreSQL; on SQLite writing
transactions are serialised by ``BEGIN IMMEDIATE``), so indexes have no gaps and no
duplicates even with many writer processes. The row is locked once per transaction,
and the entries a transaction records are inserted together at its next flush (its
commit at the latest), so a transaction appending a thousand entries costs two
statements. Hashing entries into the Merkle tree and signing checkpoints happen
after commit (``audit/store.py``, run by ``audit/integrator.py``); a commit that
appended wakes this process's integrator.

Reading: an organisation's owners and auditors see its entries (``Action.audit_read``),
node-level entries (no organisation) are for node admins only. Checkpoints, the
verifier key, consistency proofs and hash tiles are public: peers and auditors need
them, and they reveal nothing but hashes.
"""

from __future__ import annotations

import dataclasses
import logging
import uuid
from collections.abc import Iterator, Mapping
from typing import Any, Protocol

from sqlalchemy import Engine, event, insert, text
from sqlalchemy.exc import DBAPIError, NoResultFound
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel import Session, col, func, select

from infracms import keys
from infracms.audit import exporter, integrator, selfcheck, store, tiles, views
from infracms.audit.note import Signer, Verifier
from infracms.audit.payload import payload_text
from infracms.audit.store import EntryRecord
from infracms.config import Settings
from infracms.db import session_scope
from infracms.errors import (
    AuditUnavailable,
    AuthenticationFailed,
    ConfigurationError,
    InvalidInput,
    NotFound,
)
from infracms.models.audit import (
    AuditEntry,
    AuditEntryDetail,
    AuditEntryPublic,
    AuditHead,
    CheckpointPublic,
    ConsistencyProofPublic,
    InclusionProofPublic,
)
from infracms.models.base import utcnow
from infracms.models.organisation import Organisation
from infracms.services import notifications
from infracms.services.authz import Action, authorize, is_allowed
from infracms.services.common import Page, organisation_by_name
from infracms.services.context import Actor

_HEAD = "infracms.audit.head"
_PENDING = "infracms.audit.pending"
_HOOKED = "infracms.audit.hooked"
_COLUMNS = tuple(field.name for field in dataclasses.fields(EntryRecord))
log = logging.getLogger(__name__)
HEAD_LOCK_TIMEOUT_MS = 30_000
"""How long a change waits for the head row on PostgreSQL (SQLite's busy timeout is 30 s
too) before it is refused as "audit log unavailable" rather than hanging forever."""
UNAVAILABLE = (
    "audit log unavailable: the change was refused and nothing was changed; "
    "a node administrator should run `infracms audit check`"
)


# --- appending -------------------------------------------------------------------


def canonical_payload(payload: Mapping[str, Any], *, hmac_key: bytes | None = None) -> str:
    """The payload as recorded: sorted compact JSON, secrets redacted (``audit.payload``)."""
    return payload_text(payload, hmac_key=hmac_key)


def _unavailable(what: str, exc: Exception) -> AuditUnavailable:
    """The error that refuses the change; the cause goes to the log, not to the caller."""
    log.error("audit log unavailable (%s): %s: %s", what, type(exc).__name__, exc)
    return AuditUnavailable(UNAVAILABLE)


def _locked_head(session: Session) -> AuditHead:
    """The head row, locked by this transaction: queried once per transaction."""
    cached = session.info.get(_HEAD)
    transaction = session.get_transaction()
    if cached is not None and transaction is not None and cached[0] is transaction:
        head: AuditHead = cached[1]
        return head
    query = select(AuditHead).where(AuditHead.id == 1).with_for_update()
    postgres = session.get_bind().dialect.name == "postgresql"
    try:
        if postgres:  # bounded wait; reset so the rest of the transaction is unaffected
            session.execute(text(f"SET LOCAL lock_timeout = {int(HEAD_LOCK_TIMEOUT_MS)}"))
        head = session.exec(query.execution_options(populate_existing=True)).one()
        if postgres:
            session.execute(text("SET LOCAL lock_timeout TO DEFAULT"))
    except (DBAPIError, NoResultFound) as exc:  # locked past the timeout, gone, or I/O
        raise _unavailable("locking the head row", exc) from exc
    session.info[_HEAD] = (session.get_transaction(), head)
    return head


def _insert_pending(session: Session, *_: Any) -> None:
    """Before a flush: insert the entries recorded since the last one, in one statement.

    Any database error here (the index taken, the table gone, the disk full) refuses
    the change as ``AuditUnavailable``: the caller's transaction is rolled back whole.
    """
    pending: list[EntryRecord] = session.info.pop(_PENDING, [])
    if pending:
        rows = [{name: getattr(entry, name) for name in _COLUMNS} for entry in pending]
        try:
            session.connection().execute(insert(store.ENTRIES), rows)
        except DBAPIError as exc:
            first = pending[0].index
            raise _unavailable(f"appending entries from index {first}", exc) from exc


def _forget_pending(session: Session, *_: Any) -> None:
    """After a rollback: entries recorded but not flushed belong to no transaction."""
    session.info.pop(_PENDING, None)


def _hook(session: Session) -> None:
    """Once per session: insert entries at flush, drop them on rollback, wake on commit."""
    if session.info.get(_HOOKED):
        return
    session.info[_HOOKED] = True
    event.listen(session, "before_flush", _insert_pending)
    event.listen(session, "after_rollback", _forget_pending)
    event.listen(session, "after_commit", lambda _session: integrator.notify_appended())


def record(
    session: Session,
    *,
    actor: Actor,
    action: str,
    subject: str,
    organisation_id: uuid.UUID | None = None,
    payload: Mapping[str, Any] | None = None,
    hmac_key: bytes | None = None,
) -> EntryRecord:
    """Append the audit entry of a change to the caller's transaction.

    The row is written at the transaction's next flush (at the latest its commit),
    with every other entry recorded since, in one statement. Secrets in `payload`
    (values wrapped in ``audit.entry.Secret``, or under a key naming a secret) become
    ``{"redacted": "hmac-sha256:…"}`` when `hmac_key` is given
    (``keys.load_audit_key``), else ``{"redacted": "withheld"}``.
    """
    text = canonical_payload(payload or {}, hmac_key=hmac_key)
    _hook(session)
    head = _locked_head(session)
    entry = EntryRecord(
        index=head.size,
        time=utcnow(),
        actor_kind=actor.kind,
        actor_id=actor.id,
        actor_name=actor.name,
        organisation_id=organisation_id,
        action=action,
        subject=subject,
        payload=text,
        request_id=actor.request_id,
    )
    head.size += 1  # makes the head dirty, so a flush (and _insert_pending) will come
    session.info.setdefault(_PENDING, []).append(entry)
    return entry


def changes(before: Mapping[str, Any], after: Mapping[str, Any]) -> dict[str, Any]:
    """The before/after of the fields that differ."""
    keys_ = [key for key in after if before.get(key) != after.get(key)]
    return {
        "before": {key: before.get(key) for key in keys_},
        "after": {key: after.get(key) for key in keys_},
    }


# --- the node's log key, integration ---------------------------------------------


def node_signer(settings: Settings) -> Signer:
    """The log's signer: the node's Ed25519 identity key, named by the node name."""
    try:
        return Signer(name=settings.node_name, private_key=keys.load_identity(settings))
    except ValueError as exc:
        raise ConfigurationError(
            f"node name {settings.node_name!r} cannot name a log key: {exc}"
        ) from exc


def node_verifier(settings: Settings) -> Verifier:
    """The public key that verifies the log's checkpoints."""
    return node_signer(settings).verifier()


def verifier_key(settings: Settings) -> str:
    """The published verifier key, ``name+hex8 key id+base64(0x01 || public key)``."""
    return node_verifier(settings).key_string


def integrate(*, engine: Engine, settings: Settings) -> store.Integrated:
    """Hash every committed entry into the tree and sign a checkpoint per batch."""
    return store.integrate(engine, node_signer(settings))


def sign_checkpoint(*, engine: Engine, settings: Settings) -> store.StoredCheckpoint:
    """Integrate, and make sure the whole tree is covered by a signed checkpoint."""
    return store.sign_current(engine, node_signer(settings))


# --- the node's self check -------------------------------------------------------


def self_check(*, engine: Engine, settings: Settings) -> selfcheck.CheckOutcome:
    """Check the stored rows against the signed checkpoints, record it, and say it loudly.

    A failure is logged at ERROR; until a later check passes, no checkpoint is signed
    (``store.refuse_if_self_check_failed``) and :func:`health` reports degraded.
    """
    with session_scope(engine) as session:
        outcome = selfcheck.check_store(session, node_verifier(settings))
    with session_scope(engine, write=True) as session:
        notifications.self_check_failed(session, outcome)
        selfcheck.record(session, outcome)
        session.commit()
    if not outcome.ok:
        log.error("audit self check failed at entry %s: %s", outcome.first_bad, outcome.detail)
    return outcome


class _NodeContext(Protocol):
    @property
    def settings(self) -> Settings: ...
    @property
    def engine(self) -> Engine: ...


def self_check_job(context: _NodeContext) -> None:
    """The periodic self check (the embedded scheduler's and ``infracms beat``'s job)."""
    self_check(engine=context.engine, settings=context.settings)


def health(*, engine: Engine) -> dict[str, Any]:
    """The audit log's part of the node's health: degraded while its self check fails.
    /healthz answers anyone, so it says only that: not the log's size (how busy the
    node is) nor which entry failed and why (logged at ERROR; `infracms audit check`)."""
    with session_scope(engine) as session:
        last = selfcheck.last_outcome(session)
    if last is None or last.ok:
        return {"status": "ok", "audit": "not checked yet" if last is None else "verified"}
    return {
        "status": "degraded",
        "audit": "self check failed: see the node's log, or run infracms audit check",
    }


# --- reading ---------------------------------------------------------------------


def _visible(actor: Actor) -> ColumnElement[bool] | None:
    """The entries `actor` may read: None for all (admins), else its audit organisations."""
    if actor.is_admin:
        return None
    allowed = [org for org in actor.roles if is_allowed(actor, Action.audit_read, org)]
    return col(AuditEntry.organisation_id).in_(allowed)


def _matches(column: Any, value: str) -> ColumnElement[bool]:
    """Equal to `value`, or starting with it when it ends in ``*``."""
    if not value.endswith("*"):
        return column == value  # type: ignore[no-any-return]
    prefix = value[:-1].replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return column.like(f"{prefix}%", escape="\\")  # type: ignore[no-any-return]


def _filters(
    session: Session,
    actor: Actor,
    *,
    organisation: str | None,
    actor_name: str | None,
    action: str | None,
    subject: str | None,
    start: int | None,
    end: int | None,
) -> list[ColumnElement[bool]]:
    where: list[ColumnElement[bool]] = []
    if organisation is not None:
        org = organisation_by_name(session, name=organisation)
        authorize(actor, Action.audit_read, org.id)
        where.append(col(AuditEntry.organisation_id) == org.id)
    visible = _visible(actor)
    if visible is not None:
        where.append(visible)
    for column, value in (
        (AuditEntry.actor_name, actor_name),
        (AuditEntry.action, action),
        (AuditEntry.subject, subject),
    ):
        if value:
            where.append(_matches(col(column), value))
    if start is not None:
        where.append(col(AuditEntry.index) >= start)
    if end is not None:
        where.append(col(AuditEntry.index) < end)
    return where


def _organisation_names(session: Session, ids: set[uuid.UUID]) -> dict[uuid.UUID, str]:
    if not ids:
        return {}
    query = select(Organisation.id, Organisation.name).where(col(Organisation.id).in_(ids))
    return dict(session.exec(query).all())


def list_entries(
    *,
    session: Session,
    actor: Actor,
    organisation: str | None = None,
    actor_name: str | None = None,
    action: str | None = None,
    subject: str | None = None,
    start: int | None = None,
    end: int | None = None,
    limit: int = 50,
    offset: int = 0,
    newest_first: bool = False,
) -> Page[AuditEntryPublic]:
    """A page of the entries `actor` may read, filtered; ``x*`` filters by prefix.

    `start`/`end` bound the index (``start <= index < end``); `organisation` is a name.
    """
    where = _filters(
        session,
        actor,
        organisation=organisation,
        actor_name=actor_name,
        action=action,
        subject=subject,
        start=start,
        end=end,
    )
    order = col(AuditEntry.index).desc() if newest_first else col(AuditEntry.index)
    query = select(AuditEntry).where(*where).order_by(order).limit(limit).offset(offset)
    rows = session.exec(query).all()
    total = session.exec(select(func.count()).select_from(AuditEntry).where(*where)).one()
    names = _organisation_names(session, {r.organisation_id for r in rows if r.organisation_id})
    items = [views.entry_public(row, names.get(row.organisation_id)) for row in rows]  # type: ignore[arg-type]
    return Page(items=items, total=int(total), limit=limit, offset=offset)


def _readable_entry(session: Session, actor: Actor, index: int) -> AuditEntry:
    """Entry `index`, if `actor` may read it."""
    entry = session.get(AuditEntry, index)
    # another organisation's entry answers as a missing one: the same 404 either way
    if entry is None or not is_allowed(actor, Action.audit_read, entry.organisation_id):
        raise NotFound(f"there is no audit entry {index} that you may read")
    return entry


def get_entry(
    *, session: Session, actor: Actor, settings: Settings, index: int
) -> AuditEntryDetail:
    """One entry with its payload, leaf hash, whether it is integrated, and its proof."""
    entry = _readable_entry(session, actor, index)
    names = _organisation_names(
        session, {entry.organisation_id} if entry.organisation_id else set()
    )
    organisation = names.get(entry.organisation_id) if entry.organisation_id else None
    return views.entry_detail(session, entry, organisation, node_verifier(settings))


def latest_checkpoint(*, session: Session) -> str:
    """The latest signed checkpoint, as a C2SP signed note."""
    found = store.latest_checkpoint(session)
    if found is None:
        raise NotFound("no checkpoint is signed yet")
    return found.note


def list_checkpoints(
    *, session: Session, settings: Settings, limit: int = 50, offset: int = 0
) -> Page[CheckpointPublic]:
    """Checkpoints, newest first, each checked against the node key and the tree."""
    verifier = node_verifier(settings)
    size = store.tree_state(session).size
    found = store.list_checkpoints(session, limit=limit, offset=offset)
    items = [views.checkpoint_public(session, stored, verifier, size) for stored in found]
    return Page(items=items, total=store.count_checkpoints(session), limit=limit, offset=offset)


def _proof_size(session: Session, size: int | None, field: str) -> int:
    """The tree size to prove in: given (at most the integrated size) or the latest signed."""
    have = store.tree_state(session).size
    if size is None:
        latest = store.latest_checkpoint(session)
        if latest is None:
            raise NotFound("no checkpoint is signed yet")
        return latest.size
    if not 0 <= size <= have:
        raise InvalidInput(
            f"{field} must be in [0, {have}] (the integrated size)",
            errors={field: f"must be at most {have}"},
        )
    return size


def inclusion_proof(
    *, session: Session, actor: Actor, index: int, size: int | None = None
) -> InclusionProofPublic:
    """RFC 9162 inclusion proof of entry `index` in the tree of `size` (default: latest)."""
    _readable_entry(session, actor, index)
    size = _proof_size(session, size, "size")
    if index >= size:
        raise InvalidInput(
            f"entry {index} is not in the tree of size {size}",
            errors={"index": f"must be below {size}"},
        )
    leaf = store.stored_leaf_hash(session, index)
    proof = store.inclusion_proof(session, index, size)
    return InclusionProofPublic(
        index=index,
        size=size,
        leaf_hash=views.b64(leaf or b""),
        root=views.b64(store.root_at(session, size)),
        proof=[views.b64(value) for value in proof],
    )


def consistency_proof(
    *, session: Session, old_size: int, new_size: int | None = None
) -> ConsistencyProofPublic:
    """RFC 9162 consistency proof from tree `old_size` to `new_size` (default: latest)."""
    new_size = _proof_size(session, new_size, "new")
    if not 0 <= old_size <= new_size:
        raise InvalidInput(
            f"old size must be in [0, {new_size}]", errors={"old": f"must be at most {new_size}"}
        )
    proof = store.consistency_proof(session, old_size, new_size)
    return ConsistencyProofPublic(
        old_size=old_size,
        new_size=new_size,
        old_root=views.b64(store.root_at(session, old_size)),
        new_root=views.b64(store.root_at(session, new_size)),
        proof=[views.b64(value) for value in proof],
    )


def export_lines(*, session: Session, actor: Actor, settings: Settings) -> Iterator[bytes]:
    """The export file of the whole log up to the latest checkpoint (node admins only)."""
    authorize(actor, Action.audit_read, None)
    if store.latest_checkpoint(session) is None:
        raise NotFound("no checkpoint is signed yet: nothing can be exported")
    return exporter.export_lines(
        session, origin=settings.node_name, verifier_key=verifier_key(settings)
    )


def read_tile(*, session: Session, actor: Actor | None, level: str, index: str) -> bytes:
    """A C2SP tlog-tiles tile; hash tiles are public, entry bundles for node admins only."""
    try:
        tile = tiles.parse_tile_path(level, index)
    except ValueError as exc:
        raise NotFound(str(exc)) from exc
    if tile.level is None:
        if actor is None:
            raise AuthenticationFailed("entry bundles are for node administrators: sign in")
        authorize(actor, Action.audit_read, None)
    try:
        return tiles.read_tile(session, tile)
    except LookupError as exc:
        raise NotFound(str(exc)) from exc
