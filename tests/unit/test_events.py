"""The sample events in events/ are what the generator makes from PiAPI's samples (regenerate: make events)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from devtools import make_events

SHARED_SAMPLES = make_events.ROOT.parent / "shared" / "piapi"


def generated() -> dict[str, dict[str, object]]:
    events: dict[str, dict[str, object]] = {
        f"webhook_{name}": make_events.webhook_event(json.loads((SHARED_SAMPLES / f"{name}.json").read_text()))
        for name in make_events.WEBHOOK_SAMPLES
    }
    events.update({name: make_events.purge_event(name) for name in make_events.PURGE_EVENTS})
    events["save_to_library"] = make_events.save_to_library_event()
    events.update(make_events.library_events())
    events["reconcile"] = make_events.reconcile_event()
    return events


@pytest.mark.parametrize("name", sorted(generated()))
def test_committed_event_matches_the_generator(name: str) -> None:
    committed = json.loads(Path(make_events.EVENTS / f"{name}.json").read_text())

    assert committed == generated()[name], f"events/{name}.json is stale: run `make events`"
