"""The save worker through its real handler, fed by the save queue as Lambda's event source mapping feeds it,
against moto over HTTP and a local video source that misbehaves on request. Each test checks the bucket, the
unfinished multipart uploads, the queue and the record afterwards."""

from __future__ import annotations

import hashlib
import json
import threading
import time
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs

import pytest

from devtools.lambda_context import LocalLambdaContext
from devtools.video_source import SAMPLE_MP4, synthetic_sha256
from tests.conftest import log_records
from tests.save_support import BUCKET, MAX_ATTEMPTS, MIB, PART, SaveStack, call_save, completed_video
from video_library import db, lease, source, transfer
from video_library.r2 import video_object_key
from video_library.settings import get_settings

KIB = 1024
UNKNOWN_LENGTH = {"declare": "none"}


def part_sizes(stack: SaveStack) -> list[int]:
    """The size of each uploaded part, in part-number order (parts upload concurrently)."""
    parts = stack.aws.requests_matching("PUT", query_has="partNumber=")
    numbered = {int(parse_qs(r.query)["partNumber"][0]): int(r.headers["content-length"]) for r in parts}
    assert len(numbered) == len(parts), "a part was uploaded twice"
    return [numbered[number] for number in sorted(numbered)]


def single_puts(stack: SaveStack) -> int:
    return len([r for r in stack.aws.requests_matching("PUT", path_has="/videos/") if "partNumber" not in r.query])


def nothing_left_over(stack: SaveStack, *keys: str) -> None:
    assert stack.keys() == sorted(keys)
    assert stack.unfinished_uploads() == []
    assert stack.queued() == 0
    assert stack.queued(stack.dead_letter_url) == 0


@pytest.mark.parametrize(
    ("size", "expected_parts"),
    [(KIB, 0), (PART - 1, 0), (PART, 2), (PART + 1, 2), (3 * PART + 7, 4)],
    ids=["1KiB", "just-under-a-part", "exactly-a-part", "a-part-plus-one", "three-parts-and-a-bit"],
)
@pytest.mark.parametrize("length", ["known", "unknown"])
def test_saved_bytes_equal_the_source_in_equal_parts(
    stack: SaveStack, size: int, expected_parts: int, length: str
) -> None:
    # GIVEN a completed video at the provider
    announce = UNKNOWN_LENGTH if length == "unknown" else {}
    video = completed_video(stack.source.url(size=size, **announce))

    # WHEN its owner saves it and the worker takes the message
    record = stack.save_and_run(video.video_id)

    # THEN the bucket holds exactly the source's bytes at the deterministic key
    key = video_object_key("42", video.video_id)
    assert record.save_state == "saved" and record.saved_to_r2 is True
    assert record.r2_key == key and record.size_bytes == size
    assert hashlib.sha256(stack.object_bytes(key)).hexdigest() == synthetic_sha256(size) == record.sha256
    # AND every part but the last has the same size (R2 refuses anything else); exactly a part ends on a boundary
    sizes = part_sizes(stack)
    if expected_parts == 2 and size == PART:
        assert sizes == [PART]
    elif expected_parts:
        assert len(sizes) == expected_parts
        assert set(sizes[:-1]) == {PART} and 0 < sizes[-1] <= PART and sum(sizes) == size
    else:
        assert sizes == [] and single_puts(stack) == 1
    # AND the object says what it is and which transfer wrote it
    head = stack.s3.head_object(Bucket=BUCKET, Key=key)
    assert head["ContentType"] == "video/mp4"
    assert head["Metadata"]["video-id"] == video.video_id and head["Metadata"]["transfer-id"]
    nothing_left_over(stack, key)


def test_the_record_points_at_r2_with_the_videos_facts_and_leaves_every_index(stack: SaveStack) -> None:
    provider = stack.source.url(size=3 * KIB)
    raw = stack.source.url(sample=1)
    video = completed_video(provider, raw_url=raw)

    record = stack.save_and_run(video.video_id)

    key = video_object_key("42", video.video_id)
    sample = SAMPLE_MP4.read_bytes()
    assert record.size_bytes == len(sample)  # the unwatermarked (raw) file is the one kept
    assert record.sha256 == hashlib.sha256(sample).hexdigest()
    # the facts come from the file's own header as it passed: 3 s, 320x180 (ffprobe says the same)
    assert (record.duration_s, record.width, record.height) == (3.0, 320, 180)
    # no public domain configured: the record stores the object's permanent address, nothing that expires
    assert record.video_url == record.video_raw_url == f"{stack.aws.url}/{BUCKET}/{key}"
    assert (record.provider_video_url, record.provider_video_raw_url) == (provider, raw)
    assert (record.purge_shard, record.pending_shard) == (None, None)
    assert (record.save_lease_id, record.save_lease_expires_at, record.save_error) == (None, None, None)
    assert record.save_attempts == 1 and record.bytes_copied == len(sample)


