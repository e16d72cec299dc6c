"""Property: whatever the order and repetition of PiAPI's deliveries, a task ends where in-order delivery ends."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from devtools.lambda_context import LocalLambdaContext
from functions.piapi_webhook.handler import handler
from tests.conftest import load_event, make_video
from tests.functional.test_piapi_webhook import STORED_FIELDS

pytestmark = pytest.mark.usefixtures("aws")


def delivery(sample: str, task_id: str, status: str) -> dict[str, Any]:
    event = load_event(sample)
    body = json.loads(event["body"])
    body["data"].update(task_id=task_id, status=status)
    return {**event, "body": json.dumps(body)}


# One task's life as PiAPI reports it: (sample to take the body from, status it reports), in order.
LIVES = {
    "completes": [
        ("webhook_processing", "pending"),
        ("webhook_processing", "Processing"),
        ("webhook_hunyuan_completed", "completed"),
    ],
    "fails": [("webhook_failed", "pending"), ("webhook_failed", "processing"), ("webhook_failed", "Failed")],
}


def final_state(life: list[tuple[str, str]], order: list[int]) -> tuple[dict[str, Any], list[str]]:
    task_id = str(uuid.uuid4())
    video = make_video(task_id)
    results = []
    for index in order:
        sample, status = life[index]
        response = handler(delivery(sample, task_id, status), LocalLambdaContext())
        assert response["statusCode"] == 200
        results.append(json.loads(response["body"])["result"])
    from video_library import db

    record = db.get_video(video.video_id, consistent=True)
    assert record is not None
    return {name: getattr(record, name) for name in STORED_FIELDS}, results


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    life_name=st.sampled_from(sorted(LIVES)),
    data=st.data(),
)
def test_any_order_and_repetition_ends_like_in_order_delivery(life_name: str, data: st.DataObject) -> None:
    life = LIVES[life_name]
    # every delivery at least once, some again, in any order
    extras = data.draw(st.lists(st.integers(0, len(life) - 1), max_size=5), label="repeats")
    order = data.draw(st.permutations(list(range(len(life))) + extras), label="order")

    expected, _ = final_state(life, list(range(len(life))))
    actual, results = final_state(life, order)

    assert actual == expected
    # the terminal delivery applies the first time it arrives, and is a duplicate every time after
    terminal = len(life) - 1
    terminal_results = [result for index, result in zip(order, results, strict=True) if index == terminal]
    assert terminal_results == ["applied"] + ["duplicate"] * (len(terminal_results) - 1)
