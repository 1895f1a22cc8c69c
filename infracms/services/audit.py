"""The audit log: the choke point every change appends through, and reading the log.

An entry gets the next index from the single ``audit_head`` row, which the appending
transaction locks (``SELECT … FOR UPDATE`` on PostgreSQL; on SQLite writing
transactions are serialised by ``BEGIN IMMEDIATE``), so indexes have no gaps and no
duplicates even with many writer processes. The row is locked once per transaction,
so a transaction appending a thousand entries queries it once. Hashing entries into
the Merkle tree and signing checkpoints happen after commit (``audit/store.py``, run
by ``audit/integrator.py``); a commit that appended wakes this process's integrator.

Reading: an organisation's owners and auditors see its entries (``Action.audit_read``),
node-level entries (no organisation) are for node admins only. Checkpoints, the
verifier key, consistency proofs and hash tiles are public: peers and auditors need
them, and they reveal nothing but hashes.
"""

from __future__ import annotations

import datetime as dt
import enum
import uuid
from collections.abc import Iterator, Mapping, Set
from typing import Any

import rfc8785
from sqlalchemy import Engine, event
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel import Session, col, func, select

from infracms import keys
from infracms.audit import exporter, integrator, merkle, store, tiles, views
from infracms.audit.entry import Secret, redaction_of
from infracms.audit.note import Signer, Verifier
from infracms.config import Settings
from infracms.errors import AuthenticationFailed, ConfigurationError, InvalidInput, NotFound
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
from infracms.services.authz import Action, authorize, is_allowed
from infracms.services.common import Page, organisation_by_name
from infracms.services.context import Actor

SECRET_FIELDS = frozenset(
    {
        "password",
        "passphrase",
        "private_key",
        "secret",
        "ansible_password",
        "ansible_ssh_pass",
        "ansible_become_password",
        "ansible_become_pass",
    }
)
"""Payload keys whose values are never recorded, at any depth (compared in lower case)."""
SECRET_SUFFIXES = ("password", "passwd", "passphrase", "_secret", "_pass", "_token", "private_key")
"""Nor are values of keys ending so (``db_password``, ``api_token``)."""
WITHHELD = {"redacted": "withheld"}
"""What stands for a secret when no HMAC key is given."""
_HEAD = "infracms.audit.head"
_NUDGE = "infracms.audit.nudge"


# --- appending -------------------------------------------------------------------


def _plain(value: Any) -> Any:
    """A JSON-ready copy of `value` (UUIDs, times and enums as strings; secrets kept)."""
    if isinstance(value, Mapping):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, set | frozenset):
        return sorted((_plain(item) for item in value), key=str)
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, enum.Enum):
        return _plain(value.value)
    if isinstance(value, Secret):
        return Secret(_plain(value.value))
    return value


def _marker(value: Any, hmac_key: bytes | None) -> Any:
    """What stands for one secret value (``None`` stays ``None``: nothing is hidden there)."""
    if value is None:
        return None
    return dict(WITHHELD) if hmac_key is None else redaction_of(value, hmac_key)


def _redacted(value: Any, hmac_key: bytes | None, fields: Set[str]) -> Any:
    """`value` with each Secret, and each value of a secret field, replaced by its marker."""
    if isinstance(value, Secret):
        return _marker(value.value, hmac_key)
    if isinstance(value, dict):
        return {
            key: _marker(_unwrap(item), hmac_key)
            if _is_secret_field(key, fields)
            else _redacted(item, hmac_key, fields)
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [_redacted(item, hmac_key, fields) for item in value]
    return value


def _is_secret_field(key: str, fields: Set[str]) -> bool:
    """Whether a payload key names a secret."""
    lowered = key.lower()
    return lowered in fields or lowered.endswith(SECRET_SUFFIXES)


def _unwrap(value: Any) -> Any:
    return value.value if isinstance(value, Secret) else value


def canonical_payload(
    payload: Mapping[str, Any],
    *,
    hmac_key: bytes | None = None,
    secret_fields: Set[str] = SECRET_FIELDS,
) -> str:
    """The payload as RFC 8785 canonical JSON, secrets redacted (an HMAC if keyed)."""
    redacted = _redacted(_plain(payload), hmac_key, secret_fields)
    try:
        return str(rfc8785.dumps(redacted).decode())
    except rfc8785.CanonicalizationError as exc:
        raise ValueError(f"audit payload cannot be canonical JSON: {exc}") from exc


def _locked_head(session: Session) -> AuditHead:
    """The head row, locked by this transaction: queried once per transaction."""
    cached = session.info.get(_HEAD)
    transaction = session.get_transaction()
    if cached is not None and transaction is not None and cached[0] is transaction:
        head: AuditHead = cached[1]
        return head
    query = select(AuditHead).where(AuditHead.id == 1).with_for_update()
    head = session.exec(query.execution_options(populate_existing=True)).one()
    session.info[_HEAD] = (session.get_transaction(), head)
    return head


def _wake_integrator_on_commit(session: Session) -> None:
    """After this session commits, nudge the integrators of this process."""
    if not session.info.get(_NUDGE):
        session.info[_NUDGE] = True
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
) -> AuditEntry:
    """Append the audit entry of a change to the caller's transaction.

    Secrets in `payload` (values wrapped in ``audit.entry.Secret``, or under a key in
    ``SECRET_FIELDS``) are replaced by ``{"redacted": "hmac-sha256:…"}`` when
    `hmac_key` is given (``keys.load_audit_key``), else by ``{"redacted": "withheld"}``.
    """
    text = canonical_payload(payload or {}, hmac_key=hmac_key)
    head = _locked_head(session)
    entry = AuditEntry(
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
    head.size += 1
    session.add(head)
    session.add(entry)
    _wake_integrator_on_commit(session)
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
        org = organisation_by_name(session, organisation)
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
    if entry is None:
        raise NotFound(f"there is no audit entry {index}")
    authorize(actor, Action.audit_read, entry.organisation_id)
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


def leaf_hash_of(entry: AuditEntry) -> merkle.LeafHash:
    """The leaf hash an entry row has now (``store.leaf_data``, RFC 9162 leaf hashing)."""
    return merkle.hash_leaf(store.leaf_data(entry))
