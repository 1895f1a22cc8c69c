"""`infracms notify`: channels, rules and deliveries from the command line."""

from __future__ import annotations

import json

from tests.notifications.receivers import WebhookReceiver
from tests.test_cli import cli

__all__ = ["cli"]  # the fixture


def test_channels_rules_and_deliver_from_the_command_line(cli) -> None:  # type: ignore[no-untyped-def]
    assert cli("init").returncode == 0
    assert cli("org", "create", "clinic").returncode == 0
    receiver = WebhookReceiver()
    try:
        extra = {
            "INFRACMS_NOTIFY_ALLOW_PRIVATE_TARGETS": "true",
            "INFRACMS_NOTIFY_HMAC_SECRET": "from-the-environment-0123",
        }
        added = cli("notify", "add-webhook", "ops", receiver.url, "--org", "clinic", extra=extra)
        assert added.returncode == 0, added.stderr
        refused = cli("notify", "add-webhook", "lan", "http://10.0.0.1/x", "--org", "clinic")
        assert refused.returncode != 0 and "private address" in refused.stderr
        assert cli("notify", "rule", "ops", "run.failed", "--org", "clinic").returncode == 0
        [channel] = json.loads(cli("notify", "channels", "--org", "clinic", "--json").stdout)
        assert channel["has_hmac_secret"] is True and "from-the-environment" not in str(channel)
        [rule] = json.loads(cli("notify", "rules", "--org", "clinic", "--json").stdout)
        assert rule["kind"] == "run.failed"
        assert json.loads(cli("notify", "deliveries", "--org", "clinic", "--json").stdout) == []
        done = cli("notify", "deliver", extra=extra)
        assert done.returncode == 0 and "0 attempted" in done.stdout
    finally:
        receiver.close()