def test_progress_is_on_the_record_while_the_transfer_runs(stack: SaveStack, monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN a slow source (about 1 s per MiB) and progress reported every 0.2 s
    monkeypatch.setattr(lease, "RENEW_EVERY_S", 0.2)
    size = 4 * MIB
    video = completed_video(stack.source.url(size=size, delay_ms=800))
    assert call_save({"video_id": video.video_id})[0] == 202
    seen: list[tuple[str | None, int | None, int | None]] = []
    done = threading.Event()

    def watch() -> None:
        while not done.is_set():
            record = db.get_video(video.video_id, consistent=True)
            assert record is not None
            seen.append((record.save_state, record.bytes_copied, record.size_bytes))
            done.wait(0.1)

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        stack.run_worker()
    finally:
        done.set()
        watcher.join()

    # THEN the record said "saving" with growing bytes of the announced size, then saved
    during = [(copied, total) for state, copied, total in seen if state == "saving" and copied]
    assert len({copied for copied, _ in during}) >= 2, seen
    assert all(total == size for _, total in during)
    assert [copied for copied, _ in during] == sorted(copied for copied, _ in during)
    final = db.get_video(video.video_id, consistent=True)
    assert final is not None and final.save_state == "saved"


@pytest.mark.parametrize("status", [403, 404, 410])
def test_a_file_gone_at_the_provider_fails_at_once_without_retry(stack: SaveStack, status: int) -> None:
    video = completed_video(stack.source.url(size=KIB, status=status))

    record = stack.save_and_run(video.video_id)

    assert record.save_state == "failed" and record.save_attempts == 1
    assert record.save_error_code == "source_gone"
    assert str(status) in (record.save_error or "")
    assert record.save_lease_id is None and record.pending_shard is None
    nothing_left_over(stack)  # the message was not kept for another attempt


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({"type": "text/html"}, "source_not_video"),
        ({"type": "none"}, "source_not_video"),
        ({"type": "application/octet-stream", "magic": 0}, "source_not_video"),
        ({"status": 401}, "source_refused"),
    ],
    ids=["html", "no-type", "octet-stream-without-video-header", "refused"],
)
def test_a_source_that_can_never_be_saved_fails_at_once(stack: SaveStack, params: dict[str, Any], code: str) -> None:
    video = completed_video(stack.source.url(size=KIB, **params))

    record = stack.save_and_run(video.video_id)

    assert (record.save_state, record.save_error_code, record.save_attempts) == ("failed", code, 1)
    nothing_left_over(stack)


@pytest.mark.parametrize(
    "params",
    [{"size": 3 * MIB}, {"size": 3 * MIB, "declare": "none"}, {"size": 6 * MIB, "declare": 5 * MIB}],
    ids=["announced", "no-length-counted-while-streaming", "announced-too-much"],
)
def test_a_source_over_the_cap_fails_at_once(stack: SaveStack, monkeypatch: pytest.MonkeyPatch, params: Any) -> None:
    monkeypatch.setenv("MAX_VIDEO_BYTES", str(2 * MIB))
    get_settings.cache_clear()
    video = completed_video(stack.source.url(**params))

    record = stack.save_and_run(video.video_id)

    assert (record.save_state, record.save_error_code) == ("failed", "source_too_large")
    nothing_left_over(stack)


def test_an_address_refused_where_the_worker_connects_fails_at_once(
    stack: SaveStack, monkeypatch: pytest.MonkeyPatch, loopback_only: list[Any]
) -> None:
    # GIVEN an allowed host that resolves to a private address (DNS rebinding, or a hostile record)
    monkeypatch.setattr(source, "resolve_host", lambda host, port: ["10.0.0.7"])
    video = completed_video("https://cdn.example.test/video.mp4")

    record = stack.save_and_run(video.video_id)

    assert (record.save_state, record.save_error_code) == ("failed", "source_not_allowed")
    assert loopback_only == []  # nothing was even attempted beyond loopback
    nothing_left_over(stack)


