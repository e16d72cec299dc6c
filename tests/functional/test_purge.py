"""The scheduled purge through the real handler, with EventBridge events from events/, against moto.

"Now" is the event's time (2026-11-25T03:15:00Z in events/purge.json), so the cutoff is 2026-10-26T03:15:00Z
with the default 30 days of retention, whatever the day the tests run.
"""

from __future__ import annotations

import io
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from pynamodb.exceptions import DeleteError

from devtools.eventbridge import scheduled_event
from devtools.lambda_context import LocalLambdaContext
from functions.purge.handler import handler
from tests.conftest import emitted_metrics, load_event, log_records, make_video
from video_library import db, purge
from video_library.models import TaskProgress
from video_library.purge import InvalidPurgeEvent, PurgeLimits
from video_library.r2 import video_object_key
from video_library.settings import get_settings
from video_library.status import VideoStatus

pytestmark = pytest.mark.usefixtures("aws")

EVENT_TIME = datetime(2026, 11, 25, 3, 15, tzinfo=UTC)
CUTOFF = EVENT_TIME - timedelta(days=30)
EXPIRED = CUTOFF - timedelta(days=1)
YOUNG = CUTOFF + timedelta(days=10)

R2_ENDPOINT = "https://0123456789abcdef0123456789abcdef.r2.cloudflarestorage.com"
BUCKET = "video-library-test"


# --- how the tests drive and observe the purge ---------------------------------------------------------


class CountdownContext(LocalLambdaContext):
    """A Lambda context whose remaining time drops by a fixed step at every call: deterministic, unlike
    the wall clock, and safe to call from the purge's threads."""

    def __init__(self, start_ms: int, step_ms: int) -> None:
        super().__init__()
        self._next_ms = start_ms
        self._step_ms = step_ms
        self._lock = threading.Lock()

    def get_remaining_time_in_millis(self) -> int:
        with self._lock:
            remaining = self._next_ms
            self._next_ms = max(0, self._next_ms - self._step_ms)
            return remaining


def run_purge(event: dict[str, Any] | None = None, context: LocalLambdaContext | None = None) -> dict[str, Any]:
    summary: dict[str, Any] = handler(event or load_event("purge"), context or LocalLambdaContext())
    return summary


def with_detail(**detail: Any) -> dict[str, Any]:
    return {**load_event("purge"), "detail": detail}


def exists(video_id: str) -> bool:
    return db.get_video(video_id, consistent=True) is not None


def surviving(videos: list[db.VideoRecord]) -> set[str]:
    return {video.video_id for video in videos if exists(video.video_id)}


def mark_saved(video_id: str) -> None:
    """What a successful save writes, as one conditional update: saved, and out of the purge index."""
    table = db.VideoRecord
    table(video_id).update(
        actions=[
            table.saved_to_r2.set(True),
            table.r2_key.set(video_object_key("42", video_id)),
            table.saved_at.set(db.utcnow()),
            table.purge_shard.remove(),
            table.save_lease_id.remove(),
            table.save_lease_expires_at.remove(),
        ],
        condition=table.video_id.exists() & (table.saved_to_r2 == False),  # noqa: E712
    )


def hold_save_lease(video_id: str, expires_at: datetime) -> None:
    """What a save in progress holds: a lease until ``expires_at`` (on the real clock)."""
    table = db.VideoRecord
    table(video_id).update(
        actions=[table.save_lease_id.set("lease-under-test"), table.save_lease_expires_at.set(expires_at)],
        condition=table.video_id.exists(),
    )


def old_video(**fields: Any) -> db.VideoRecord:
    return make_video(created_at=EXPIRED, **fields)


def dynamodb_error(code: str) -> DeleteError:
    """A failed DeleteItem exactly as PynamoDB raises it, carrying botocore's error."""
    cause = ClientError({"Error": {"Code": code, "Message": f"injected {code}"}}, "DeleteItem")
    return DeleteError("Failed to delete item", cause=cause)


