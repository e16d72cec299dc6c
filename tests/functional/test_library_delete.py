"""DELETE /api/video/{video_id} and POST /api/video/delete through the real handler, against moto over HTTP (the
video, its thumbnail and the counters are real): owner only, not while a save runs, idempotent, nothing left in
the bucket, the counters back where they were — and an R2 that refuses finished later by the sweep."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest

from devtools import faulty_proxy as fp
from devtools.apigw import http_api_event
from devtools.eventbridge import scheduled_event
from devtools.faulty_proxy import FaultyProxy
from devtools.lambda_context import LocalLambdaContext
from functions.library_api.handler import handler
from tests.save_support import SaveStack, call_save, completed_video
from video_library import db
from video_library.r2 import thumbnail_object_key
from video_library.settings import get_settings

KIB = 1024


def delete(video_id: str, *, user: str | None = "alice") -> tuple[int, Any]:
    event = http_api_event(
        "DELETE",
        f"/api/video/{video_id}",
        route_key="DELETE /api/video/{video_id}",
        path_parameters={"video_id": video_id},
        claims={"sub": user} if user else None,
    )
    response = handler(event, LocalLambdaContext())
    return response["statusCode"], json.loads(response["body"])


def call(method: str, path: str, *, body: Any = None, raw: str | None = None, query: str = "") -> tuple[int, Any]:
    event = http_api_event(
        method,
        path,
        query=query,
        body=raw if raw is not None else (json.dumps(body) if body is not None else None),
        headers={"content-type": "application/json"},
        claims={"sub": "alice"},
    )
    response = handler(event, LocalLambdaContext())
    return response["statusCode"], json.loads(response["body"])


def usage(campaign_id: str | None = None) -> tuple[int, int]:
    status, body = call("GET", "/api/video/storage-usage", query=f"campaign_id={campaign_id}" if campaign_id else "")
    assert status == 200, body
    return body["saved_videos"], body["total_bytes"]


def saved_with_thumbnail(stack: SaveStack, size: int = 3 * KIB, user_id: str = "alice", **video: Any) -> db.VideoRecord:
    record = completed_video(
        stack.source.url(size=size),
        thumbnail_url=stack.source.url(image="jpg", v=db.new_video_id()),
        user_id=user_id,
        **video,
    )
    assert call_save({"video_id": record.video_id}, user=user_id)[0] == 202
    stack.run_worker()
    saved = db.get_video(record.video_id, consistent=True)
    assert saved is not None and saved.save_state == "saved" and saved.thumbnail_key is not None
    return saved


def test_deleting_a_saved_video_removes_its_objects_its_record_and_its_bytes_from_usage(stack: SaveStack) -> None:
    # GIVEN two saved videos with thumbnails, in two campaigns
    gone = saved_with_thumbnail(stack)
    kept = saved_with_thumbnail(stack, size=5 * KIB, campaign_id="43")
    assert usage() == (2, gone.stored_bytes + kept.stored_bytes)
    assert len(stack.keys()) == 4

    # WHEN its owner deletes one
    status, body = delete(gone.video_id)

    # THEN it is gone: answer, record, both objects, its bytes in the counters; the other is untouched
    assert (status, body) == (200, {"video_id": gone.video_id, "outcome": "deleted"})
    assert db.get_video(gone.video_id, consistent=True) is None
    assert stack.keys() == sorted([kept.r2_key, kept.thumbnail_key])
    assert usage() == (1, kept.stored_bytes)
    assert usage("42") == (0, 0)
    assert usage("43") == (1, kept.stored_bytes)
    assert call("GET", "/api/video/library")[1]["items"][0]["video_id"] == kept.video_id


def test_deleting_a_preview_removes_its_record_and_touches_no_counter(stack: SaveStack) -> None:
    preview = completed_video(stack.source.url(size=KIB))
    saved = saved_with_thumbnail(stack)
    before = usage()

    status, body = delete(preview.video_id)

    assert (status, body["outcome"]) == (200, "deleted")
    assert db.get_video(preview.video_id, consistent=True) is None
    assert usage() == before
    assert db.get_video(saved.video_id, consistent=True) is not None


def test_a_second_delete_finds_nothing_and_changes_nothing(stack: SaveStack) -> None:
    video = saved_with_thumbnail(stack)
    other = saved_with_thumbnail(stack)
    assert delete(video.video_id)[0] == 200
    after_first = (usage(), stack.keys())

    status, body = delete(video.video_id)

    assert status == 404 and body["error"]["code"] == "video_not_found"
    assert (usage(), stack.keys()) == after_first
    assert db.get_video(other.video_id, consistent=True) is not None


def test_someone_elses_video_is_404_as_if_absent_and_is_not_touched(stack: SaveStack) -> None:
    video = saved_with_thumbnail(stack, user_id="bob")
    keys = stack.keys()

    status, body = delete(video.video_id, user="alice")
    unknown, _ = delete("no-such-video")

    assert (status, body["error"]["code"], unknown) == (404, "video_not_found", 404)
    assert db.get_video(video.video_id, consistent=True) is not None
    assert stack.keys() == keys


def test_no_claims_is_401(stack: SaveStack) -> None:
    video = completed_video(stack.source.url(size=KIB))

    status, body = delete(video.video_id, user=None)

    assert (status, body["error"]["code"]) == (401, "unauthorized")
    assert db.get_video(video.video_id, consistent=True) is not None


def test_a_video_whose_save_is_queued_or_running_is_409_and_kept(stack: SaveStack) -> None:
    queued = completed_video(stack.source.url(size=KIB))
    running = completed_video(stack.source.url(size=2 * KIB))
    assert call_save({"video_ids": [queued.video_id, running.video_id]})[0] == 202
    now = db.utcnow()
    assert db.claim_save(running.video_id, "a-worker", now + timedelta(minutes=1), now) is not None

    answers = [delete(video.video_id) for video in (queued, running)]

    assert [(status, body["error"]["code"]) for status, body in answers] == [(409, "save_in_progress")] * 2
    for video in (queued, running):
        record = db.get_video(video.video_id, consistent=True)
        assert record is not None and record.deleting_at is None


def test_a_failed_saves_leftovers_go_with_the_preview(stack: SaveStack) -> None:
    # GIVEN a preview whose save failed after its thumbnail and part of its video reached the bucket
    video = completed_video(stack.source.url(size=KIB, status=404), thumbnail_url=stack.source.url(image="jpg"))
    assert stack.save_and_run(video.video_id).save_state == "failed"
    leftover = thumbnail_object_key("42", video.video_id, "image/png")
    stack.s3.put_object(Bucket="video-library-test", Key=leftover, Body=b"left by a killed attempt")

    status, _ = delete(video.video_id)

    assert status == 200
    assert stack.keys() == []
    assert db.get_video(video.video_id, consistent=True) is None


def test_when_r2_refuses_the_video_is_hidden_at_once_and_the_sweep_finishes_it(
    stack: SaveStack, faults: FaultyProxy, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a saved video, and R2 refusing every delete
    video = saved_with_thumbnail(stack)
    monkeypatch.setenv("R2_ENDPOINT_URL", faults.url)
    get_settings.cache_clear()
    denied = fp.respond(403, b"<Error><Code>AccessDenied</Code><Message>denied</Message></Error>")
    faults.add_rule(fp.Match("DELETE", "/campaigns/", query_lacks="uploadId="), denied, times=None)

    # WHEN its owner deletes it
    status, body = delete(video.video_id)

    # THEN the answer says it is being deleted; it is gone from every view, can no longer be saved, still counted
    assert (status, body["outcome"]) == (202, "deleting")
    assert call("GET", f"/api/video/{video.video_id}")[0] == 404
    assert call("GET", "/api/video/library")[1]["items"] == []
    assert call_save({"video_id": video.video_id})[0] == 404
    assert sorted(stack.keys()) == sorted([video.r2_key, video.thumbnail_key])
    assert usage() == (1, video.stored_bytes)
    # AND a repeated DELETE while the deletion holds the video says the same
    assert delete(video.video_id)[1]["outcome"] == "deleting"

    # WHEN R2 works again and the sweep runs after the deletion's lease has run out
    faults.clear()
    table = db.VideoRecord
    table(video.video_id).update(actions=[table.save_lease_expires_at.set(db.utcnow() - timedelta(seconds=1))])
    from functions.sweep.handler import handler as sweep

    summary = sweep(scheduled_event(db.utcnow() + timedelta(minutes=5)), LocalLambdaContext())

    # THEN it finished the deletion: objects, record, counters
    assert summary["deletions_finished"] == 1
    assert stack.keys() == []
    assert db.get_video(video.video_id, consistent=True) is None
    assert usage() == (0, 0)


def test_a_bulk_delete_answers_each_videos_outcome(stack: SaveStack) -> None:
    saved = saved_with_thumbnail(stack)
    preview = completed_video(stack.source.url(size=KIB))
    bobs = completed_video(stack.source.url(size=KIB), user_id="bob")
    queued = completed_video(stack.source.url(size=2 * KIB))
    assert call_save({"video_id": queued.video_id})[0] == 202
    ids = [saved.video_id, preview.video_id, bobs.video_id, queued.video_id, "no-such-video", saved.video_id]

    status, body = call("POST", "/api/video/delete", body={"video_ids": ids})

    assert status == 200
    outcomes = {r["video_id"]: (r["status"], r["outcome"] or r["error"]["code"]) for r in body["results"]}
    assert outcomes == {
        saved.video_id: (200, "deleted"),
        preview.video_id: (200, "deleted"),
        bobs.video_id: (404, "video_not_found"),
        queued.video_id: (409, "save_in_progress"),
        "no-such-video": (404, "video_not_found"),
    }
    assert len(body["results"]) == 5  # a repeated id is decided once
    assert (body["deleted"], body["deleting"], body["refused"]) == (2, 0, 3)
    assert stack.keys() == []
    assert usage() == (0, 0)
    assert db.get_video(bobs.video_id, consistent=True) is not None
    assert db.get_video(queued.video_id, consistent=True) is not None


@pytest.mark.parametrize(
    ("raw", "status", "code"),
    [
        ('{"video_ids": []}', 422, "invalid_request"),
        (json.dumps({"video_ids": [f"v{i}" for i in range(101)]}), 422, "invalid_request"),
        ('{"video_ids": [1, 2]}', 422, "invalid_request"),
        ('{"video_ids": [""]}', 422, "invalid_request"),
        ('{"video_id": "x"}', 422, "invalid_request"),
        ('[{"video_ids": ["x"]}]', 400, "not_an_object"),
        ("{nope", 400, "invalid_json"),
    ],
    ids=["empty", "over-a-hundred", "not-strings", "empty-id", "wrong-field", "array", "bad-json"],
)
def test_bad_bulk_bodies_get_a_json_4xx_and_delete_nothing(stack: SaveStack, raw: str, status: int, code: str) -> None:
    video = completed_video(stack.source.url(size=KIB))

    answer, body = call("POST", "/api/video/delete", raw=raw)

    assert (answer, body["error"]["code"]) == (status, code)
    assert db.get_video(video.video_id, consistent=True) is not None


def test_an_overlong_video_id_in_the_path_is_a_4xx(stack: SaveStack) -> None:
    status, body = delete("v" * 129)

    assert status == 422 and body["error"]["code"] == "invalid_request"