@pytest.mark.parametrize("length", ["known", "unknown"])
def test_a_source_cut_off_half_way_is_retried_and_the_save_completes(stack: SaveStack, length: str) -> None:
    # GIVEN a source that drops the connection after 20 MiB the first time
    size = 30 * MIB
    announce = UNKNOWN_LENGTH if length == "unknown" else {}
    video = completed_video(stack.source.url(size=size, drop_at=20 * MIB, once=f"half-way-{length}", **announce))
    assert call_save({"video_id": video.video_id})[0] == 202

    # WHEN the first attempt runs
    stack.run_worker()

    # THEN it failed as a transient problem: queued again with why, the multipart upload aborted, nothing stored
    record = db.get_video(video.video_id, consistent=True)
    assert record is not None
    assert (record.save_state, record.save_error_code, record.save_attempts) == ("queued", "source_unavailable", 1)
    assert len(part_sizes(stack)) >= 1  # parts had been uploaded before the failure
    assert stack.keys() == [] and stack.unfinished_uploads() == []
    assert stack.queued() == 1  # the message comes back (here at once; on AWS after its backoff)

    # WHEN the next attempt runs THEN it completes, and the error is gone
    stack.run_worker()
    record = db.get_video(video.video_id, consistent=True)
    assert record is not None and record.save_state == "saved" and record.save_error is None
    assert record.save_attempts == 2
    assert hashlib.sha256(stack.object_bytes(record.r2_key or "")).hexdigest() == synthetic_sha256(size)
    nothing_left_over(stack, video_object_key("42", video.video_id))


def test_failing_on_every_attempt_ends_failed_with_why_and_the_message_in_the_dead_letter_queue(
    stack: SaveStack,
) -> None:
    video = completed_video(stack.source.url(size=KIB, status=503))
    assert call_save({"video_id": video.video_id})[0] == 202

    answers = []
    for _ in range(MAX_ATTEMPTS + 1):
        answers += stack.run_worker()

    record = db.get_video(video.video_id, consistent=True)
    assert record is not None
    assert (record.save_state, record.save_error_code, record.save_attempts) == ("failed", "gave_up", MAX_ATTEMPTS)
    assert "5 attempts" in (record.save_error or "") and "503" in (record.save_error or "")
    assert len(answers) == MAX_ATTEMPTS
    assert stack.queued() == 0
    assert stack.queued(stack.dead_letter_url) == 1
    assert stack.keys() == [] and stack.unfinished_uploads() == []


