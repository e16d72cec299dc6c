"""Provider data is validated where it enters: PiAPI deliveries through the real webhook handler.

URLs are kept only as absolute https URLs (plain http only for the dev host), text is cut to a storable
length, statuses outside PiAPI's documented four are understood or acknowledged without wedging the record,
and no delivery's content answers 500.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from devtools.eventbridge import scheduled_event
from devtools.fake_piapi import FakePiapi
from devtools.lambda_context import LocalLambdaContext
from functions.piapi_webhook.handler import handler
from tests.conftest import load_event, log_records, make_video, task_of
from video_library import db
from video_library.generate import GenerateRequest, generate_video
from video_library.piapi import MAX_PROVIDER_TEXT_CHARS
from video_library.settings import get_settings

pytestmark = pytest.mark.usefixtures("aws")

GOOD_URL = "https://img.theapi.app/ephemeral/good.mp4"
REFUSED = "the provider's video URL cannot be used: "


def deliver_task(**task_changes: Any) -> tuple[int, dict[str, Any], db.VideoRecord]:
    """Deliver the Hunyuan sample with ``task_changes`` for a video created just before; the record after."""
    event = load_event("webhook_hunyuan_completed")
    task = task_of(event)
    video = make_video(task["task_id"])
    status, body = deliver(event, {**task, **task_changes})
    return status, body, record(video.video_id)


def deliver(event: dict[str, Any], task: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    envelope = json.loads(event["body"])
    response = handler({**event, "body": json.dumps({**envelope, "data": task})}, LocalLambdaContext())
    return response["statusCode"], json.loads(response["body"])


def record(video_id: str) -> db.VideoRecord:
    found = db.get_video(video_id, consistent=True)
    assert found is not None
    return found


@pytest.mark.parametrize(
    ("output", "reason"),
    [
        ({"video_url": "javascript:alert(document.cookie)"}, "it is not an https URL"),
        ({"video": "javascript:alert(1)//.mp4"}, "it is not an https URL"),
        ({"video": {"url": "data:text/html,<script>alert(1)</script>"}}, "it is not an https URL"),
        ({"works": [{"video": {"resource": "vbscript:msgbox(1)"}}]}, "it is not an https URL"),
        ({"video_url": "https://\uff11\uff12\uff17.0.0.1/v.mp4"}, "it holds characters a URL cannot"),  # fullwidth
        ({"video_url": "https://img.theapi.app/a\tb.mp4"}, "it holds characters a URL cannot"),
        ({"video_url": "https://[::1/v.mp4"}, "it is not a valid URL"),
        ({"video_url": "https://[1:2:3]/v.mp4"}, "it is not a valid URL"),
        ({"video_url": "https://user:secret@img.theapi.app/v.mp4"}, "it carries credentials"),
        ({"video_url": "http://img.theapi.app/v.mp4"}, "it is plain http"),
        ({"video_url": "//img.theapi.app/v.mp4"}, "it is not an https URL"),
        ({"video_url": "https:///v.mp4"}, "it has no host"),
        ({"video_url": "https://img.theapi.app/" + "a" * 2100}, "it is longer than 2048 characters"),
    ],
)
def test_a_completed_task_whose_video_url_we_cannot_use_becomes_failed_with_the_reason(
    output: dict[str, Any], reason: str
) -> None:
    # WHEN PiAPI reports the task completed with that URL
    status, body, after = deliver_task(output=output)

    # THEN the delivery is applied as a failure the user can read, and no link is stored
    assert (status, body) == (200, {"result": "applied"})
    assert (after.status, after.error) == ("failed", REFUSED + reason)
    assert (after.video_url, after.video_raw_url, after.provider_video_url, after.thumbnail_url) == (None,) * 4
    assert after.in_flight_shard is None  # terminal: reconciliation stops asking


def test_a_thumbnail_url_we_cannot_use_is_dropped_and_logged(logs: io.StringIO) -> None:
    status, body, after = deliver_task(output={"video_url": GOOD_URL, "thumbnail_url": "javascript:alert(1)"})

    assert (status, body) == (200, {"result": "applied"})
    assert (after.status, after.video_url, after.thumbnail_url) == ("completed", GOOD_URL, None)
    refused = [line for line in log_records(logs) if line.get("message") == "provider URL refused"]
    assert [(line["field"], line["reason"]) for line in refused] == [("thumbnail_url", "it is not an https URL")]
    assert "javascript" not in logs.getvalue()  # the reason is logged, not the provider's URL


def test_a_raw_url_we_cannot_use_falls_back_to_the_video() -> None:
    output = {"video": {"url": GOOD_URL}, "video_raw": {"url": "https://img.theapi.app/\u00a0raw.mp4"}}

    _, _, after = deliver_task(output=output)

    assert (after.status, after.video_url, after.video_raw_url) == ("completed", GOOD_URL, GOOD_URL)


@pytest.mark.parametrize(
    ("dev_hosts", "url", "stored"),
    [
        ("127.0.0.1:8002", "http://127.0.0.1:8002/files/t.mp4", True),
        ("127.0.0.1:8002", "http://127.0.0.1:8003/files/t.mp4", False),
        ("localhost:8002", "http://localhost:8002/files/t.mp4", True),
        ("localhost:8002", "http://127.0.0.1:8002/files/t.mp4", False),
        ("", "http://127.0.0.1:8002/files/t.mp4", False),
    ],
)
def test_plain_http_is_kept_only_for_the_dev_host_and_its_port(
    monkeypatch: pytest.MonkeyPatch, dev_hosts: str, url: str, stored: bool
) -> None:
    monkeypatch.setenv("DEV_INSECURE_SOURCE_HOSTS", dev_hosts)
    get_settings.cache_clear()

    _, _, after = deliver_task(output={"video_url": url})

    assert (after.status, after.video_url) == (("completed", url) if stored else ("failed", None))


def test_a_video_urls_list_is_understood_and_its_first_usable_url_taken() -> None:
    urls = [None, "", "javascript:alert(1)", GOOD_URL, "https://img.theapi.app/second.mp4"]

    status, body, after = deliver_task(output={"video_urls": urls})

    assert (status, body) == (200, {"result": "applied"})
    assert (after.status, after.video_url, after.video_raw_url) == ("completed", GOOD_URL, GOOD_URL)


def test_a_video_urls_list_without_a_usable_url_is_a_failure_with_the_reason() -> None:
    _, _, after = deliver_task(output={"video_urls": ["ftp://img.theapi.app/v.mp4", "javascript:x"]})

    assert (after.status, after.error) == ("failed", REFUSED + "it is not an https URL")


@pytest.mark.parametrize("field", ["message", "raw_message"])
def test_a_failure_with_a_one_megabyte_message_is_stored_cut_with_an_ellipsis(field: str) -> None:
    # GIVEN a failed delivery whose error text is 1 MB (DynamoDB items hold 400 KB)
    error = {"code": 10000, "message": "", "raw_message": "", field: "x" * 1_000_000}

    # WHEN it is delivered
    status, body, after = deliver_task(status="failed", output=None, error=error)

    # THEN it is applied: the record is failed, with the start of the message and an ellipsis
    assert (status, body) == (200, {"result": "applied"})
    assert after.status == "failed"
    assert after.error is not None
    assert len(after.error) == MAX_PROVIDER_TEXT_CHARS
    assert after.error == "x" * (MAX_PROVIDER_TEXT_CHARS - 1) + "…"


@pytest.mark.parametrize("status_text", ["cancelled", "canceled", "Cancelled", "CANCELED"])
def test_a_task_cancelled_at_the_provider_is_a_terminal_failure(status_text: str) -> None:
    error = {"code": 0, "message": "", "raw_message": ""}

    status, body, after = deliver_task(status=status_text, output=None, error=error)

    assert (status, body) == (200, {"result": "applied"})
    assert (after.status, after.error, after.in_flight_shard) == ("failed", "cancelled at the provider", None)


def test_a_cancellation_after_completion_does_not_undo_it() -> None:
    event = load_event("webhook_hunyuan_completed")
    task = task_of(event)
    video = make_video(task["task_id"])
    deliver(event, task)

    status, body = deliver(event, {**task, "status": "cancelled"})

    assert (status, body) == (200, {"result": "stale"})
    assert record(video.video_id).status == "completed"


def test_running_is_processing_and_staged_stays_pending() -> None:
    event = load_event("webhook_processing")
    task = task_of(event)
    video = make_video(task["task_id"])

    staged = deliver(event, {**task, "status": "staged"})
    staged_status = record(video.video_id).status
    running = deliver(event, {**task, "status": "Running"})

    assert (staged, staged_status) == ((200, {"result": "duplicate"}), "pending")
    assert running == (200, {"result": "applied"})
    assert record(video.video_id).status == "processing"


@pytest.mark.parametrize("status_text", ["exploded", "archived", "queued-v2", "s" * 100_000])
def test_an_unknown_status_is_acknowledged_logged_and_does_not_wedge_the_record(
    logs: io.StringIO, status_text: str
) -> None:
    # GIVEN a pending video
    event = load_event("webhook_hunyuan_completed")
    task = task_of(event)
    video = make_video(task["task_id"])
    before = record(video.video_id)

    # WHEN PiAPI reports a status we do not know
    status, body = deliver(event, {**task, "status": status_text})

    # THEN it is acknowledged (PiAPI has nothing to retry), logged, and the record is untouched
    assert (status, body) == (200, {"result": "ignored"})
    after = record(video.video_id)
    assert (after.status, after.updated_at, after.error) == (before.status, before.updated_at, None)
    logged = [line for line in log_records(logs) if line.get("message", "").startswith("unknown task status")]
    assert len(logged) == 1 and logged[0]["task_id"] == task["task_id"]
    assert len(logged[0]["provider_status"]) <= 64
    # AND a later known status still applies
    assert deliver(event, task) == (200, {"result": "applied"})
    assert record(video.video_id).status == "completed"


HOSTILE_TASKS: dict[str, tuple[dict[str, Any], int, str]] = {
    # name: (changes to the completed Hunyuan task, expected HTTP status, expected record status)
    "huge-thumbnail-url": (
        {"output": {"video_url": GOOD_URL, "thumbnail_url": "https://a.b/" + "t" * 500_000}},
        200,
        "completed",
    ),
    "video-url-a-number": ({"output": {"video_url": 12345}}, 400, "pending"),
    "output-a-list-of-urls": ({"output": [GOOD_URL]}, 400, "pending"),
    "works-an-object": ({"output": {"works": {"video": GOOD_URL}}}, 400, "pending"),
    "video-urls-not-a-list": ({"output": {"video_urls": GOOD_URL}}, 400, "pending"),
    "video-urls-of-objects": ({"output": {"video_urls": [{"url": GOOD_URL}]}}, 200, "failed"),
    "error-a-string": ({"status": "failed", "error": "boom"}, 400, "pending"),
    "error-message-a-list": ({"status": "failed", "error": {"message": ["a"]}}, 400, "pending"),
    "negative-cost": ({"meta": {"usage": {"consume": -5}}}, 200, "completed"),
    "largest-cost": ({"meta": {"usage": {"consume": 2**53 - 1}}}, 200, "completed"),
    "cost-a-string": ({"meta": {"usage": {"consume": "lots"}}}, 400, "pending"),
    "end-time-not-a-date": ({"meta": {"ended_at": "yesterday"}}, 400, "pending"),
    "end-time-far-future": ({"meta": {"ended_at": "9999-12-31T23:59:59Z"}}, 200, "completed"),
    "status-a-number": ({"status": 3}, 400, "pending"),
    "status-empty": ({"status": ""}, 400, "pending"),
    "status-whitespace": ({"status": "   "}, 200, "pending"),
    "task-id-too-long": ({"task_id": "t" * 257}, 400, "pending"),
    "task-id-control-characters": ({"task_id": "\u0000\u001f"}, 200, "pending"),
    "input-a-string": ({"input": "prompt"}, 400, "pending"),
    "unicode-everywhere": ({"model": "\u202e\u200b", "task_type": "\U0001f30a" * 1000}, 200, "completed"),
}


@pytest.mark.parametrize("name", HOSTILE_TASKS)
def test_no_delivery_content_answers_500_and_the_record_stays_storable(name: str) -> None:
    changes, expected_status, expected_record_status = HOSTILE_TASKS[name]

    status, body, after = deliver_task(**changes)

    assert status == expected_status, body
    assert (body.get("error") or {}).get("code", "none") in ("none", "invalid_request")
    assert after.status == expected_record_status


@pytest.fixture
def quiet_piapi(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakePiapi]:
    """A fake PiAPI that never progresses a task nor calls the webhook: the test says what each task is."""
    server = FakePiapi("provider-data-key", delay_s=3600).start()
    server.webhooks_enabled = False
    monkeypatch.setenv("PIAPI_BASE_URL", server.base_url)
    monkeypatch.setenv("PIAPI_API_KEY", "provider-data-key")
    get_settings.cache_clear()
    yield server
    server.stop()


def test_reconciliation_applies_the_same_rules_to_what_piapi_answers(quiet_piapi: FakePiapi) -> None:
    from functions.reconcile.handler import handler as reconcile

    # GIVEN three tasks whose webhook never came, which PiAPI now reports in ways the rules cover
    cancelled, hostile, unknown = (
        generate_video("alice", GenerateRequest(campaign_id="42", prompt=prompt)) for prompt in ("a", "b", "c")
    )
    reports = {
        cancelled.task_id: {"status": "canceled"},
        hostile.task_id: {"status": "completed", "output": {"video_url": "javascript:alert(1)"}},
        unknown.task_id: {"status": "paused"},
    }
    with quiet_piapi.lock:
        for task_id, report in reports.items():
            quiet_piapi.tasks[str(task_id)].update(report)

    # WHEN reconciliation asks PiAPI about them
    summary = reconcile(scheduled_event(datetime.now(UTC) + timedelta(minutes=11)), LocalLambdaContext())

    # THEN the cancelled and the hostile one are failed with their reasons, the unknown one is left as it was
    assert (summary["examined"], summary["updated"], summary["unchanged"]) == (3, 2, 1)
    assert (record(cancelled.video_id).status, record(cancelled.video_id).error) == (
        "failed",
        "cancelled at the provider",
    )
    assert (record(hostile.video_id).status, record(hostile.video_id).error) == (
        "failed",
        REFUSED + "it is not an https URL",
    )
    assert record(hostile.video_id).video_url is None
    assert (record(unknown.video_id).status, record(unknown.video_id).in_flight_shard) == (
        "pending",
        unknown.in_flight_shard,
    )
