"""Expiry, visible and final: every unsaved video says when it goes away; when a save or a check finds the
provider's file gone, the record says so and the video can no longer be saved (409 ``preview_expired``, nothing
queued). The check goes through the same guarded request as a save, for the first byte only, bounded in number,
time and frequency."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest

from devtools.apigw import http_api_event
from devtools.lambda_context import LocalLambdaContext
from functions.library_api.handler import handler
from tests.save_support import SaveStack, call_save, completed_video
from video_library import db, expiry, source
from video_library.models import NewVideo
from video_library.settings import get_settings

KIB = 1024


def call(method: str, path: str, *, body: Any = None, user: str = "alice", params: dict[str, str] | None = None) -> Any:
    event = http_api_event(
        method,
        path,
        route_key=f"{method} /api/video/{{video_id}}" if params else None,
        path_parameters=params,
        body=json.dumps(body) if body is not None else None,
        headers={"content-type": "application/json"},
        claims={"sub": user},
    )
    response = handler(event, LocalLambdaContext())
    return response["statusCode"], json.loads(response["body"])


def view(video_id: str) -> dict[str, Any]:
    status, body = call("GET", f"/api/video/{video_id}", params={"video_id": video_id})
    assert status == 200, body
    result: dict[str, Any] = body
    return result


def check(*video_ids: str, user: str = "alice") -> tuple[int, dict[str, Any]]:
    status, body = call("POST", "/api/video/check-previews", body={"video_ids": list(video_ids)}, user=user)
    return status, body


def stored(video_id: str) -> db.VideoRecord:
    record = db.get_video(video_id, consistent=True)
    assert record is not None
    return record


def outcome(answer: dict[str, Any], video_id: str) -> str:
    [result] = [r for r in answer["results"] if r["video_id"] == video_id]
    return str(result["preview"] or result["error"]["code"])


def test_every_unsaved_video_says_when_it_expires_and_a_saved_one_never(
    stack: SaveStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PROVIDER_RETENTION_DAYS", "5")
    get_settings.cache_clear()
    preview = completed_video(stack.source.url(size=KIB))
    kept = completed_video(stack.source.url(size=KIB))
    stack.save_and_run(kept.video_id)

    shown, saved = view(preview.video_id), view(kept.video_id)

    assert preview.completed_at is not None
    expected = preview.completed_at + timedelta(days=5)  # before the purge's 30 days after creation
    assert shown["preview_expires_at"] == expected.isoformat().replace("+00:00", "Z")
    assert (shown["preview_expired"], shown["preview_expired_at"]) == (False, None)
    assert (saved["preview_expires_at"], saved["preview_expired"]) == (None, False)


@pytest.mark.parametrize("status", [403, 404, 410])
def test_a_save_that_finds_the_file_gone_marks_the_preview_expired_for_good(stack: SaveStack, status: int) -> None:
    # GIVEN a preview whose file the provider no longer has
    video = completed_video(stack.source.url(size=KIB, status=status))

    # WHEN a save tries it
    record = stack.save_and_run(video.video_id)

    # THEN the record says the preview expired, and the view shows nothing left to play or download
    assert record.save_state == "failed" and record.save_error_code == "source_gone"
    assert record.preview_expired_at is not None
    shown = view(video.video_id)
    assert shown["preview_expired"] is True and shown["preview_expired_at"] is not None
    assert (shown["video_url"], shown["video_raw_url"], shown["download_url"]) == (None, None, None)
    # AND asking to save it again is a clear 409 that queues nothing and changes nothing
    answer, body = call_save({"video_id": video.video_id})
    assert answer == 409 and body["error"]["code"] == "preview_expired"
    assert body["error"]["preview_expired_at"] is not None
    assert stack.queued() == 0
    after = db.get_video(video.video_id, consistent=True)
    assert after is not None and after.save_state == "failed" and after.save_attempts == record.save_attempts


def test_a_bulk_save_refuses_an_expired_preview_and_saves_the_rest(stack: SaveStack) -> None:
    expired = completed_video(stack.source.url(size=KIB, status=410))
    stack.save_and_run(expired.video_id)
    fine = completed_video(stack.source.url(size=KIB))

    status, body = call_save({"video_ids": [expired.video_id, fine.video_id]})
    _, everything_ready = call_save({"campaign_id": "42", "all_ready": True})

    assert status == 202  # something was queued
    codes = {r["video_id"]: r["status"] if r["error"] is None else r["error"]["code"] for r in body["results"]}
    assert codes == {expired.video_id: "preview_expired", fine.video_id: 202}
    assert expired.video_id not in {r["video_id"] for r in everything_ready["results"]}


def test_a_transient_failure_never_marks_a_preview_expired(stack: SaveStack) -> None:
    video = completed_video(stack.source.url(size=KIB, status=503))

    record = stack.save_and_run(video.video_id)

    assert record.save_error_code == "gave_up" and record.preview_expired_at is None
    assert view(video.video_id)["preview_expired"] is False


def test_the_check_marks_what_is_gone_and_records_what_is_there(stack: SaveStack) -> None:
    # GIVEN previews in every situation, and one of them deleted at the provider
    there = completed_video(stack.source.url(size=KIB, gone="check-there"))
    gone = completed_video(stack.source.url(size=KIB, gone="check-gone"))
    erroring = completed_video(stack.source.url(size=KIB, status=500))
    saved = completed_video(stack.source.url(size=KIB))
    stack.save_and_run(saved.video_id)
    pending = db.create_video(NewVideo(user_id="alice", campaign_id="42", prompt="still rendering"))
    bobs = completed_video(stack.source.url(size=KIB), user_id="bob")
    stack.source.expire("check-gone")

    # WHEN the page asks about them
    status, answer = check(
        there.video_id, gone.video_id, erroring.video_id, saved.video_id, pending.video_id, bobs.video_id, "nope"
    )

    # THEN each is answered, and only what is known for sure is written
    assert status == 200
    assert {r["video_id"]: outcome(answer, r["video_id"]) for r in answer["results"]} == {
        there.video_id: "available",
        gone.video_id: "expired",
        erroring.video_id: "unknown",
        saved.video_id: "not_a_preview",
        pending.video_id: "not_a_preview",
        bobs.video_id: "video_not_found",
        "nope": "video_not_found",
    }
    assert (answer["expired"], answer["available"], answer["unknown"], answer["refused"]) == (1, 1, 1, 2)
    assert stored(gone.video_id).preview_expired_at is not None
    assert stored(there.video_id).preview_checked_at is not None
    assert stored(there.video_id).preview_expired_at is None
    assert (stored(erroring.video_id).preview_checked_at, stored(erroring.video_id).preview_expired_at) == (None, None)
    assert stored(bobs.video_id).preview_checked_at is None
    # AND the expired one can no longer be saved, the one still there can
    assert call_save({"video_id": gone.video_id})[1]["error"]["code"] == "preview_expired"
    assert call_save({"video_id": there.video_id})[0] == 202


def test_a_check_is_not_repeated_within_its_cooldown(stack: SaveStack) -> None:
    there = completed_video(stack.source.url(size=KIB, gone="cooldown-there"))
    gone = completed_video(stack.source.url(size=KIB, gone="cooldown-gone"))
    stack.source.expire("cooldown-gone")
    check(there.video_id, gone.video_id)
    asked = len(stack.source.paths)

    _, again = check(there.video_id, gone.video_id)

    assert len(stack.source.paths) == asked  # the provider was not asked again
    assert outcome(again, there.video_id) == "available" and outcome(again, gone.video_id) == "expired"


def test_the_check_never_connects_to_an_internal_address(
    stack: SaveStack, monkeypatch: pytest.MonkeyPatch, loopback_only: list[Any]
) -> None:
    monkeypatch.setattr(source, "resolve_host", lambda host, port: ["10.0.0.7"])
    video = completed_video("https://cdn.example.test/video.mp4")

    _, answer = check(video.video_id)

    assert outcome(answer, video.video_id) == "unknown"
    assert loopback_only == []
    assert stored(video.video_id).preview_expired_at is None


def test_a_provider_that_does_not_answer_within_the_probes_time_is_unknown(
    stack: SaveStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a provider that answers after 5 s, and probes allowed 1 s (the answer would otherwise be "available")
    monkeypatch.setattr(expiry, "PROBE_TIME_S", 1.0)
    slow = completed_video(stack.source.url(image="jpg", delay_ms=5000))

    status, answer = check(slow.video_id)

    assert status == 200 and outcome(answer, slow.video_id) == "unknown"
    assert (stored(slow.video_id).preview_expired_at, stored(slow.video_id).preview_checked_at) == (None, None)


@pytest.mark.parametrize(
    "body",
    [{"video_ids": []}, {"video_ids": [f"v{i}" for i in range(51)]}, {"video_ids": [7]}, {"video_id": "x"}],
    ids=["empty", "over-fifty", "not-strings", "wrong-field"],
)
def test_bad_check_bodies_are_422(stack: SaveStack, body: Any) -> None:
    status, answer = call("POST", "/api/video/check-previews", body=body)

    assert status == 422 and answer["error"]["code"] == "invalid_request"
