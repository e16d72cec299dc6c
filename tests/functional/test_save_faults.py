"""What R2 and DynamoDB do under load, injected on the wire (a proxy in front of moto), through the real save
worker: throttling, errors, resets, answers lost after the request landed, calls that never answer. Each test
checks that the video ends saved byte for byte (or that the invocation ended in time and the next attempt saves
it) and that nothing is left over: no stray object, no unfinished multipart upload, no message."""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest

from devtools import faulty_proxy as fp
from devtools.faulty_proxy import FaultyProxy
from devtools.lambda_context import LocalLambdaContext
from devtools.queue_poller import QueuePoller
from devtools.video_source import synthetic_sha256
from tests.save_support import MIB, PART, SaveStack, call_save, completed_video
from video_library import db, lease, transfer, usage
from video_library.r2 import video_object_key
from video_library.settings import get_settings


@pytest.fixture
def r2_faults(stack: SaveStack, faults: FaultyProxy, monkeypatch: pytest.MonkeyPatch) -> FaultyProxy:
    """R2 reached through the proxy (DynamoDB and SQS directly)."""
    monkeypatch.setenv("R2_ENDPOINT_URL", faults.url)
    get_settings.cache_clear()
    return faults


@pytest.fixture
def dynamodb_faults(stack: SaveStack, faults: FaultyProxy, monkeypatch: pytest.MonkeyPatch) -> Iterator[FaultyProxy]:
    """DynamoDB reached through the proxy (R2 and SQS directly)."""
    monkeypatch.setenv("DYNAMODB_ENDPOINT_URL", faults.url)
    get_settings.cache_clear()
    yield faults
    db.bind()  # back to the stack's endpoint for whoever comes next


def saved_whole(stack: SaveStack, video_id: str, size: int, attempts: int = 1) -> None:
    record = db.get_video(video_id, consistent=True)
    assert record is not None
    assert (record.save_state, record.save_attempts) == ("saved", attempts), record.save_error
    key = video_object_key("42", video_id)
    assert hashlib.sha256(stack.object_bytes(key)).hexdigest() == synthetic_sha256(size) == record.sha256
    assert stack.keys() == [key]
    assert stack.unfinished_uploads() == []
    assert stack.queued() == 0 and stack.queued(stack.dead_letter_url) == 0


SMALL = MIB  # one PutObject
LARGE = 2 * PART + 5  # a multipart upload of three parts