@pytest.fixture
def fast_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(purge, "DEFAULT_LIMITS", PurgeLimits(backoff_base_s=0.001, backoff_cap_s=0.002))


@pytest.fixture
def r2_bucket(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """An "R2" bucket in moto, reached through R2's own endpoint shape (moto maps the custom host to S3)."""
    monkeypatch.setenv("MOTO_S3_CUSTOM_ENDPOINTS", R2_ENDPOINT)
    monkeypatch.setenv("R2_ENDPOINT_URL", R2_ENDPOINT)
    monkeypatch.setenv("R2_BUCKET", BUCKET)
    monkeypatch.setenv("R2_ACCESS_KEY_ID", "r2-key-id")
    monkeypatch.setenv("R2_SECRET_ACCESS_KEY", "r2-secret")
    get_settings.cache_clear()
    s3 = boto3.client("s3", region_name="us-east-1", endpoint_url=R2_ENDPOINT)
    s3.create_bucket(Bucket=BUCKET)
    yield s3
    get_settings.cache_clear()


def keys_in(s3: Any) -> set[str]:
    return {item["Key"] for item in s3.list_objects_v2(Bucket=BUCKET).get("Contents", [])}


def put_object(s3: Any, video: db.VideoRecord) -> str:
    key = video_object_key(video.campaign_id, video.video_id)
    s3.put_object(Bucket=BUCKET, Key=key, Body=b"\x00\x00\x00\x18ftypmp42", ContentType="video/mp4")
    return key


# --- what is purged and what is kept -------------------------------------------------------------------


def test_the_cutoff_is_strict_a_record_created_exactly_at_it_is_kept() -> None:
    # GIVEN unsaved records around the cutoff (event time minus 30 days)
    at_cutoff = make_video(created_at=CUTOFF)
    second_before = make_video(created_at=CUTOFF - timedelta(seconds=1))
    microsecond_before = make_video(created_at=CUTOFF - timedelta(microseconds=1))
    second_after = make_video(created_at=CUTOFF + timedelta(seconds=1))

    # WHEN the daily event runs the purge
    summary = run_purge()

    # THEN only what is strictly older than the cutoff is gone
    assert exists(at_cutoff.video_id)
    assert exists(second_after.video_id)
    assert not exists(second_before.video_id)
    assert not exists(microsecond_before.video_id)
    assert summary == {
        "cutoff": "2026-10-26T03:15:00Z",
        "examined": 2,
        "deleted": 2,
        "kept": 0,
        "unfinished": 0,
        "dry_run": False,
        "complete": True,
    }


@pytest.mark.parametrize("status", list(VideoStatus))
def test_an_old_preview_never_saved_is_purged_whatever_its_status(status: VideoStatus) -> None:
    video = old_video(status=status)

    summary = run_purge()

    assert not exists(video.video_id)
    assert (summary["deleted"], summary["complete"]) == (1, True)


def test_old_saved_videos_and_young_previews_are_kept_and_never_even_examined() -> None:
    saved = old_video(status=VideoStatus.COMPLETED)
    mark_saved(saved.video_id)
    young = make_video(created_at=YOUNG)
    expired = old_video(status=VideoStatus.COMPLETED)

    summary = run_purge()

    assert exists(saved.video_id)
    assert exists(young.video_id)
    assert not exists(expired.video_id)
    # the saved one is not in the index at all: only the expired preview was read
    assert (summary["examined"], summary["deleted"], summary["kept"]) == (1, 1, 0)


def test_the_retention_comes_from_the_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PURGE_AFTER_DAYS", "7")
    get_settings.cache_clear()
    eight_days = make_video(created_at=EVENT_TIME - timedelta(days=8))
    six_days = make_video(created_at=EVENT_TIME - timedelta(days=6))

    summary = run_purge()

    assert summary["cutoff"] == "2026-11-18T03:15:00Z"
    assert not exists(eight_days.video_id)
    assert exists(six_days.video_id)


def test_records_in_every_shard_and_over_many_pages_are_all_purged(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(purge, "DEFAULT_LIMITS", PurgeLimits(page_size=2))
    # ids are random: add records until every shard holds at least three pages' worth
    expired: list[db.VideoRecord] = []
    per_shard = dict.fromkeys(map(str, range(db.PURGE_INDEX_SHARDS)), 0)
    while min(per_shard.values()) < 6:
        video = old_video(campaign_id=f"c{len(expired)}")
        per_shard[db.purge_shard_of(video.video_id)] += 1
        expired.append(video)
    young = [make_video(created_at=YOUNG) for _ in range(5)]

    summary = run_purge()

    assert surviving(expired) == set()
    assert surviving(young) == {video.video_id for video in young}
    assert (summary["examined"], summary["deleted"], summary["complete"]) == (len(expired), len(expired), True)


def test_nothing_to_purge_is_a_complete_run_with_zero_counts() -> None:
    make_video(created_at=YOUNG)

    summary = run_purge()

    assert summary == {
        "cutoff": "2026-10-26T03:15:00Z",
        "examined": 0,
        "deleted": 0,
        "kept": 0,
        "unfinished": 0,
        "dry_run": False,
        "complete": True,
    }


# --- saves racing the purge ----------------------------------------------------------------------------


def test_a_video_saved_between_the_query_and_the_delete_is_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN two expired previews, one of which the user saves right after the purge has read it
    racing = old_video(status=VideoStatus.COMPLETED)
    other = old_video(status=VideoStatus.COMPLETED)
    real_query = db.expired_unsaved

    def query_then_user_saves(*args: Any, **kwargs: Any) -> Any:
        page, next_key = real_query(*args, **kwargs)
        if any(record.video_id == racing.video_id for record in page):
            mark_saved(racing.video_id)
        return page, next_key

    monkeypatch.setattr(db, "expired_unsaved", query_then_user_saves)

    # WHEN the purge runs
    summary = run_purge()

    # THEN the saved one survives, saved, and is counted as kept
    record = db.get_video(racing.video_id, consistent=True)
    assert record is not None
    assert record.saved_to_r2 is True
    assert not exists(other.video_id)
    assert (summary["examined"], summary["deleted"], summary["kept"]) == (2, 1, 1)


def test_a_live_save_lease_keeps_its_record_and_an_expired_one_does_not() -> None:
    being_saved = old_video(status=VideoStatus.COMPLETED)
    hold_save_lease(being_saved.video_id, db.utcnow() + timedelta(minutes=10))
    abandoned = old_video(status=VideoStatus.COMPLETED)
    hold_save_lease(abandoned.video_id, db.utcnow() - timedelta(minutes=10))

    summary = run_purge()

    assert exists(being_saved.video_id)
    assert not exists(abandoned.video_id)
    assert (summary["examined"], summary["deleted"], summary["kept"], summary["complete"]) == (2, 1, 1, True)


def test_a_kept_record_is_examined_again_and_purged_once_its_lease_has_expired() -> None:
    video = old_video(status=VideoStatus.COMPLETED)
    hold_save_lease(video.video_id, db.utcnow() + timedelta(minutes=10))
    assert run_purge()["kept"] == 1

    hold_save_lease(video.video_id, db.utcnow() - timedelta(seconds=1))  # the save died without a word
    summary = run_purge()

    assert not exists(video.video_id)
    assert (summary["deleted"], summary["kept"]) == (1, 0)


# --- time budget, max_items, dry runs ------------------------------------------------------------------


def test_with_little_time_left_the_run_stops_cleanly_and_the_next_run_finishes() -> None:
    # GIVEN 60 expired previews and a Lambda whose remaining time runs out after a few dozen checks
    expired = [old_video() for _ in range(60)]
    short_of_time = CountdownContext(start_ms=40_000, step_ms=1_000)  # under the 15 s margin after 25 calls

    # WHEN the purge runs, then runs again with the same event (as the next schedule or a retry would)
    first = run_purge(context=short_of_time)
    left_after_first = surviving(expired)
    second = run_purge()

    # THEN the first run stops part-way, saying so; the second one, with no cursor, finds exactly the rest
    assert first["complete"] is False
    assert 0 < first["deleted"] < 60
    assert first["examined"] == first["deleted"]
    assert len(left_after_first) == 60 - first["deleted"]
    assert second["complete"] is True
    assert second["deleted"] == len(left_after_first)
    assert surviving(expired) == set()


def test_a_run_that_starts_inside_the_margin_deletes_nothing() -> None:
    video = old_video()

    summary = run_purge(context=LocalLambdaContext(timeout_s=5))

    assert exists(video.video_id)
    assert (summary["examined"], summary["complete"]) == (0, False)


def test_max_items_bounds_a_run_and_says_whether_anything_remains() -> None:
    expired = [old_video() for _ in range(5)]

    first = run_purge(with_detail(max_items=2))
    second = run_purge(with_detail(max_items=3))
    third = run_purge(with_detail(max_items=3))

    assert (first["examined"], first["deleted"], first["complete"]) == (2, 2, False)
    # exactly the three that were left: nothing remains, and the run knows it
    assert (second["examined"], second["deleted"], second["complete"]) == (3, 3, True)
    assert (third["examined"], third["complete"]) == (0, True)
    assert surviving(expired) == set()


def test_max_items_counts_deletions_so_videos_being_saved_cannot_hold_every_run_back() -> None:
    # GIVEN expired previews, several of them held by saves in progress
    being_saved = [old_video(status=VideoStatus.COMPLETED) for _ in range(3)]
    for video in being_saved:
        hold_save_lease(video.video_id, db.utcnow() + timedelta(minutes=10))
    abandoned = [old_video() for _ in range(3)]

    # WHEN runs bounded to one item follow each other
    summaries = [run_purge(with_detail(max_items=1)) for _ in range(4)]

    # THEN each deletes one abandoned preview, whatever it had to keep on the way, and the last one completes
    assert [summary["deleted"] for summary in summaries] == [1, 1, 1, 0]
    assert summaries[-1]["complete"] is True
    assert surviving(abandoned) == set()
    assert surviving(being_saved) == {video.video_id for video in being_saved}


def test_a_dry_run_counts_what_a_real_run_would_examine_and_deletes_nothing(r2_bucket: Any) -> None:
    expired = [old_video() for _ in range(3)]
    young = make_video(created_at=YOUNG)
    key = put_object(r2_bucket, expired[0])

    summary = run_purge(load_event("purge_dry_run"))

    assert summary == {
        "cutoff": "2026-10-26T03:15:00Z",
        "examined": 3,
        "deleted": 0,
        "kept": 0,
        "unfinished": 0,
        "dry_run": True,
        "complete": True,
    }
    assert surviving([*expired, young]) == {video.video_id for video in [*expired, young]}
    assert keys_in(r2_bucket) == {key}


def test_a_dry_run_with_max_items_reports_that_more_remain() -> None:
    for _ in range(4):
        old_video()

    summary = run_purge(with_detail(dry_run=True, max_items=3))

    assert (summary["examined"], summary["deleted"], summary["complete"]) == (3, 0, False)


# --- R2 objects ----------------------------------------------------------------------------------------


def tried_and_failed(video: db.VideoRecord) -> None:
    """What a save that failed for good leaves on the record: an attempt made, its leftovers not confirmed gone."""
    now = db.utcnow()
    db.apply_task_progress(
        video.video_id,
        TaskProgress(
            task_id=video.task_id or "", status=VideoStatus.COMPLETED, provider_video_url="https://x.theapi.app/v.mp4"
        ),
    )
    assert db.queue_save(video.video_id, video.user_id, now)
    assert db.claim_save(video.video_id, "attempt-1", now + timedelta(minutes=1), now) is not None
    assert db.fail_save(video.video_id, "attempt-1", "source_gone", "gone", now, cleaned_up=False)


def test_a_purged_preview_whose_save_was_tried_takes_what_it_left_in_r2_and_saved_objects_stay(
    r2_bucket: Any,
) -> None:
    # GIVEN an expired preview whose save failed after uploading, a saved video and a young preview
    failed_save = old_video(campaign_id="summer-launch", task_id="t-failed")
    tried_and_failed(failed_save)
    leftover_key = put_object(r2_bucket, failed_save)
    saved = old_video(campaign_id="summer-launch", status=VideoStatus.COMPLETED)
    saved_key = put_object(r2_bucket, saved)
    mark_saved(saved.video_id)
    young = make_video(created_at=YOUNG, campaign_id="summer-launch")
    young_key = put_object(r2_bucket, young)
    never_tried = old_video()

    # WHEN the purge runs
    summary = run_purge()

    # THEN the failed save's object is gone with its record; every other object is untouched
    assert keys_in(r2_bucket) == {saved_key, young_key}
    assert leftover_key not in keys_in(r2_bucket)
    assert not exists(failed_save.video_id) and not exists(never_tried.video_id)
    assert (summary["deleted"], summary["unfinished"], summary["complete"]) == (2, 0, True)


def test_a_record_kept_by_a_race_keeps_its_object(r2_bucket: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    racing = old_video(status=VideoStatus.COMPLETED)
    key = put_object(r2_bucket, racing)
    real_delete = db.delete_if_never_saved

    def user_saves_first(video_id: str, now: datetime, condition: Any = None) -> bool:
        mark_saved(video_id)
        return real_delete(video_id, now, condition)

    monkeypatch.setattr(db, "delete_if_never_saved", user_saves_first)

    summary = run_purge()

    assert exists(racing.video_id)
    assert keys_in(r2_bucket) == {key}
    assert summary["kept"] == 1


def test_a_preview_with_a_save_queued_or_running_is_kept() -> None:
    queued = old_video(task_id="t-queued")
    db.apply_task_progress(
        queued.video_id,
        TaskProgress(task_id="t-queued", status=VideoStatus.COMPLETED, provider_video_url="https://x.theapi.app/v"),
    )
    assert db.queue_save(queued.video_id, queued.user_id, db.utcnow())

    summary = run_purge()

    assert exists(queued.video_id)
    assert summary["kept"] == 1


def test_without_r2_previews_never_tried_are_purged_and_tried_ones_wait_for_it() -> None:
    never_tried = [old_video() for _ in range(3)]
    failed_save = old_video(task_id="t-failed")
    tried_and_failed(failed_save)

    summary = run_purge()

    assert surviving(never_tried) == set()
    # Deleting its record without R2 could orphan an object: it stays marked until R2 can be asked.
    assert exists(failed_save.video_id)
    assert (summary["deleted"], summary["unfinished"], summary["complete"]) == (3, 1, False)


def test_when_r2_refuses_a_delete_the_record_stays_and_a_later_run_removes_both(
    r2_bucket: Any, monkeypatch: pytest.MonkeyPatch, logs: io.StringIO
) -> None:
    # GIVEN an expired preview with a leftover object, and R2 refusing deletes
    video = old_video(campaign_id="c7", task_id="t-c7")
    tried_and_failed(video)
    key = put_object(r2_bucket, video)
    monkeypatch.setenv("R2_BUCKET", "no-such-bucket")
    get_settings.cache_clear()

    # WHEN the purge runs THEN nothing is lost: the record is marked and stays, the object too
    summary = run_purge()
    assert (summary["deleted"], summary["unfinished"], summary["complete"]) == (0, 1, False)
    record = db.get_video(video.video_id, consistent=True)
    assert record is not None and record.deleting_at is not None and record.pending_shard is not None
    assert keys_in(r2_bucket) == {key}
    warnings = [line for line in log_records(logs) if line["level"] == "WARNING"]
    assert any(line["message"].startswith("a deletion could not remove its objects") for line in warnings)

    # WHEN R2 is back and the next run comes (after the first deletion's lease) THEN both go
    monkeypatch.setenv("R2_BUCKET", BUCKET)
    get_settings.cache_clear()
    table = db.VideoRecord
    table(video.video_id).update(actions=[table.save_lease_expires_at.set(db.utcnow() - timedelta(seconds=1))])
    summary = run_purge()
    assert (summary["deleted"], summary["unfinished"], summary["complete"]) == (1, 0, True)
    assert not exists(video.video_id) and keys_in(r2_bucket) == set()


# --- DynamoDB errors -----------------------------------------------------------------------------------


def test_throttled_deletes_are_retried_until_they_go_through(
    monkeypatch: pytest.MonkeyPatch, fast_backoff: None
) -> None:
    expired = [old_video() for _ in range(4)]
    real_delete = db.VideoRecord.delete
    attempts: dict[str, int] = {}
    lock = threading.Lock()

    def throttled_twice(self: db.VideoRecord, *args: Any, **kwargs: Any) -> Any:
        with lock:
            attempts[self.video_id] = attempts.get(self.video_id, 0) + 1
            attempt = attempts[self.video_id]
        if attempt <= 2:
            code = "ProvisionedThroughputExceededException" if attempt == 1 else "ThrottlingException"
            raise dynamodb_error(code)
        return real_delete(self, *args, **kwargs)

    monkeypatch.setattr(db.VideoRecord, "delete", throttled_twice)

    summary = run_purge()

    assert surviving(expired) == set()
    assert attempts == {video.video_id: 3 for video in expired}
    assert (summary["deleted"], summary["complete"]) == (4, True)


def test_throttling_that_outlasts_the_backoff_fails_the_run(
    monkeypatch: pytest.MonkeyPatch, fast_backoff: None
) -> None:
    video = old_video()

    def always_throttled(self: db.VideoRecord, *args: Any, **kwargs: Any) -> Any:
        raise dynamodb_error("RequestLimitExceeded")

    monkeypatch.setattr(db.VideoRecord, "delete", always_throttled)

    with pytest.raises(db.Throttled):
        run_purge()
    assert exists(video.video_id)


@pytest.mark.parametrize("code", ["InternalServerError", "ValidationException", "AccessDeniedException"])
def test_any_other_dynamodb_error_fails_the_run_and_stops_it(monkeypatch: pytest.MonkeyPatch, code: str) -> None:
    monkeypatch.setattr(purge, "DEFAULT_LIMITS", PurgeLimits(workers=2))
    expired = [old_video() for _ in range(80)]  # about ten per shard: more than the workers in every page
    calls = 0
    lock = threading.Lock()

    def failing(self: db.VideoRecord, *args: Any, **kwargs: Any) -> Any:
        nonlocal calls
        with lock:
            calls += 1
        raise dynamodb_error(code)

    monkeypatch.setattr(db.VideoRecord, "delete", failing)

    with pytest.raises(DeleteError) as raised:
        run_purge()

    assert raised.value.cause_response_code == code
    assert surviving(expired) == {video.video_id for video in expired}
    # the first failure stops the run: no other record is attempted, beyond one already under way per worker
    assert 1 <= calls <= 2


# --- the event ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "event",
    [
        {k: v for k, v in load_event("purge").items() if k != "time"},
        {**load_event("purge"), "time": "yesterday"},
        {**load_event("purge"), "time": None},
        {**load_event("purge"), "time": "2026-11-25T03:15:00"},  # no time zone: which 03:15?
        {**load_event("purge"), "detail": ["dry_run"]},
        {**load_event("purge"), "detail": None},
        {**load_event("purge"), "detail": {"dryrun": True}},
        {**load_event("purge"), "detail": {"dry_run": "false"}},
        {**load_event("purge"), "detail": {"dry_run": 1}},
        {**load_event("purge"), "detail": {"max_items": 0}},
        {**load_event("purge"), "detail": {"max_items": "10"}},
        {**load_event("purge"), "detail": {"max_items": True}},
        [],
    ],
    ids=[
        "no-time",
        "unparseable-time",
        "null-time",
        "naive-time",
        "detail-list",
        "detail-null",
        "detail-typo",
        "dry-run-string",
        "dry-run-int",
        "max-items-zero",
        "max-items-string",
        "max-items-bool",
        "not-an-object",
    ],
)
def test_a_malformed_event_fails_clearly_and_purges_nothing(event: Any) -> None:
    video = old_video()

    with pytest.raises(InvalidPurgeEvent) as raised:
        handler(event, LocalLambdaContext())

    assert raised.value.message.startswith("not a purge event")
    assert exists(video.video_id)


def test_an_event_with_an_offset_time_means_the_same_instant() -> None:
    video = make_video(created_at=CUTOFF - timedelta(minutes=30))

    summary = run_purge({**load_event("purge"), "time": "2026-11-25T05:15:00+02:00"})

    assert summary["cutoff"] == "2026-10-26T03:15:00Z"
    assert not exists(video.video_id)


def test_an_event_dated_ahead_purges_relative_to_its_time_and_warns(logs: io.StringIO) -> None:
    # GIVEN a preview created today, and an operator (or the local demo) purging "31 days from now"
    today = make_video(created_at=db.utcnow())

    summary = run_purge(scheduled_event(db.utcnow() + timedelta(days=31)))

    # THEN the run does what the event says, and the log says it was unusual
    assert not exists(today.video_id)
    assert summary["deleted"] == 1
    assert "the event's time is in the future: previews younger than the retention are purged" in [
        line["message"] for line in log_records(logs) if line["level"] == "WARNING"
    ]


def test_a_freshly_built_scheduled_event_for_now_is_accepted() -> None:
    expired = make_video(created_at=db.utcnow() - timedelta(days=31))
    young = make_video(created_at=db.utcnow() - timedelta(days=29))

    summary = run_purge(scheduled_event(db.utcnow()))

    assert not exists(expired.video_id)
    assert exists(young.video_id)
    assert summary["complete"] is True


# --- what operators see ---------------------------------------------------------------------------------


def test_the_summary_is_logged_and_the_counts_are_metrics(
    logs: io.StringIO, capsys: pytest.CaptureFixture[str]
) -> None:
    for _ in range(3):
        old_video()
    being_saved = old_video()
    hold_save_lease(being_saved.video_id, db.utcnow() + timedelta(minutes=5))

    summary = run_purge()

    finished = [line for line in log_records(logs) if line["message"] == "purge finished"]
    assert len(finished) == 1
    assert {key: finished[0][key] for key in summary} == summary
    assert finished[0]["correlation_id"] == load_event("purge")["id"]
    emitted = emitted_metrics(capsys.readouterr().out)
    assert emitted == {"VideosPurged": 3, "VideosPurgeKept": 1, "VideosPurgeUnfinished": 0, "PurgeRunsIncomplete": 0}


def test_a_run_that_leaves_work_behind_says_so_in_a_metric(capsys: pytest.CaptureFixture[str]) -> None:
    # GIVEN more expired previews than the run may delete
    for _ in range(3):
        old_video()

    # WHEN the run stops short
    summary = run_purge(with_detail(max_items=2))

    # THEN it is counted as incomplete (the "purge not completing" alarm watches this metric)
    assert summary["complete"] is False
    assert emitted_metrics(capsys.readouterr().out)["PurgeRunsIncomplete"] == 1


def test_purge_page_logs_name_the_deleted_and_kept_videos(logs: io.StringIO) -> None:
    gone = old_video()
    kept = old_video()
    hold_save_lease(kept.video_id, db.utcnow() + timedelta(minutes=5))

    run_purge()

    pages = [line for line in log_records(logs) if line["message"] == "purge page"]
    assert sorted(video_id for line in pages for video_id in line["deleted"]) == [gone.video_id]
    assert sorted(video_id for line in pages for video_id in line["kept"]) == [kept.video_id]