def test_a_source_slower_than_the_invocation_stops_before_its_deadline_and_the_next_attempt_finishes(
    stack: SaveStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN an invocation of 8 s that keeps 2 s for finishing, and a source needing ~12 s (0.4 s a MiB, 30 MiB)
    monkeypatch.setattr(transfer, "FINISH_MARGIN_S", 2.0)
    monkeypatch.setattr(transfer, "MIN_START_S", 3.0)
    size = 30 * MIB
    video = completed_video(stack.source.url(size=size, delay_ms=400, declare="none", once="slow-once"))
    assert call_save({"video_id": video.video_id})[0] == 202
    contexts: list[LocalLambdaContext] = []
    from functions.save_worker.handler import handler

    def invoke(event: dict[str, Any]) -> Any:
        context = LocalLambdaContext(timeout_s=8)
        contexts.append(context)
        return handler(event, context)

    message = stack.sqs.receive_message(QueueUrl=stack.queue_url, MessageSystemAttributeNames=["All"])["Messages"]
    from devtools.queue_poller import QueuePoller

    QueuePoller(stack.sqs, stack.queue_url, [invoke]).deliver(invoke, message)

    # THEN the invocation ended on its own, with time left, having given the lease back and aborted the upload
    assert contexts[0].get_remaining_time_in_millis() > 0
    record = db.get_video(video.video_id, consistent=True)
    assert record is not None and record.save_state == "queued" and record.save_error_code == "timed_out"
    assert record.save_lease_id is None
    assert stack.keys() == [] and stack.unfinished_uploads() == []

    # WHEN the message comes back (the source is fast now) THEN the save completes
    stack.run_worker()
    record = db.get_video(video.video_id, consistent=True)
    assert record is not None and record.save_state == "saved"
    nothing_left_over(stack, video_object_key("42", video.video_id))


def test_a_duplicate_message_for_a_save_another_worker_runs_does_nothing(stack: SaveStack) -> None:
    video = completed_video(stack.source.url(size=KIB))
    assert call_save({"video_id": video.video_id})[0] == 202
    now = db.utcnow()
    assert db.claim_save(video.video_id, "the-other-worker", now + timedelta(minutes=1), now) is not None
    served_before = len(stack.source.paths)

    stack.run_worker()

    record = db.get_video(video.video_id, consistent=True)
    assert record is not None and record.save_lease_id == "the-other-worker" and record.save_state == "saving"
    assert len(stack.source.paths) == served_before
    assert stack.queued() == 0 and stack.keys() == []


def test_a_message_for_a_saved_or_deleted_video_is_let_go(stack: SaveStack) -> None:
    video = completed_video(stack.source.url(size=KIB))
    stack.save_and_run(video.video_id)
    from video_library import save_queue
    from video_library.save_queue import SaveMessage

    assert save_queue.send([SaveMessage(video_id=video.video_id), SaveMessage(video_id="no-such-video")]) == []
    answers = stack.run_worker()

    assert [answer["batchItemFailures"] for answer in answers] == [[], []]
    assert stack.queued() == 0


def test_a_malformed_message_goes_to_the_dead_letter_queue(stack: SaveStack) -> None:
    stack.sqs.send_message(QueueUrl=stack.queue_url, MessageBody="{not json")

    for _ in range(MAX_ATTEMPTS + 1):
        stack.run_worker()

    assert stack.queued() == 0
    assert stack.queued(stack.dead_letter_url) == 1


def test_a_transfer_longer_than_its_first_lease_is_never_purged_under_it(
    stack: SaveStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN leases of 4 s renewed every 0.3 s, a preview old enough to purge, and a transfer of ~6 s. (Not 3 s: less
    # the 1 s of clock safety that leaves under the 2 s an R2 request needs to be started, so the upload never would.)
    monkeypatch.setattr(lease, "LEASE_TTL", timedelta(seconds=4))
    monkeypatch.setattr(transfer, "LEASE_TTL", timedelta(seconds=4))
    monkeypatch.setattr(lease, "RENEW_EVERY_S", 0.3)
    monkeypatch.setattr(lease, "CLOCK_SAFETY_S", 1.0)
    size = 6 * MIB
    video = completed_video(stack.source.url(size=size, delay_ms=1000))
    assert call_save({"video_id": video.video_id})[0] == 202
    from devtools.eventbridge import scheduled_event
    from functions.purge.handler import handler as purge
    from tests.conftest import EVENTS  # noqa: F401 (the purge's sample events live there)

    purges: list[dict[str, Any]] = []
    done = threading.Event()

    def purge_again_and_again() -> None:
        while not done.is_set():
            far_future = db.utcnow() + timedelta(days=400)
            purges.append(purge(scheduled_event(far_future), LocalLambdaContext(timeout_s=60)))
            done.wait(0.5)

    purger = threading.Thread(target=purge_again_and_again)
    worker = threading.Thread(target=stack.run_worker)
    worker.start()
    time.sleep(0.5)  # the transfer has started: now the purge runs, again and again, while it goes on
    purger.start()
    worker.join()
    done.set()
    purger.join()

    # THEN the purge kept the record every time, and the save completed
    assert purges and all(run["deleted"] == 0 for run in purges)
    record = db.get_video(video.video_id, consistent=True)
    assert record is not None and record.save_state == "saved"
    assert hashlib.sha256(stack.object_bytes(record.r2_key or "")).hexdigest() == synthetic_sha256(size)


def test_a_crash_between_upload_and_record_is_repaired_by_the_next_attempt(
    stack: SaveStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a worker that dies right after its upload, before the record is written (nothing after runs)
    class Killed(BaseException):
        pass

    def die(*args: Any, **kwargs: Any) -> None:
        raise Killed

    size = PART + 5
    video = completed_video(stack.source.url(size=size))
    assert call_save({"video_id": video.video_id})[0] == 202
    real_record_saved = db.record_saved
    monkeypatch.setattr(db, "record_saved", die)
    [message] = stack.sqs.receive_message(QueueUrl=stack.queue_url, MessageSystemAttributeNames=["All"])["Messages"]
    with pytest.raises(Killed):
        deliver(stack, message)
    key = video_object_key("42", video.video_id)
    assert stack.keys() == [key]  # an object no record points at yet, at the key the record names
    record = db.get_video(video.video_id, consistent=True)
    assert record is not None and record.save_state == "saving" and not record.saved_to_r2

    # WHEN its lease has run out and the message comes back
    monkeypatch.setattr(db, "record_saved", real_record_saved)
    expire_lease(video.video_id)
    stack.sqs.change_message_visibility(
        QueueUrl=stack.queue_url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0
    )
    stack.run_worker()

    # THEN the retry overwrote the same key and recorded it: saved, nothing else in the bucket
    record = db.get_video(video.video_id, consistent=True)
    assert record is not None and record.save_state == "saved" and record.save_attempts == 2
    nothing_left_over(stack, key)


def test_metrics_and_log_line(stack: SaveStack, capsys: pytest.CaptureFixture[str], logs: Any) -> None:
    video = completed_video(stack.source.url(size=PART + 1))
    failing = completed_video(stack.source.url(size=KIB, status=404))

    stack.save_and_run(video.video_id)
    stack.save_and_run(failing.video_id)

    emitted = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
    names = {m["Name"]: blob for blob in emitted for m in blob["_aws"]["CloudWatchMetrics"][0]["Metrics"]}
    assert names["VideosSaved"]["VideosSaved"] in (1, [1.0], 1.0)
    assert names["BytesSaved"]["BytesSaved"] in (PART + 1, [float(PART + 1)], float(PART + 1))
    assert names["SaveFailures"]["reason"] == "source_gone"
    saved_line = next(r for r in log_records(logs) if r.get("message") == "video saved")
    assert saved_line["size_bytes"] == PART + 1 and saved_line["parts"] == 2
    assert saved_line["duration_s"] > 0 and saved_line["throughput_mib_s"] > 0


def expire_lease(video_id: str) -> None:
    """Time passes: the lease a killed worker held runs out."""
    table = db.bind()
    table(video_id).update(actions=[table.save_lease_expires_at.set(db.utcnow() - timedelta(seconds=1))])


def deliver(stack: SaveStack, message: dict[str, Any], timeout_s: float = 900) -> Any:
    """One invocation of the real worker handler with ``message``, as the event source mapping makes it."""
    from devtools.queue_poller import QueuePoller
    from functions.save_worker.handler import handler

    def invoke(event: dict[str, Any]) -> Any:
        return handler(event, LocalLambdaContext(timeout_s=timeout_s))

    QueuePoller(stack.sqs, stack.queue_url, [invoke]).deliver(invoke, [message])


def test_a_worker_killed_mid_multipart_leaves_nothing_once_the_save_is_retried(stack: SaveStack) -> None:
    # GIVEN the worker as Lambda runs it (its own process) and a source slow enough (~0.15 s a MiB, 40 MiB) to be
    # in the middle of a multipart upload when the process dies (SIGKILL: out of memory, a runtime crash)
    from devtools.lambda_process import FunctionError, FunctionInstance
    from devtools.sqs_events import sqs_event

    instance = FunctionInstance(
        "functions/save_worker/handler.handler", function_name="save-worker-test", timeout_s=120, memory_mb=256
    )
    video = completed_video(stack.source.url(size=40 * MIB, delay_ms=150, declare="none", once="killed"))
    assert call_save({"video_id": video.video_id})[0] == 202
    [message] = stack.sqs.receive_message(QueueUrl=stack.queue_url, MessageSystemAttributeNames=["All"])["Messages"]
    failures: list[BaseException] = []

    def invoke() -> None:
        try:
            instance.invoke(sqs_event([message], "arn:aws:sqs:us-east-1:123456789012:saves-test"))
        except FunctionError as exc:
            failures.append(exc)

    invocation = threading.Thread(target=invoke)
    invocation.start()
    try:
        deadline = time.monotonic() + 60
        while not stack.aws.requests_matching("PUT", query_has="partNumber=") and time.monotonic() < deadline:
            time.sleep(0.05)
        instance.kill()  # WHEN the process dies with a part uploaded and more to come
        invocation.join()
    finally:
        instance.close()

    # THEN the kill left a multipart upload unfinished and the record mid-save
    assert [str(f) for f in failures] == ["the instance exited (out of memory?)"]
    assert len(stack.unfinished_uploads()) == 1
    record = db.get_video(video.video_id, consistent=True)
    assert record is not None and record.save_state == "saving" and record.save_lease_id is not None

    # WHEN its lease runs out and the message comes back
    expire_lease(video.video_id)
    stack.sqs.change_message_visibility(
        QueueUrl=stack.queue_url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0
    )
    stack.run_worker()

    # THEN the retry aborted what the killed attempt left, and the save is complete and whole
    record = db.get_video(video.video_id, consistent=True)
    assert record is not None and record.save_state == "saved" and record.save_attempts == 2
    assert hashlib.sha256(stack.object_bytes(record.r2_key or "")).hexdigest() == synthetic_sha256(40 * MIB)
    nothing_left_over(stack, video_object_key("42", video.video_id))
