"""A run is followed live through the API's server-sent events: events arrive while it
runs, each once and in order, then one `end` message with the finished run."""

from __future__ import annotations

from datetime import datetime

import pytest

from tests.integration.world import Applied, World

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_events_arrive_while_the_run_runs_then_end(world: World, first_apply: Applied) -> None:
    messages = first_apply.followed.messages
    end = first_apply.followed.end
    assert messages[-1].event == "end", [m.event for m in messages[-3:]]
    assert {m.event for m in messages[:-1]} == {"events"}, {m.event for m in messages}
    finished = datetime.fromisoformat(end["finished_at"])
    batches = [m for m in messages if m.event == "events"]
    early = [m for m in batches if (finished - m.received_at).total_seconds() > 10]
    assert early, (
        f"no events arrived more than 10 s before the run ended at {finished}: "
        f"first batch at {batches[0].received_at if batches else None}"
    )
    print(
        f"{len(batches)} batches; the first {(finished - batches[0].received_at).total_seconds():.1f}"
        f" s before the end of a {first_apply.seconds:.0f} s run"
    )
    seqs = first_apply.followed.seqs()
    assert seqs == list(range(1, end["event_count"] + 1)), (
        f"expected events 1..{end['event_count']} once each in order, got {len(seqs)}: "
        f"{seqs[:5]}...{seqs[-5:]}"
    )
    assert end["status"] == "succeeded", end
    assert end["id"] == str(first_apply.run_id)
    assert sorted(end["recap"]) == ["vpn1", "web1"], end["recap"]
