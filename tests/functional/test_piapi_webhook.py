"""POST /webhooks/piapi through the real handler with API Gateway v2 events built from PiAPI's samples."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime
from typing import Any

import pytest

from devtools.apigw import http_api_event
from devtools.lambda_context import LocalLambdaContext
from functions.piapi_webhook.handler import handler
from tests.conftest import WEBHOOK_SECRET, emitted_metrics, load_event, log_records, make_video, task_of
from video_library import db
from video_library.observability import logger

pytestmark = pytest.mark.usefixtures("aws")

STORED_FIELDS = (
    "status",
    "video_url",
    "video_raw_url",
    "provider_video_url",
    "provider_video_raw_url",
    "thumbnail_url",
    "cost_points",
    "cost_usd",
    "completed_at",
    "error",
    "saved_to_r2",
)


def deliver(event: dict[str, Any], context: LocalLambdaContext | None = None) -> tuple[int, dict[str, Any]]:
    response = handler(event, context or LocalLambdaContext())
    return response["statusCode"], json.loads(response["body"])


def stored(video_id: str) -> dict[str, Any]:
    record = db.get_video(video_id, consistent=True)
    assert record is not None
    return {name: getattr(record, name) for name in STORED_FIELDS}


def with_body(event: dict[str, Any], body: str) -> dict[str, Any]:
    return {**event, "body": body}


def with_task(event: dict[str, Any], **changes: Any) -> dict[str, Any]:
    body = json.loads(event["body"])
    body["data"].update(changes)
    return with_body(event, json.dumps(body))


def with_headers(event: dict[str, Any], headers: dict[str, str]) -> dict[str, Any]:
    return {**event, "headers": headers}


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


EXPECTED_AFTER = {
    "webhook_hunyuan_completed": {
        "status": "completed",
        "video_url": "https://img.theapi.app/ephemeral/0b6f2a1c-8d3e-4f5a-9b7c-2d1e0f3a4b5c.mp4",
        "video_raw_url": "https://img.theapi.app/ephemeral/0b6f2a1c-8d3e-4f5a-9b7c-2d1e0f3a4b5c.mp4",
        "provider_video_url": "https://img.theapi.app/ephemeral/0b6f2a1c-8d3e-4f5a-9b7c-2d1e0f3a4b5c.mp4",
        "provider_video_raw_url": "https://img.theapi.app/ephemeral/0b6f2a1c-8d3e-4f5a-9b7c-2d1e0f3a4b5c.mp4",
        "thumbnail_url": None,
        "cost_points": 300_000,
        "cost_usd": 0.03,
        "completed_at": at("2026-11-25T09:03:41.500000+00:00"),
        "error": None,
        "saved_to_r2": False,
    },
    "webhook_kling_works_completed": {
        "status": "completed",
        "video_url": "https://v15-kling.klingai.com/bs2/upload/fox-watermarked.mp4",
        "video_raw_url": "https://storage.theapi.app/videos/318812345678901.mp4",
        "provider_video_url": "https://v15-kling.klingai.com/bs2/upload/fox-watermarked.mp4",
        "provider_video_raw_url": "https://storage.theapi.app/videos/318812345678901.mp4",
        "thumbnail_url": "https://s15-kling.klingai.com/kimg/cover-4f2e.jpg",
        "cost_points": 2_600_000,
        "cost_usd": 0.26,
        "completed_at": at("2026-11-25T10:06:12+00:00"),
        "error": None,
        "saved_to_r2": False,
    },
    "webhook_kling3_completed": {
        "status": "completed",
        "video_url": "https://storage.theapi.app/videos/302399988877766.mp4",
        "video_raw_url": "https://storage.theapi.app/videos/302399988877766.mp4",
        "provider_video_url": "https://storage.theapi.app/videos/302399988877766.mp4",
        "provider_video_raw_url": "https://storage.theapi.app/videos/302399988877766.mp4",
        "thumbnail_url": None,
        "cost_points": 4_500_000,
        "cost_usd": 0.45,
        "completed_at": at("2026-11-25T11:01:20+00:00"),
        "error": None,
        "saved_to_r2": False,
    },
    "webhook_luma_completed": {
        "status": "completed",
        "video_url": "https://storage.cdn-luma.com/dream_machine/a1b2/waves_watermarked.mp4",
        "video_raw_url": "https://storage.cdn-luma.com/dream_machine/a1b2/waves.mp4",
        "provider_video_url": "https://storage.cdn-luma.com/dream_machine/a1b2/waves_watermarked.mp4",
        "provider_video_raw_url": "https://storage.cdn-luma.com/dream_machine/a1b2/waves.mp4",
        "thumbnail_url": "https://imagedelivery.net/abc123/waves-thumb/public",
        "cost_points": 400_000,
        "cost_usd": 0.04,
        "completed_at": at("2026-11-25T12:02:30+00:00"),
        "error": None,
        "saved_to_r2": False,
    },
    "webhook_failed": {
        "status": "failed",
        "video_url": None,
        "video_raw_url": None,
        "provider_video_url": None,
        "provider_video_raw_url": None,
        "thumbnail_url": None,
        "cost_points": 0,
        "cost_usd": 0.0,
        "completed_at": None,
        "error": "task failed: content moderation rejected the prompt",
        "saved_to_r2": False,
    },
    "webhook_processing": {
        "status": "processing",
        "video_url": None,
        "video_raw_url": None,
        "provider_video_url": None,
        "provider_video_raw_url": None,
        "thumbnail_url": None,
        "cost_points": 0,
        "cost_usd": 0.0,
        "completed_at": None,
        "error": None,
        "saved_to_r2": False,
    },
}


@pytest.mark.parametrize(("event_name", "expected"), EXPECTED_AFTER.items())
def test_each_sample_delivery_sets_the_record_fields(event_name: str, expected: dict[str, Any]) -> None:
    # GIVEN a pending video whose PiAPI task the sample reports on
    event = load_event(event_name)
    video = make_video(task_of(event)["task_id"])

    # WHEN PiAPI delivers the sample
    status, body = deliver(event)

    # THEN it is applied and the record holds exactly what the delivery says
    assert (status, body) == (200, {"result": "applied"})
    assert stored(video.video_id) == expected


def test_completed_delivery_keeps_the_record_in_the_purge_index_until_saved() -> None:
    event = load_event("webhook_kling3_completed")
    video = make_video(task_of(event)["task_id"])

    deliver(event)

    record = db.get_video(video.video_id, consistent=True)
    assert record is not None
    assert record.purge_shard == db.purge_shard_of(video.video_id)


@pytest.mark.parametrize(
    "headers",
    [
        {"content-type": "application/json"},
        {"content-type": "application/json", "x-webhook-secret": "wrong"},
        {"content-type": "application/json", "x-webhook-secret": ""},
        {"content-type": "application/json", "x-webhook-secret": WEBHOOK_SECRET + "x"},
        {"content-type": "application/json", "authorization": f"Bearer {WEBHOOK_SECRET}"},
    ],
    ids=["missing", "wrong", "empty", "longer", "other-header"],
)
def test_missing_or_wrong_secret_is_401_and_changes_nothing(headers: dict[str, str]) -> None:
    event = load_event("webhook_hunyuan_completed")
    video = make_video(task_of(event)["task_id"])
    before = stored(video.video_id)

    status, body = deliver(with_headers(event, headers))

    assert status == 401
    assert body["error"]["code"] == "unauthorized"
    assert stored(video.video_id) == before


def test_wrong_secret_is_401_even_for_a_malformed_body() -> None:
    """An unauthenticated caller must not learn how we validate bodies."""
    event = with_headers(with_body(load_event("webhook_failed"), "{not json"), {"x-webhook-secret": "nope"})

    status, _ = deliver(event)

    assert status == 401


def test_header_name_case_does_not_matter() -> None:
    event = load_event("webhook_kling3_completed")
    make_video(task_of(event)["task_id"])

    status, _ = deliver(with_headers(event, {"X-Webhook-Secret": WEBHOOK_SECRET, "Content-Type": "application/json"}))

    assert status == 200


def test_without_a_configured_secret_every_call_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    from video_library.settings import get_settings

    monkeypatch.delenv("PIAPI_WEBHOOK_SECRET")
    get_settings.cache_clear()
    event = load_event("webhook_hunyuan_completed")
    video = make_video(task_of(event)["task_id"])
    before = stored(video.video_id)

    status, body = deliver(with_headers(event, {"x-webhook-secret": ""}))
    status_with_sample_secret, _ = deliver(event)

    assert status == status_with_sample_secret == 503
    assert body["error"]["code"] == "not_configured"
    assert stored(video.video_id) == before


@pytest.mark.parametrize(
    "raw_body",
    [
        "{not json",
        "",
        "[]",
        '"completed"',
        json.dumps({"timestamp": 1, "data": {"status": "completed"}}),
        json.dumps({"timestamp": 1, "data": {"task_id": 42, "status": "completed", "output": "nope"}}),
        json.dumps({"timestamp": 1}),
    ],
    ids=["bad-json", "empty", "array", "string", "no-task-id", "wrong-types", "no-data"],
)
def test_malformed_body_is_400_with_a_json_error_and_changes_nothing(raw_body: str) -> None:
    event = load_event("webhook_hunyuan_completed")
    video = make_video(task_of(event)["task_id"])
    before = stored(video.video_id)

    status, body = deliver(with_body(event, raw_body))

    assert status == 400
    assert body["error"]["code"] in {"invalid_json", "empty_body", "not_an_object", "invalid_request"}
    assert body["error"]["message"]
    assert stored(video.video_id) == before


def test_base64_encoded_body_is_accepted() -> None:
    import base64

    event = load_event("webhook_kling3_completed")
    video = make_video(task_of(event)["task_id"])
    encoded = {**event, "body": base64.b64encode(event["body"].encode()).decode(), "isBase64Encoded": True}

    status, _ = deliver(encoded)

    assert status == 200
    assert stored(video.video_id)["status"] == "completed"


def test_repeated_delivery_is_a_duplicate_and_changes_nothing() -> None:
    event = load_event("webhook_luma_completed")
    video = make_video(task_of(event)["task_id"])
    deliver(event)
    record = db.get_video(video.video_id, consistent=True)
    assert record is not None
    first_updated_at = record.updated_at

    status, body = deliver(event)

    assert (status, body) == (200, {"result": "duplicate"})
    assert stored(video.video_id) == EXPECTED_AFTER["webhook_luma_completed"]
    again = db.get_video(video.video_id, consistent=True)
    assert again is not None
    assert again.updated_at == first_updated_at


def test_processing_after_completed_does_not_move_the_status_back() -> None:
    completed = load_event("webhook_hunyuan_completed")
    processing = load_event("webhook_processing")
    video = make_video(task_of(completed)["task_id"])
    deliver(completed)

    status, body = deliver(processing)

    assert (status, body) == (200, {"result": "stale"})
    assert stored(video.video_id) == EXPECTED_AFTER["webhook_hunyuan_completed"]


def test_failed_after_completed_is_stale_and_completed_after_failed_too() -> None:
    completed = load_event("webhook_hunyuan_completed")
    video = make_video(task_of(completed)["task_id"])
    deliver(completed)

    _, body = deliver(with_task(completed, status="failed"))

    assert body == {"result": "stale"}
    assert stored(video.video_id)["status"] == "completed"

    failed = load_event("webhook_failed")
    other = make_video(task_of(failed)["task_id"])
    deliver(failed)
    _, body = deliver(with_task(failed, status="completed", output={"video_url": "https://img.theapi.app/x.mp4"}))
    assert body == {"result": "stale"}
    assert stored(other.video_id) == EXPECTED_AFTER["webhook_failed"]


def test_capitalised_status_is_understood() -> None:
    event = load_event("webhook_kling_works_completed")
    video = make_video(task_of(event)["task_id"])

    status, body = deliver(with_task(event, status="Completed"))

    assert (status, body) == (200, {"result": "applied"})
    assert stored(video.video_id) == EXPECTED_AFTER["webhook_kling_works_completed"]


def test_unknown_task_is_ignored_with_200_and_logged(logs: io.StringIO) -> None:
    event = load_event("webhook_luma_completed")
    bystander = make_video("some-other-task")

    status, body = deliver(event)

    assert (status, body) == (200, {"result": "ignored"})
    assert stored(bystander.video_id)["status"] == "pending"
    assert any(
        line.get("message") == "delivery for an unknown task ignored"
        and line.get("task_id") == "e5d4c3b2-a190-4f8e-b7d6-c5b4a3928170"
        for line in log_records(logs)
    )


def test_completed_without_any_video_url_marks_the_video_failed() -> None:
    event = load_event("webhook_hunyuan_completed")
    video = make_video(task_of(event)["task_id"])

    _, body = deliver(with_task(event, output={"something": "else"}))

    assert body == {"result": "applied"}
    assert stored(video.video_id)["status"] == "failed"
    assert stored(video.video_id)["error"] == "the provider completed the task without a video"


def test_the_secret_never_reaches_the_logs(logs: io.StringIO, capsys: pytest.CaptureFixture[str]) -> None:
    logger.setLevel("DEBUG")
    try:
        for name in EXPECTED_AFTER:
            event = load_event(name)
            make_video(task_of(event)["task_id"])
            deliver(event)
            deliver(with_body(event, "{broken"))
            deliver(with_headers(event, {"x-webhook-secret": "guess"}))
            deliver(with_task(event, status="exploded"))
    finally:
        logger.setLevel("INFO")

    output = capsys.readouterr()
    written = logs.getvalue() + output.out + output.err
    assert "task progress" in written  # the logs were captured at all
    assert WEBHOOK_SECRET not in written


def test_metrics_count_deliveries_completions_and_failures(capsys: pytest.CaptureFixture[str]) -> None:
    for name in ("webhook_hunyuan_completed", "webhook_failed"):
        make_video(task_of(load_event(name))["task_id"])
    deliver(load_event("webhook_processing"))
    deliver(load_event("webhook_hunyuan_completed"))
    deliver(load_event("webhook_failed"))

    emitted = emitted_metrics(capsys.readouterr().out)
    assert emitted == {"WebhooksReceived": 3, "VideosCompleted": 1, "VideosFailed": 1}


def test_an_event_built_like_api_gateway_for_a_new_request_is_accepted() -> None:
    task = task_of(load_event("webhook_kling3_completed"))
    video = make_video(task["task_id"])
    event = http_api_event(
        "POST",
        "/webhooks/piapi",
        body=json.dumps({"timestamp": 1, "data": task}),
        headers={"X-Webhook-Secret": WEBHOOK_SECRET, "Content-Type": "application/json"},
    )

    status, _ = deliver(event)

    assert status == 200
    assert stored(video.video_id)["status"] == "completed"
