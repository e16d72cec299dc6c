"""The sweep through its real handler: background work that lost its driver is found in the pending-work index
and finished — lost messages, killed workers, failed saves' leftovers, deletions R2 refused, old uploads."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest

from devtools.eventbridge import scheduled_event
from devtools.lambda_context import LocalLambdaContext
from tests.save_support import BUCKET, MAX_ATTEMPTS, SaveStack, completed_video
from video_library import db, deletion, sweep
from video_library.r2 import video_object_key
from video_library.save_state import STALLED_AFTER

KIB = 1024


def run_sweep() -> dict[str, Any]:
    from functions.sweep.handler import handler

    summary: dict[str, Any] = handler(scheduled_event(db.utcnow()), LocalLambdaContext(timeout_s=300))
    return summary


def long_ago() -> Any:
    return db.utcnow() - STALLED_AFTER - timedelta(minutes=5)


def queued_messages(stack: SaveStack) -> list[str]:
    messages = stack.sqs.receive_message(QueueUrl=stack.queue_url, MaxNumberOfMessages=10, VisibilityTimeout=0)
    return [json.loads(m["Body"])["video_id"] for m in messages.get("Messages", [])]


def test_a_save_whose_message_was_lost_is_sent_again_and_completes(stack: SaveStack) -> None:
    # GIVEN a save queued long ago whose message never reached the queue
    video = completed_video(stack.source.url(size=KIB))
    assert db.queue_save(video.video_id, "alice", long_ago())

    summary = run_sweep()

    assert (summary["saves_requeued"], summary["examined"]) == (1, 1)
    assert queued_messages(stack) == [video.video_id]
    stack.run_worker()
    record = db.get_video(video.video_id, consistent=True)
    assert record is not None and record.save_state == "saved"


def test_a_save_whose_worker_died_is_queued_again(stack: SaveStack) -> None:
    video = completed_video(stack.source.url(size=KIB))
    then = long_ago()
    assert db.queue_save(video.video_id, "alice", then)
    assert db.claim_save(video.video_id, "dead-worker", then + timedelta(minutes=1), then) is not None

    summary = run_sweep()

    assert summary["saves_requeued"] == 1
    record = db.get_video(video.video_id, consistent=True)
    assert record is not None and record.save_state == "queued" and record.save_lease_id is None
    stack.run_worker()
    record = db.get_video(video.video_id, consistent=True)
    assert record is not None and record.save_state == "saved"


def test_a_save_out_of_attempts_is_failed_with_why(stack: SaveStack) -> None:
    video = completed_video(stack.source.url(size=KIB))
    then = long_ago()
    assert db.queue_save(video.video_id, "alice", then)
    for attempt in range(MAX_ATTEMPTS):  # each claimed with a lease that has run out already: killed workers
        assert db.claim_save(video.video_id, f"attempt-{attempt}", then - timedelta(minutes=1), then) is not None

    summary = run_sweep()

    assert summary["saves_failed"] == 1
    record = db.get_video(video.video_id, consistent=True)
    assert record is not None and (record.save_state, record.save_error_code) == ("failed", "gave_up")
    assert queued_messages(stack) == []


def test_a_save_making_progress_or_holding_a_live_lease_is_left_alone(stack: SaveStack) -> None:
    recent = completed_video(stack.source.url(size=KIB, n=1))
    assert db.queue_save(recent.video_id, "alice", db.utcnow() - timedelta(minutes=5))  # waiting for a backoff
    running = completed_video(stack.source.url(size=KIB, n=2))
    then = long_ago()
    assert db.queue_save(running.video_id, "alice", then)
    assert db.claim_save(running.video_id, "live", db.utcnow() + timedelta(minutes=1), then) is not None

    summary = run_sweep()

    assert (summary["saves_requeued"], summary["saves_failed"]) == (0, 0)
    assert queued_messages(stack) == []


def test_what_a_failed_save_left_is_removed_and_the_record_leaves_the_index(stack: SaveStack) -> None:
    # GIVEN a save that failed for good while R2 could not clean up: an object and an unfinished upload at its key
    video = completed_video(stack.source.url(size=KIB))
    key = video_object_key("42", video.video_id)
    then = long_ago()
    assert db.queue_save(video.video_id, "alice", then)
    assert db.claim_save(video.video_id, "attempt", then + timedelta(minutes=1), then) is not None
    assert db.fail_save(video.video_id, "attempt", "source_gone", "gone", then, cleaned_up=False)
    stack.s3.put_object(Bucket=BUCKET, Key=key, Body=b"half a video")
    stack.s3.create_multipart_upload(Bucket=BUCKET, Key=key)

    summary = run_sweep()

    assert summary["leftovers_removed"] == 1
    assert stack.keys() == [] and stack.unfinished_uploads() == []
    record = db.get_video(video.video_id, consistent=True)
    assert record is not None and record.save_state == "failed" and record.pending_shard is None
    assert record.save_lease_id is None


def test_a_deletion_r2_refused_is_finished_by_the_sweep(stack: SaveStack, monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN a saved video whose deletion stopped half-way: marked, its object still there (R2 refused)
    video = completed_video(stack.source.url(size=KIB))
    record = stack.save_and_run(video.video_id)
    key = record.r2_key or ""
    monkeypatch.setattr(
        deletion, "remove_objects", lambda *args: (_ for _ in ()).throw(deletion.StorageUnavailable("no"))
    )
    assert deletion.delete_video(video.video_id, db.utcnow()) is deletion.DeletionOutcome.UNFINISHED
    monkeypatch.undo()
    marked = db.get_video(video.video_id, consistent=True)
    assert marked is not None and marked.deleting_at is not None and stack.keys() == [key]
    table = db.bind()
    table(video.video_id).update(
        actions=[
            table.save_lease_expires_at.set(db.utcnow() - timedelta(seconds=1)),
            table.pending_since.set(long_ago()),
        ]
    )

    summary = run_sweep()

    assert summary["deletions_finished"] == 1
    assert db.get_video(video.video_id, consistent=True) is None
    assert stack.keys() == []


def test_old_unfinished_uploads_are_aborted_unless_a_live_transfer_holds_them(stack: SaveStack) -> None:
    # GIVEN (moto dates every upload 2010: all are "old") an upload nobody holds, and one a live transfer holds
    abandoned_key = "campaigns/42/videos/abandoned.mp4"
    stack.s3.create_multipart_upload(Bucket=BUCKET, Key=abandoned_key)
    video = completed_video(stack.source.url(size=KIB))
    now = db.utcnow()
    assert db.queue_save(video.video_id, "alice", now)
    assert db.claim_save(video.video_id, "live", now + timedelta(minutes=1), now) is not None
    live_key = video_object_key("42", video.video_id)
    stack.s3.create_multipart_upload(Bucket=BUCKET, Key=live_key)

    summary = run_sweep()

    assert summary["multipart_uploads_aborted"] == 1
    assert [u["Key"] for u in stack.unfinished_uploads()] == [live_key]


def test_young_uploads_are_left_alone(stack: SaveStack, monkeypatch: pytest.MonkeyPatch) -> None:
    stack.s3.create_multipart_upload(Bucket=BUCKET, Key="campaigns/42/videos/young.mp4")
    monkeypatch.setattr(sweep, "UPLOAD_GRACE", timedelta(days=365 * 30))  # moto's 2010 counts as young here

    summary = run_sweep()

    assert summary["multipart_uploads_aborted"] == 0 and len(stack.unfinished_uploads()) == 1


def test_the_sweep_reads_only_pending_work(stack: SaveStack) -> None:
    # GIVEN many records with nothing pending (previews, saved videos) and one stalled save
    for n in range(20):
        completed_video(stack.source.url(size=KIB, n=n))
    saved = completed_video(stack.source.url(size=KIB, n="saved"))
    stack.save_and_run(saved.video_id)
    stalled = completed_video(stack.source.url(size=KIB, n="stalled"))
    assert db.queue_save(stalled.video_id, "alice", long_ago())

    summary = run_sweep()

    assert summary["examined"] == 1 and summary["complete"] is True
