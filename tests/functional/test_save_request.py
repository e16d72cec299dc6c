"""POST /api/video/save-to-library through the real handler: it checks, queues and answers at once.

Against moto over HTTP (DynamoDB and the save queue); no transfer runs inside a request, so nothing here reads the
provider's file or writes to the bucket."""

from __future__ import annotations

import json
import threading
from datetime import timedelta
from typing import Any

import pytest

from tests.conftest import make_video
from tests.save_support import SaveStack, call_save, completed_video
from video_library import db, save_queue
from video_library.models import TaskProgress
from video_library.save_state import STALLED_AFTER
from video_library.status import VideoStatus

KIB = 1024


def queued_video_ids(stack: SaveStack) -> list[str]:
    """The video ids of the messages waiting in the save queue (read without consuming them)."""
    ids = []
    while True:
        messages = stack.sqs.receive_message(
            QueueUrl=stack.queue_url, MaxNumberOfMessages=10, VisibilityTimeout=30
        ).get("Messages", [])
        if not messages:
            return sorted(ids)
        ids += [json.loads(message["Body"])["video_id"] for message in messages]


def test_a_save_answers_202_at_once_and_queues_one_transfer(stack: SaveStack) -> None:
    # GIVEN a completed video of alice's
    video = completed_video(stack.source.url(size=KIB))
    served_before = len(stack.source.paths)

    # WHEN she saves it
    status, body = call_save({"video_id": video.video_id, "campaign_id": "42"})

    # THEN the answer says queued, a message waits for the worker, and nothing was fetched or stored yet
    assert status == 202, body
    assert body["video_id"] == video.video_id
    assert body["save_state"] == "queued"
    assert body["saved_to_r2"] is False
    assert queued_video_ids(stack) == [video.video_id]
    assert len(stack.source.paths) == served_before
    assert stack.keys() == []
    record = db.get_video(video.video_id, consistent=True)
    assert record is not None
    assert record.save_state == "queued" and record.save_attempts == 0 and record.save_requested_at is not None
    assert record.pending_shard is not None  # the sweep can find it if the message is lost


def test_asking_again_while_queued_or_saving_starts_nothing_new(stack: SaveStack) -> None:
    video = completed_video(stack.source.url(size=KIB))
    assert call_save({"video_id": video.video_id})[0] == 202
    lease_at = db.utcnow()
    db.claim_save(video.video_id, "worker-lease", lease_at + timedelta(minutes=1), lease_at)

    status, body = call_save({"video_id": video.video_id})

    assert status == 202
    assert body["save_state"] == "saving"
    assert queued_video_ids(stack) == [video.video_id]  # still the one message


