"""The sample events in events/ are what the generator makes from PiAPI's samples (regenerate: make events)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from devtools import make_events
from devtools.gateway import read_serverless

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
    events["sweep"] = make_events.sweep_event()
    events["save_worker"] = make_events.save_worker_event()
    return events


@pytest.mark.parametrize("name", sorted(generated()))
def test_committed_event_matches_the_generator(name: str) -> None:
    committed = json.loads(Path(make_events.EVENTS / f"{name}.json").read_text())

    assert committed == generated()[name], f"events/{name}.json is stale: run `make events`"


def test_every_committed_event_is_generated() -> None:
    assert {path.stem for path in make_events.EVENTS.glob("*.json")} == set(generated())


def test_every_function_has_a_sample_event() -> None:
    functions = set(read_serverless()["functions"])

    assert {make_events.function_of(name) for name in generated()} == functions