WIRE_FAULTS: dict[str, tuple[Callable[[], fp.Match], Callable[[], fp.Action], int]] = {
    "put-slow-down": (fp.s3_put_object, fp.s3_slow_down, SMALL),
    "put-429": (fp.s3_put_object, fp.too_many_requests, SMALL),
    "put-500": (fp.s3_put_object, fp.s3_internal_error, SMALL),
    "put-reset": (fp.s3_put_object, fp.reset, SMALL),
    "put-reset-half-way": (fp.s3_put_object, lambda: fp.reset(after_bytes=SMALL // 2), SMALL),
    "part-slow-down": (fp.s3_upload_part, fp.s3_slow_down, LARGE),
    "part-429": (fp.s3_upload_part, fp.too_many_requests, LARGE),
    "part-reset-half-way": (fp.s3_upload_part, lambda: fp.reset(after_bytes=PART // 2), LARGE),
    "create-500": (fp.s3_create_multipart_upload, fp.s3_internal_error, LARGE),
    "complete-slow-down": (fp.s3_complete_multipart_upload, fp.s3_slow_down, LARGE),
}


@pytest.mark.parametrize(("match", "action", "size"), WIRE_FAULTS.values(), ids=WIRE_FAULTS.keys())
def test_a_transient_r2_failure_is_retried_within_the_attempt(
    stack: SaveStack, r2_faults: FaultyProxy, match: Callable[[], fp.Match], action: Callable[[], Any], size: int
) -> None:
    # GIVEN R2 failing one request once
    video = completed_video(stack.source.url(size=size))
    rule = r2_faults.add_rule(match(), action())

    # WHEN the video is saved
    stack.save_and_run(video.video_id)

    # THEN the request was sent again and the save finished in its first attempt, whole, with nothing left over
    assert rule.fired == 1
    assert len(r2_faults.requests(match())) >= 2
    saved_whole(stack, video.video_id, size)


LOST_ANSWERS: dict[str, tuple[Callable[[], fp.Match], int]] = {
    "put-object": (fp.s3_put_object, SMALL),
    "upload-part": (fp.s3_upload_part, LARGE),
    "create-multipart-upload": (fp.s3_create_multipart_upload, LARGE),
    "complete-multipart-upload": (fp.s3_complete_multipart_upload, LARGE),
}


@pytest.mark.parametrize(("match", "size"), LOST_ANSWERS.values(), ids=LOST_ANSWERS.keys())
def test_an_r2_answer_lost_after_the_request_landed_leaves_nothing_over(
    stack: SaveStack, r2_faults: FaultyProxy, match: Callable[[], fp.Match], size: int
) -> None:
    # GIVEN R2 doing what it is asked once, but the answer never reaching us
    video = completed_video(stack.source.url(size=size))
    rule = r2_faults.add_rule(match(), fp.lose_answer())

    stack.save_and_run(video.video_id)

    # THEN saved in the first attempt; a create whose answer was lost leaves no upload behind either
    assert rule.fired == 1
    saved_whole(stack, video.video_id, size)


def test_the_record_updates_answer_lost_after_it_landed_is_still_a_save(
    stack: SaveStack, dynamodb_faults: FaultyProxy
) -> None:
    # GIVEN the save queued, then DynamoDB applying the transaction that records the save (the record and its usage
    # counters) but losing its answer
    video = completed_video(stack.source.url(size=SMALL))
    assert call_save({"video_id": video.video_id})[0] == 202
    rule = dynamodb_faults.add_rule(fp.dynamodb("TransactWriteItems"), fp.lose_answer())

    stack.run_worker()

    # THEN botocore's retry was answered as done (the same client token) or found the lease gone (the first write
    # took it away) and the worker read back its own save: saved in one attempt, the object kept, counted once
    assert rule.fired == 1
    saved_whole(stack, video.video_id, SMALL)
    assert (usage.counts("alice").saved_videos, usage.counts("alice").saved_bytes) == (1, SMALL)


def test_dynamodb_throttling_the_claim_and_the_record_is_retried(
    stack: SaveStack, dynamodb_faults: FaultyProxy
) -> None:
    video = completed_video(stack.source.url(size=SMALL))
    assert call_save({"video_id": video.video_id})[0] == 202
    dynamodb_faults.add_rule(fp.dynamodb("UpdateItem"), fp.dynamodb_throughput_exceeded(), times=2)
    dynamodb_faults.add_rule(fp.dynamodb("TransactWriteItems"), fp.dynamodb_throughput_exceeded(), times=2)

    stack.run_worker()

    saved_whole(stack, video.video_id, SMALL)


def invoke_worker(stack: SaveStack, timeout_s: float) -> LocalLambdaContext:
    """One invocation of the worker on the queue's message with ``timeout_s``; its context afterwards."""
    from functions.save_worker.handler import handler

    context = LocalLambdaContext(timeout_s=timeout_s)

    def invoke(event: dict[str, Any]) -> Any:
        return handler(event, context)

    [message] = stack.sqs.receive_message(QueueUrl=stack.queue_url, MessageSystemAttributeNames=["All"])["Messages"]
    QueuePoller(stack.sqs, stack.queue_url, [invoke]).deliver(invoke, [message])
    return context


def test_a_claim_dynamodb_never_answers_ends_the_invocation_in_time_and_the_next_attempt_saves(
    stack: SaveStack, dynamodb_faults: FaultyProxy, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN DynamoDB not answering the worker's claim at all, and an invocation of 20 s
    monkeypatch.setattr(transfer, "DYNAMODB_WAIT_S", 3.0)
    video = completed_video(stack.source.url(size=SMALL))
    assert call_save({"video_id": video.video_id})[0] == 202
    dynamodb_faults.add_rule(fp.dynamodb("UpdateItem"), fp.stall(), times=None)

    context = invoke_worker(stack, timeout_s=20)

    # THEN the invocation gave up on the claim and ended with time to spare; the message is kept for a retry
    assert context.get_remaining_time_in_millis() > 10_000
    assert stack.queued() == 1
    # WHEN DynamoDB is back THEN the next attempt saves it (the stalled claim was dropped, never applied)
    dynamodb_faults.clear()
    stack.run_worker()
    saved_whole(stack, video.video_id, SMALL)


def test_dynamodb_going_silent_mid_transfer_stops_it_before_its_lease_ends_and_the_next_attempt_saves(
    stack: SaveStack, dynamodb_faults: FaultyProxy, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN leases of 6 s renewed every 0.5 s, a transfer of ~8 s, and DynamoDB going silent a second into it
    monkeypatch.setattr(lease, "LEASE_TTL", timedelta(seconds=6))
    monkeypatch.setattr(transfer, "LEASE_TTL", timedelta(seconds=6))
    monkeypatch.setattr(lease, "RENEW_EVERY_S", 0.5)
    monkeypatch.setattr(lease, "CLOCK_SAFETY_S", 1.0)
    monkeypatch.setattr(transfer, "DYNAMODB_WAIT_S", 2.0)
    size = 8 * MIB
    video = completed_video(stack.source.url(size=size, delay_ms=1000, once="silent-dynamodb"))
    assert call_save({"video_id": video.video_id})[0] == 202
    silence = threading.Timer(1.0, lambda: dynamodb_faults.add_rule(fp.dynamodb("UpdateItem"), fp.stall(), times=None))
    silence.start()

    context = invoke_worker(stack, timeout_s=60)
    silence.join()

    # THEN the transfer stopped on its own, within the lease it had confirmed: nothing stored, upload aborted
    assert context.get_remaining_time_in_millis() > 40_000
    assert stack.keys() == [] and stack.unfinished_uploads() == []
    record = db.get_video(video.video_id, consistent=True)
    assert record is not None and record.save_state == "saving"  # its last word could not be written either
    # WHEN DynamoDB answers again THEN, once the lease has run out (or the late "retry later" has landed) and the
    # message comes back (its retry delay is at least the lease's length), the next attempt saves it
    dynamodb_faults.clear()
    give_up_at = time.monotonic() + 30
    while time.monotonic() < give_up_at and not stack.run_worker():
        time.sleep(0.5)
    saved_whole(stack, video.video_id, size, attempts=2)


def test_an_upload_r2_never_answers_ends_the_invocation_before_its_deadline(
    stack: SaveStack, r2_faults: FaultyProxy, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN an invocation of 12 s keeping 3 s for finishing, and R2 swallowing the second part without a word
    monkeypatch.setattr(transfer, "FINISH_MARGIN_S", 3.0)
    monkeypatch.setattr(transfer, "MIN_START_S", 4.0)
    video = completed_video(stack.source.url(size=LARGE))
    assert call_save({"video_id": video.video_id})[0] == 202
    r2_faults.add_rule(fp.s3_upload_part(part_number=2), fp.stall(), times=None)

    context = invoke_worker(stack, timeout_s=12)

    # THEN the attempt gave up before the invocation's end, aborted the upload, and asked for another attempt
    assert context.get_remaining_time_in_millis() > 0
    record = db.get_video(video.video_id, consistent=True)
    assert record is not None and record.save_state == "queued" and record.save_error_code == "timed_out"
    assert stack.keys() == [] and stack.unfinished_uploads() == []
    # WHEN R2 answers again THEN the next attempt saves it
    r2_faults.clear()
    stack.run_worker()
    saved_whole(stack, video.video_id, LARGE, attempts=2)
