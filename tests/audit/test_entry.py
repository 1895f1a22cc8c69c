"""Audit entry leaf data (RFC 8785) and the redaction of secrets."""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import replace
from datetime import datetime, timedelta, timezone

import pytest
import rfc8785

from infracms.audit.entry import (
    Actor,
    Secret,
    digest_of,
    entry_bytes,
    format_time,
    parse_entry,
    redact,
    redaction_of,
)
from infracms.audit.errors import AuditVerificationError
from tests.audit.builders import entry_fields

KEY = b"k" * 32


@pytest.mark.parametrize("index", [0, 1, 2, 3, 4, 5, 2**53 - 1])
def test_entries_round_trip(index: int) -> None:
    fields = entry_fields(index)
    data = entry_bytes(fields)
    assert parse_entry(data) == fields


def test_entry_bytes_are_the_canonical_json_of_the_v1_object() -> None:
    data = entry_bytes(entry_fields(1))
    value = json.loads(data)
    assert rfc8785.dumps(value) == data
    assert list(value) == sorted(value)  # RFC 8785 orders keys
    assert b"\n" not in data and b" " not in data.replace(b"chlo", b"")
    assert value == {
        "v": 1,
        "index": 1,
        "time": "2024-05-01T12:00:01.000001Z",
        "actor": {"kind": "user", "id": "user-1", "name": "bob"},
        "organisation": "8a1b2c3d-4e5f-4a7b-8c9d-0e1f2a3b4c5d",
        "action": "run.apply",
        "subject": "definition:1",
        "payload": {"revision": 1, "changed": ["listen", "server_name"], "ok": True},
        "request_id": "req-00000001",
    }


def test_time_is_rfc3339_utc_with_microseconds() -> None:
    paris = timezone(timedelta(hours=2))
    assert format_time(datetime(2024, 5, 1, 14, 0, tzinfo=paris)) == "2024-05-01T12:00:00.000000Z"
    with pytest.raises(ValueError, match="timezone-aware"):
        format_time(datetime(2024, 5, 1))


@pytest.mark.parametrize(
    ("changes", "complaint"),
    [
        ({"index": -1}, "index must be in"),
        ({"index": 2**53}, "index must be in"),
        ({"index": True}, "index must be an int"),
        ({"actor": Actor(kind="robot", id=None, name="r")}, "actor kind"),  # type: ignore[arg-type]
        ({"action": 5}, "action must be a string"),
        ({"request_id": 5}, "request_id must be a string"),
        ({"payload": {"password": Secret("hunter2")}}, r"payload\.password holds an unredacted"),
        ({"payload": {"list": [1, {"x": Secret(1)}]}}, r"payload\.list\[1\]\.x"),
        ({"payload": {"f": float("nan")}}, "cannot be canonicalised"),
        ({"payload": {"big": 2**60}}, "cannot be canonicalised"),
    ],
)
def test_invalid_entries_are_refused(changes: dict[str, object], complaint: str) -> None:
    with pytest.raises(ValueError, match=complaint):
        entry_bytes(replace(entry_fields(1), **changes))  # type: ignore[arg-type]


def test_secrets_never_show_in_their_repr() -> None:
    assert "hunter2" not in repr(Secret("hunter2"))


@pytest.mark.parametrize(
    ("data", "complaint"),
    [
        (b"[1]", "expected an object"),
        (b"\xff", "not UTF-8 JSON"),
        (b'{"v":1}', "entry keys are"),
        (json.dumps({**json.loads(entry_bytes(entry_fields(1))), "v": 2}).encode(), "version is 2"),
        (json.dumps(json.loads(entry_bytes(entry_fields(1)))).encode(), "not in RFC 8785"),
        (entry_bytes(entry_fields(1)).replace(b".000001Z", b"Z"), "v1 schema"),
        (entry_bytes(entry_fields(1)).replace(b'"index":1', b'"index":"1"'), "v1 schema"),
    ],
)
def test_parse_refuses_what_entry_bytes_would_not_write(data: bytes, complaint: str) -> None:
    with pytest.raises(AuditVerificationError, match=complaint):
        parse_entry(data)


def test_redact_replaces_marked_values_and_named_fields_at_any_depth() -> None:
    payload = {
        "host": "db1",
        "token": Secret("abc"),
        "nested": {"password": "hunter2", "list": [Secret({"k": 1}), "plain"]},
        "password": {"whole": "object"},
    }
    redacted = redact(payload, KEY, secret_fields={"password"})
    assert redacted["host"] == "db1"
    assert redacted["token"] == redaction_of("abc", KEY)
    assert redacted["nested"]["password"] == redaction_of("hunter2", KEY)
    assert redacted["nested"]["list"] == [redaction_of({"k": 1}, KEY), "plain"]
    assert redacted["password"] == redaction_of({"whole": "object"}, KEY)
    assert "hunter2" not in json.dumps(redacted)
    entry_bytes(entry_fields(1, payload=redacted))  # now recordable


def test_redaction_is_a_keyed_hmac_so_equal_values_match() -> None:
    marker = redaction_of("hunter2", KEY)
    want = hmac.new(KEY, b'"hunter2"', hashlib.sha256).hexdigest()
    assert marker == {"redacted": f"hmac-sha256:{want}"}
    assert redaction_of("hunter2", KEY) == marker
    assert redaction_of("hunter3", KEY) != marker
    assert redaction_of("hunter2", b"o" * 32) != marker
    with pytest.raises(ValueError, match="at least 16"):
        redact({}, b"short")


def test_digest_of_large_output() -> None:
    assert digest_of(b"abc") == {
        "sha256": "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    }


def test_entries_equal_in_content_are_equal_in_bytes() -> None:
    fields = entry_fields(3)
    shuffled = replace(fields, payload=dict(reversed(list(fields.payload.items()))))
    assert entry_bytes(shuffled) == entry_bytes(fields)