def test_twenty_concurrent_requests_queue_one_transfer(stack: SaveStack) -> None:
    # GIVEN twenty clicks arriving at once (conditional writes decide; the server serialises them as DynamoDB would)
    video = completed_video(stack.source.url(size=KIB))
    start = threading.Barrier(20)
    answers: list[tuple[int, dict[str, Any]]] = []

    def save() -> None:
        start.wait()
        answers.append(call_save({"video_id": video.video_id}))

    threads = [threading.Thread(target=save) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    # THEN every answer is 202 and exactly one message was sent
    assert sorted(status for status, _ in answers) == [202] * 20
    assert queued_video_ids(stack) == [video.video_id]


def test_an_already_saved_video_answers_200_without_queueing(stack: SaveStack) -> None:
    video = completed_video(stack.source.url(size=KIB))
    record = stack.save_and_run(video.video_id)
    assert record.saved_to_r2
    served_before = len(stack.source.paths)

    status, body = call_save({"video_id": video.video_id})

    assert status == 200
    assert body["save_state"] == "saved" and body["saved_to_r2"] is True
    assert body["r2_key"] == record.r2_key and body["size_bytes"] == KIB
    assert queued_video_ids(stack) == []
    assert len(stack.source.paths) == served_before


def test_a_bulk_save_of_a_hundred_queues_one_transfer_each(stack: SaveStack) -> None:
    # GIVEN 100 completed videos, one of them saved already and one of them someone else's
    videos = [completed_video(stack.source.url(size=KIB, n=i)) for i in range(98)]
    saved = completed_video(stack.source.url(size=KIB, n="saved"))
    stack.save_and_run(saved.video_id)
    bobs = completed_video(stack.source.url(size=KIB, n="bob"), user_id="bob")
    ids = [v.video_id for v in videos] + [saved.video_id, bobs.video_id]

    # WHEN alice saves them all in one request
    status, body = call_save({"video_ids": ids})

    # THEN one answer says what happened to each, and the queue holds one message per queued video
    assert status == 202, body
    outcome = {item["video_id"]: item for item in body["results"]}
    assert [outcome[v.video_id]["status"] for v in videos] == [202] * 98
    assert outcome[saved.video_id]["status"] == 200 and outcome[saved.video_id]["save_state"] == "saved"
    assert outcome[bobs.video_id]["status"] == 404
    assert outcome[bobs.video_id]["error"]["code"] == "video_not_found"
    assert (body["queued"], body["in_progress"], body["already_saved"], body["refused"]) == (98, 0, 1, 1)
    assert queued_video_ids(stack) == sorted(v.video_id for v in videos)

    # WHEN she sends the same request again THEN nothing new is queued
    status, again = call_save({"video_ids": ids})
    assert status == 202
    assert (again["queued"], again["in_progress"]) == (0, 98)
    assert queued_video_ids(stack) == []  # (the first request's messages were read above; none were added)


def test_save_all_ready_queues_the_campaigns_completed_unsaved_videos(stack: SaveStack) -> None:
    ready = [completed_video(stack.source.url(size=KIB, n=i), campaign_id="7") for i in range(3)]
    other_campaign = completed_video(stack.source.url(size=KIB, n="x"), campaign_id="8")
    pending = make_video("still-pending", campaign_id="7")

    status, body = call_save({"campaign_id": "7", "all_ready": True})

    assert status == 202
    assert sorted(item["video_id"] for item in body["results"]) == sorted(v.video_id for v in ready)
    assert body["more"] is False
    assert queued_video_ids(stack) == sorted(v.video_id for v in ready)
    assert other_campaign.video_id not in queued_video_ids(stack)
    assert pending.video_id not in [item["video_id"] for item in body["results"]]


def test_a_save_stalled_past_its_time_is_sent_again_when_asked(stack: SaveStack) -> None:
    # GIVEN a save queued long ago whose message was lost
    video = completed_video(stack.source.url(size=KIB))
    long_ago = db.utcnow() - STALLED_AFTER - timedelta(minutes=1)
    assert db.queue_save(video.video_id, "alice", long_ago)

    status, _ = call_save({"video_id": video.video_id})

    assert status == 202
    assert queued_video_ids(stack) == [video.video_id]


def test_when_the_queue_refuses_the_answer_is_503_and_the_record_says_why(
    stack: SaveStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    video = completed_video(stack.source.url(size=KIB))
    monkeypatch.setattr(save_queue, "send", lambda messages: [m.video_id for m in messages])

    status, body = call_save({"video_id": video.video_id})

    assert status == 503
    assert body["error"]["code"] == "save_queue_unavailable"
    record = db.get_video(video.video_id, consistent=True)
    assert record is not None and record.save_state == "failed"
    assert record.save_error_code == "save_queue_unavailable"
    # AND asking again once the queue is back works
    monkeypatch.undo()
    assert call_save({"video_id": video.video_id})[0] == 202


def test_no_claims_is_401(stack: SaveStack) -> None:
    video = completed_video(stack.source.url(size=KIB))

    status, body = call_save({"video_id": video.video_id}, user=None)
    status_bad_body, _ = call_save(None, user=None, raw="{nope")

    assert (status, status_bad_body) == (401, 401)
    assert body["error"]["code"] == "unauthorized"
    assert queued_video_ids(stack) == []


def test_another_users_video_is_404_as_if_absent(stack: SaveStack) -> None:
    video = completed_video(stack.source.url(size=KIB), user_id="bob")

    status, body = call_save({"video_id": video.video_id})
    absent_status, absent_body = call_save({"video_id": "no-such-video"})

    assert (status, absent_status) == (404, 404)
    assert body["error"]["code"] == absent_body["error"]["code"] == "video_not_found"
    record = db.get_video(video.video_id, consistent=True)
    assert record is not None and record.save_state is None
    assert queued_video_ids(stack) == []


def test_a_wrong_campaign_is_404_and_a_numeric_campaign_is_read_as_text(stack: SaveStack) -> None:
    video = completed_video(stack.source.url(size=KIB), campaign_id="42")

    assert call_save({"video_id": video.video_id, "campaign_id": "43"})[0] == 404
    assert call_save({"video_id": video.video_id, "campaign_id": 42})[0] == 202


@pytest.mark.parametrize("progress", ["pending", "processing", "failed"])
def test_a_video_not_completed_is_409_with_its_status(stack: SaveStack, progress: str) -> None:
    video = make_video("task-x")
    if progress != "pending":
        db.apply_task_progress(
            video.video_id, TaskProgress(task_id="task-x", status=VideoStatus(progress), error="boom")
        )

    status, body = call_save({"video_id": video.video_id})

    assert status == 409
    assert body["error"] == {
        "code": "wrong_state",
        "message": body["error"]["message"],
        "video_id": video.video_id,
        "status": progress,
    }
    assert queued_video_ids(stack) == []


@pytest.mark.parametrize(
    "url",
    [
        "http://cdn.example.test/video.mp4",  # plain http to a host that is not the dev host
        "https://evil.example.org/video.mp4",  # not an allowed host
        "https://user:pass@cdn.example.test/video.mp4",  # credentials
        "ftp://cdn.example.test/video.mp4",
        "https://[::1/video.mp4",  # unparseable
        "https://cdn.example.test\t/video.mp4",
    ],
)
def test_a_source_the_policy_refuses_by_itself_is_422_at_once(stack: SaveStack, url: str) -> None:
    video = completed_video(url)

    status, body = call_save({"video_id": video.video_id})

    assert status == 422
    assert body["error"]["code"] == "source_not_allowed"
    record = db.get_video(video.video_id, consistent=True)
    assert record is not None and record.save_state is None and record.save_error is None
    assert queued_video_ids(stack) == []


@pytest.mark.parametrize(
    ("raw", "status", "code"),
    [
        ("{nope", 400, "invalid_json"),
        ("[]", 400, "not_an_object"),
        ('[{"video_id": "v"}]', 400, "not_an_object"),
        ("{}", 422, "invalid_request"),
        ('{"video_id": 42}', 422, "invalid_request"),
        ('{"video_id": ""}', 422, "invalid_request"),
        ('{"video_id": "v", "video_ids": ["w"]}', 422, "invalid_request"),
        ('{"video_ids": []}', 422, "invalid_request"),
        ('{"all_ready": true}', 422, "invalid_request"),
        ('{"video_id": "v", "campaign_id": 4.2}', 422, "invalid_request"),
        ('{"video_id": "v", "campaign_id": true}', 422, "invalid_request"),
        ('{"video_id": "v", "campaign_id": "../other"}', 422, "invalid_request"),
    ],
)
def test_bad_bodies_get_a_json_4xx_and_change_nothing(stack: SaveStack, raw: str, status: int, code: str) -> None:
    answer_status, body = call_save(None, raw=raw)

    assert answer_status == status
    assert body["error"]["code"] == code
    assert queued_video_ids(stack) == []


def test_more_than_a_hundred_ids_is_422(stack: SaveStack) -> None:
    status, body = call_save({"video_ids": [f"v{i}" for i in range(101)]})

    assert status == 422
    assert body["error"]["code"] == "invalid_request"


def test_the_sample_event_in_events_is_served(stack: SaveStack) -> None:
    """events/save_to_library.json, as Lambda would send it, for a record of its user."""
    from devtools.lambda_context import LocalLambdaContext
    from functions.save_to_library.handler import handler
    from tests.conftest import load_event

    event = load_event("save_to_library")
    user = event["requestContext"]["authorizer"]["jwt"]["claims"]["sub"]
    video = completed_video(stack.source.url(size=KIB), user_id=user, campaign_id="42")
    event["body"] = json.dumps({**json.loads(event["body"]), "video_id": video.video_id})

    response = handler(event, LocalLambdaContext())

    assert response["statusCode"] == 202
    assert json.loads(response["body"])["save_state"] == "queued"
