"""POST /api/video/save-to-library through the real handler, against moto over HTTP and a local source."""

from __future__ import annotations

import hashlib
import json
import threading
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest

from devtools.video_source import synthetic_sha256, synthetic_video
from tests.save_support import BUCKET, MIB, PART, SaveStack, call_save, completed_video
from video_library import db
from video_library.r2 import video_object_key
from video_library.settings import get_settings

KIB = 1024


def part_sizes(stack: SaveStack) -> list[int]:
    """The size of each uploaded part, in part-number order (parts upload concurrently)."""
    parts = stack.aws.requests_matching("PUT", query_has="partNumber=")
    numbered = {int(parse_qs(r.query)["partNumber"][0]): int(r.headers["content-length"]) for r in parts}
    assert len(numbered) == len(parts), "a part was uploaded twice"
    return [numbered[number] for number in sorted(numbered)]


def completed_uploads(stack: SaveStack) -> int:
    return len(stack.aws.requests_matching("POST", query_has="uploadId="))


def single_puts(stack: SaveStack) -> int:
    return len([r for r in stack.aws.requests_matching("PUT", path_has="/videos/") if "partNumber" not in r.query])


def transfers(stack: SaveStack) -> int:
    """Objects written: single PutObjects plus multipart uploads started."""
    return single_puts(stack) + len(stack.aws.requests_matching("POST", query_has="uploads"))


# How the source announces its length decides the upload: a known length (up to 200 MiB) streams as one
# PutObject; an unknown one goes through the multipart pipeline, whose parts must all be equal.
UNKNOWN_LENGTH = {"declare": "none"}


@pytest.mark.parametrize(
    ("size", "expected_parts"),
    [(KIB, 0), (PART - 1, 0), (PART, 0), (PART + 1, 2), (50 * MIB, 7)],
    ids=["1KiB", "just-under-a-part", "exactly-a-part", "a-part-plus-one", "50MiB"],
)
@pytest.mark.parametrize("length", ["known", "unknown"])
def test_saved_bytes_equal_the_source_in_equal_parts(
    stack: SaveStack, size: int, expected_parts: int, length: str
) -> None:
    # GIVEN a completed video at the provider
    announce = UNKNOWN_LENGTH if length == "unknown" else {}
    expected_parts = expected_parts if length == "unknown" else 0
    video = completed_video(stack.source.url(size=size, **announce))

    # WHEN its owner saves it
    status, body = call_save({"video_id": video.video_id, "campaign_id": "42"})

    # THEN the bucket holds exactly the source's bytes at the deterministic key
    key = f"campaigns/42/videos/{video.video_id}.mp4"
    assert status == 200, body
    assert body["r2_key"] == key
    assert body["size_bytes"] == size
    assert body["saved_to_r2"] is True
    stored = stack.object_bytes(key)
    assert hashlib.sha256(stored).hexdigest() == synthetic_sha256(size)
    # AND every part but the last has the same size (R2 refuses anything else)
    sizes = part_sizes(stack)
    assert len(sizes) == expected_parts
    if sizes:
        assert set(sizes[:-1]) == {PART}
        assert 0 < sizes[-1] <= PART
        assert sum(sizes) == size
        assert completed_uploads(stack) == 1
    else:
        assert single_puts(stack) == 1
    # AND the object says what it is
    head = stack.s3.head_object(Bucket=BUCKET, Key=key)
    assert head["ContentType"] == "video/mp4"
    assert head["Metadata"] == {"video-id": video.video_id}
    assert stack.unfinished_uploads() == []


def test_a_known_length_above_the_streaming_cutoff_goes_multipart(
    stack: SaveStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    from video_library import save

    monkeypatch.setattr(save, "STREAMING_PUT_MAX", 10 * MIB)
    size = 3 * PART + 7
    video = completed_video(stack.source.url(size=size))

    status, body = call_save({"video_id": video.video_id})

    assert status == 200
    assert part_sizes(stack) == [PART, PART, PART, 7]
    assert hashlib.sha256(stack.object_bytes(body["r2_key"])).hexdigest() == synthetic_sha256(size)


def test_the_record_points_at_r2_and_leaves_the_purge_index(stack: SaveStack) -> None:
    provider = stack.source.url(size=3 * KIB)
    raw = stack.source.url(size=4 * KIB)
    video = completed_video(provider, raw_url=raw)

    status, body = call_save({"video_id": video.video_id})

    assert status == 200
    record = db.get_video(video.video_id, consistent=True)
    assert record is not None
    key = video_object_key("42", video.video_id)
    assert record.saved_to_r2 is True
    assert record.r2_key == key
    assert record.size_bytes == 4 * KIB  # the unwatermarked (raw) file is the one kept
    assert record.sha256 == synthetic_sha256(4 * KIB)
    assert record.saved_at is not None and body["saved_at"].startswith(record.saved_at.strftime("%Y-%m-%dT%H:%M"))
    # no public domain configured: the record stores the object's permanent address, nothing that expires
    assert record.video_url == record.video_raw_url == f"{stack.aws.url}/{BUCKET}/{key}"
    assert (record.provider_video_url, record.provider_video_raw_url) == (provider, raw)
    assert record.purge_shard is None
    assert (record.save_lease_id, record.save_lease_expires_at, record.save_error) == (None, None, None)


def test_the_answer_gives_a_presigned_url_that_plays(stack: SaveStack) -> None:
    video = completed_video(stack.source.url(size=2 * KIB))

    _, body = call_save({"video_id": video.video_id})

    assert "X-Amz-Signature=" in body["video_url"]
    played = httpx.get(body["video_url"])
    assert played.status_code == 200
    assert played.content == b"".join(synthetic_video(2 * KIB))


def test_with_a_public_domain_the_url_is_public(stack: SaveStack, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("R2_PUBLIC_BASE_URL", "https://videos.example.com/")
    get_settings.cache_clear()
    video = completed_video(stack.source.url(size=KIB))

    _, body = call_save({"video_id": video.video_id})

    expected = f"https://videos.example.com/campaigns/42/videos/{video.video_id}.mp4"
    assert body["video_url"] == expected
    record = db.get_video(video.video_id)
    assert record is not None and record.video_url == expected


def test_campaign_id_may_be_a_number(stack: SaveStack) -> None:
    video = completed_video(stack.source.url(size=KIB), campaign_id="42")

    status, _ = call_save({"video_id": video.video_id, "campaign_id": 42})

    assert status == 200


@pytest.mark.parametrize("length", ["known", "unknown"])
def test_ten_concurrent_saves_make_one_object(stack: SaveStack, length: str) -> None:
    # GIVEN a video served slowly enough for the saves to overlap
    size = 2 * PART + 123
    announce = UNKNOWN_LENGTH if length == "unknown" else {}
    video = completed_video(stack.source.url(size=size, delay_ms=20, **announce))
    answers: list[tuple[int, dict[str, Any]]] = []
    start = threading.Barrier(10)

    def save() -> None:
        start.wait()
        answers.append(call_save({"video_id": video.video_id}))

    # WHEN ten saves run at once
    threads = [threading.Thread(target=save) for _ in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    # THEN one transfer happened, one object exists, and the record is consistent
    statuses = sorted(status for status, _ in answers)
    assert statuses.count(200) >= 1
    assert set(statuses) <= {200, 409}
    assert all(body["error"]["code"] == "save_in_progress" for status, body in answers if status == 409)
    assert transfers(stack) == 1
    assert completed_uploads(stack) == (1 if length == "unknown" else 0)
    assert stack.keys() == [video_object_key("42", video.video_id)]
    record = db.get_video(video.video_id, consistent=True)
    assert record is not None and record.saved_to_r2 and record.size_bytes == size
    assert record.sha256 == synthetic_sha256(size)


@pytest.mark.parametrize("length", ["known", "unknown"])
def test_a_failure_half_way_leaves_nothing_and_a_retry_succeeds(stack: SaveStack, length: str) -> None:
    # GIVEN a source that drops the connection after 20 MiB the first time
    size = 30 * MIB
    announce = UNKNOWN_LENGTH if length == "unknown" else {}
    video = completed_video(stack.source.url(size=size, drop_at=20 * MIB, once=f"half-way-{length}", **announce))

    # WHEN the save runs
    status, body = call_save({"video_id": video.video_id})

    # THEN it fails as a provider problem, the multipart upload is aborted and nothing is in the bucket
    assert status == 502
    assert body["error"]["code"] == "source_unavailable"
    if length == "unknown":
        assert len(part_sizes(stack)) >= 1  # parts had been uploaded before the failure
    assert stack.keys() == []
    assert stack.unfinished_uploads() == []
    record = db.get_video(video.video_id, consistent=True)
    assert record is not None
    assert record.saved_to_r2 is False
    assert record.save_error and "stopped sending" in record.save_error
    assert record.save_lease_id is None  # the lease is given back
    assert record.purge_shard is not None

    # WHEN the user retries
    status, body = call_save({"video_id": video.video_id})

    # THEN it succeeds and the error is gone
    assert status == 200, body
    assert hashlib.sha256(stack.object_bytes(body["r2_key"])).hexdigest() == synthetic_sha256(size)
    record = db.get_video(video.video_id, consistent=True)
    assert record is not None and record.saved_to_r2 and record.save_error is None


def test_a_source_that_answers_an_error_is_502(stack: SaveStack) -> None:
    video = completed_video(stack.source.url(size=KIB, status=404))

    status, body = call_save({"video_id": video.video_id})

    assert status == 502
    assert body["error"]["status"] == 404
    assert stack.keys() == []


@pytest.mark.parametrize(
    ("params", "expected"),
    [({"type": "text/html"}, 415), ({"type": "none"}, 415), ({"type": "application/octet-stream", "magic": 0}, 415)],
    ids=["html", "no-type", "octet-stream-without-video-header"],
)
def test_a_source_that_is_not_a_video_is_415(stack: SaveStack, params: dict[str, Any], expected: int) -> None:
    video = completed_video(stack.source.url(size=KIB, **params))

    status, body = call_save({"video_id": video.video_id})

    assert status == expected
    assert body["error"]["code"] == "source_not_video"
    assert stack.keys() == []


def test_octet_stream_with_an_mp4_header_is_saved_as_mp4(stack: SaveStack) -> None:
    video = completed_video(stack.source.url(size=KIB, type="application/octet-stream"))

    status, body = call_save({"video_id": video.video_id})

    assert status == 200
    assert stack.s3.head_object(Bucket=BUCKET, Key=body["r2_key"])["ContentType"] == "video/mp4"


@pytest.mark.parametrize(
    "params",
    [{"size": 3 * MIB}, {"size": 3 * MIB, "declare": "none"}, {"size": 6 * MIB, "declare": 5 * MIB}],
    ids=["announced", "no-length-counted-while-streaming", "announced-too-much"],
)
def test_a_source_over_the_cap_is_413(
    stack: SaveStack, monkeypatch: pytest.MonkeyPatch, params: dict[str, Any]
) -> None:
    monkeypatch.setenv("MAX_VIDEO_BYTES", str(2 * MIB))
    get_settings.cache_clear()
    video = completed_video(stack.source.url(**params))

    status, body = call_save({"video_id": video.video_id})

    assert status == 413
    assert body["error"]["code"] == "source_too_large"
    assert stack.keys() == []
    assert stack.unfinished_uploads() == []


def test_a_source_announcing_less_than_it_sends_cannot_pass_the_cap(
    stack: SaveStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """HTTP ends a body at its Content-Length: the extra bytes are never read, so the cap still holds."""
    monkeypatch.setenv("MAX_VIDEO_BYTES", str(2 * MIB))
    get_settings.cache_clear()
    video = completed_video(stack.source.url(size=3 * MIB, declare=MIB))

    status, body = call_save({"video_id": video.video_id})

    assert status == 200
    assert body["size_bytes"] == MIB
    assert len(stack.object_bytes(body["r2_key"])) == MIB


def test_a_source_that_sends_less_than_it_announced_is_502(stack: SaveStack) -> None:
    video = completed_video(stack.source.url(size=2 * MIB, declare=3 * MIB))

    status, body = call_save({"video_id": video.video_id})

    assert status == 502
    assert body["error"]["code"] == "source_unavailable"
    assert stack.keys() == []


def test_a_source_too_slow_for_the_time_budget_is_502(stack: SaveStack) -> None:
    # 12 s of Lambda time leaves a 2 s transfer deadline; the source needs ~5 s
    video = completed_video(stack.source.url(size=10 * MIB, delay_ms=500))

    status, body = call_save({"video_id": video.video_id}, timeout_s=12)

    assert status == 502
    assert "too slow" in body["error"]["message"]
    assert stack.keys() == []
    assert stack.unfinished_uploads() == []


def test_no_claims_is_401(stack: SaveStack) -> None:
    video = completed_video(stack.source.url(size=KIB))

    status, body = call_save({"video_id": video.video_id}, user=None)
    status_bad_body, _ = call_save(None, user=None, raw="{nope")

    assert (status, status_bad_body) == (401, 401)
    assert body["error"]["code"] == "unauthorized"
    assert stack.keys() == []


def test_another_users_video_is_404_as_if_absent(stack: SaveStack) -> None:
    video = completed_video(stack.source.url(size=KIB), user_id="bob")

    status, body = call_save({"video_id": video.video_id})
    absent_status, absent_body = call_save({"video_id": "no-such-video"})

    assert (status, absent_status) == (404, 404)
    assert body["error"]["code"] == absent_body["error"]["code"] == "video_not_found"
    assert stack.keys() == []
    record = db.get_video(video.video_id, consistent=True)
    assert record is not None and record.save_lease_id is None and not record.saved_to_r2


def test_a_wrong_campaign_is_404(stack: SaveStack) -> None:
    video = completed_video(stack.source.url(size=KIB), campaign_id="42")

    status, _ = call_save({"video_id": video.video_id, "campaign_id": "43"})

    assert status == 404
    assert stack.keys() == []


@pytest.mark.parametrize("progress", ["pending", "processing", "failed"])
def test_a_video_not_completed_is_409_with_its_status(stack: SaveStack, progress: str) -> None:
    from tests.conftest import make_video
    from video_library.models import TaskProgress
    from video_library.status import VideoStatus

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


def test_an_already_saved_video_answers_its_state_without_a_transfer(stack: SaveStack) -> None:
    video = completed_video(stack.source.url(size=KIB))
    _, first = call_save({"video_id": video.video_id})
    stack.aws.requests.clear()
    served_before = len(stack.source.paths)

    status, again = call_save({"video_id": video.video_id})

    assert status == 200
    assert {k: v for k, v in again.items() if k != "video_url"} == {k: v for k, v in first.items() if k != "video_url"}
    assert len(stack.source.paths) == served_before  # nothing fetched
    s3_path = f"/{BUCKET}"
    assert stack.aws.requests_matching("PUT", path_has=s3_path) == []
    assert stack.aws.requests_matching("POST", path_has=s3_path) == []


@pytest.mark.parametrize(
    ("raw", "status", "code"),
    [
        ("{nope", 400, "invalid_json"),
        ("[]", 400, "not_an_object"),  # refused by the front door, never unwrapped
        ("{}", 422, "invalid_request"),
        ('{"video_id": 42}', 422, "invalid_request"),
        ('{"video_id": ""}', 422, "invalid_request"),
        ('{"video_id": "v", "campaign_id": 4.2}', 422, "invalid_request"),
        ('{"video_id": "v", "campaign_id": true}', 422, "invalid_request"),
        ('{"video_id": "v", "campaign_id": "../other"}', 422, "invalid_request"),
    ],
)
def test_bad_bodies_get_a_json_4xx_and_change_nothing(stack: SaveStack, raw: str, status: int, code: str) -> None:
    answer_status, body = call_save(None, raw=raw)

    assert answer_status == status
    assert body["error"]["code"] == code
    assert stack.aws.requests_matching("PUT") == []


def test_the_record_update_failing_after_the_upload_leaves_no_object_and_a_retry_completes(
    stack: SaveStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN DynamoDB failing the one write that records the save
    video = completed_video(stack.source.url(size=PART + 5))
    real_record_saved = db.record_saved

    def failing_record_saved(*args: Any, **kwargs: Any) -> db.VideoRecord:
        raise RuntimeError("DynamoDB is unavailable")

    monkeypatch.setattr(db, "record_saved", failing_record_saved)

    # WHEN the save runs
    status, body = call_save({"video_id": video.video_id})

    # THEN it is a 500 with a JSON body, and no record points at a missing object: the object is removed
    assert status == 500
    assert body["error"]["code"] == "internal_error"
    assert stack.keys() == []
    record = db.get_video(video.video_id, consistent=True)
    assert record is not None and record.saved_to_r2 is False and record.save_lease_id is None

    # WHEN DynamoDB is back and the user retries THEN the save completes
    monkeypatch.setattr(db, "record_saved", real_record_saved)
    status, body = call_save({"video_id": video.video_id})
    assert status == 200
    assert stack.keys() == [body["r2_key"]]


def test_a_record_update_that_landed_before_its_error_keeps_the_object(
    stack: SaveStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a record write that succeeds but whose answer is lost (a timeout after the write)
    video = completed_video(stack.source.url(size=KIB))
    real_record_saved = db.record_saved

    def lost_answer(*args: Any, **kwargs: Any) -> db.VideoRecord:
        real_record_saved(*args, **kwargs)
        raise TimeoutError("read timeout")

    monkeypatch.setattr(db, "record_saved", lost_answer)

    status, _ = call_save({"video_id": video.video_id})

    # THEN the object stays: the record points at it
    assert status == 500
    record = db.get_video(video.video_id, consistent=True)
    assert record is not None and record.saved_to_r2 and record.r2_key
    assert stack.keys() == [record.r2_key]
    monkeypatch.setattr(db, "record_saved", real_record_saved)
    assert call_save({"video_id": video.video_id})[0] == 200


def test_a_crashed_saves_lease_expires_and_is_taken_over(stack: SaveStack) -> None:
    from datetime import timedelta

    video = completed_video(stack.source.url(size=KIB))
    past = db.utcnow() - timedelta(minutes=30)
    assert db.claim_save_lease(video.video_id, "alice", "crashed-run", past, past - timedelta(seconds=1))

    status, _ = call_save({"video_id": video.video_id})

    assert status == 200


def test_a_live_lease_makes_a_second_save_409(stack: SaveStack) -> None:
    from datetime import timedelta

    video = completed_video(stack.source.url(size=KIB))
    now = db.utcnow()
    assert db.claim_save_lease(video.video_id, "alice", "running", now + timedelta(minutes=5), now)

    status, body = call_save({"video_id": video.video_id})

    assert status == 409
    assert body["error"]["code"] == "save_in_progress"
    assert stack.keys() == []


def test_metrics_and_log_line(stack: SaveStack, capsys: pytest.CaptureFixture[str], logs: Any) -> None:
    from tests.conftest import log_records

    video = completed_video(stack.source.url(size=PART + 1))
    failing = completed_video(stack.source.url(size=KIB, status=500))

    call_save({"video_id": video.video_id})
    call_save({"video_id": failing.video_id})

    emitted = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
    names = {m["Name"]: blob for blob in emitted for m in blob["_aws"]["CloudWatchMetrics"][0]["Metrics"]}
    assert names["VideosSaved"]["VideosSaved"] in (1, [1.0], 1.0)
    assert names["BytesSaved"]["BytesSaved"] in (PART + 1, [float(PART + 1)], float(PART + 1))
    assert names["SaveFailures"]["reason"] == "source_unavailable"
    saved_line = next(r for r in log_records(logs) if r.get("message") == "video saved")
    assert saved_line["size_bytes"] == PART + 1
    assert saved_line["duration_s"] > 0 and saved_line["throughput_mib_s"] > 0


def test_the_sample_event_in_events_is_served(stack: SaveStack) -> None:
    """events/save_to_library.json, as `serverless invoke local` would send it, for a record of its user."""
    from devtools.lambda_context import LocalLambdaContext
    from functions.save_to_library.handler import handler
    from tests.conftest import load_event

    event = load_event("save_to_library")
    user = event["requestContext"]["authorizer"]["jwt"]["claims"]["sub"]
    video = completed_video(stack.source.url(size=KIB), user_id=user, campaign_id="42")
    event["body"] = json.dumps({**json.loads(event["body"]), "video_id": video.video_id})

    response = handler(event, LocalLambdaContext())

    assert response["statusCode"] == 200
    assert json.loads(response["body"])["r2_key"] == video_object_key("42", video.video_id)
