"""Property: the usage counters equal a recount of the records, whatever sequence of saves (successful, failed,
retried, recorded twice, recorded after losing the lease) and deletions (of previews and saved videos, with R2
refusing and the deletion finished later) came before. The counters are one read; the recount reads every record.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import boto3
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from moto import mock_aws

from tests.conftest import make_video
from video_library import db, deletion, usage
from video_library.errors import StorageUnavailable
from video_library.r2 import thumbnail_object_key, video_object_key
from video_library.settings import get_settings
from video_library.status import VideoStatus

R2_ENDPOINT = "https://0123456789abcdef0123456789abcdef.r2.cloudflarestorage.com"
BUCKET = "video-library-test"
USERS = ("alice", "bob")
CAMPAIGNS = ("1", "2")
LATER = timedelta(minutes=5)  # past any lease taken now

VIDEO = st.integers(min_value=0, max_value=7)  # which of the videos made so far (modulo their number)
SIZE = st.integers(min_value=1, max_value=10**12)
THUMBNAIL = st.sampled_from([0, 0, 1, 6_467, 4 * 1024 * 1024])
OPERATIONS = st.one_of(
    st.tuples(st.just("create"), st.sampled_from(USERS), st.sampled_from(CAMPAIGNS)),
    st.tuples(st.just("save"), VIDEO, SIZE, THUMBNAIL),
    st.tuples(st.just("fail"), VIDEO, st.booleans()),
    st.tuples(st.just("retry_then_save"), VIDEO, SIZE, THUMBNAIL),
    st.tuples(st.just("record_twice"), VIDEO, SIZE, THUMBNAIL),
    st.tuples(st.just("record_after_losing_the_lease"), VIDEO, SIZE),
    st.tuples(st.just("delete"), VIDEO),
    st.tuples(st.just("delete_while_r2_refuses"), VIDEO),
    st.tuples(st.just("finish_deletions")),
)


@dataclass
class Run:
    videos: list[str]
    now: datetime


def _pick(run: Run, index: int) -> db.VideoRecord | None:
    if not run.videos:
        return None
    return db.get_video(run.videos[index % len(run.videos)], consistent=True)


def _claim(record: db.VideoRecord, lease: str, now: datetime) -> db.VideoRecord | None:
    if not db.queue_save(record.video_id, record.user_id, now):
        return None
    return db.claim_save(record.video_id, lease, now + timedelta(minutes=1), now)


def _record(claimed: db.VideoRecord, lease: str, size: int, thumbnail: int, now: datetime) -> None:
    db.record_saved(
        claimed,
        lease,
        r2_key=video_object_key(claimed.campaign_id, claimed.video_id),
        url="https://r2.example/video.mp4",
        size_bytes=size,
        sha256="0" * 64,
        saved_at=now,
        thumbnail_key=thumbnail_object_key(claimed.campaign_id, claimed.video_id, "image/jpeg") if thumbnail else None,
        thumbnail_bytes=thumbnail,
    )


def apply(operation: tuple[Any, ...], run: Run, patch: pytest.MonkeyPatch) -> None:
    kind = operation[0]
    now = run.now
    if kind == "create":
        record = make_video(user_id=operation[1], campaign_id=operation[2], status=VideoStatus.COMPLETED)
        run.videos.append(record.video_id)
        return
    if kind == "finish_deletions":
        # what the sweep does for deletions R2 refused, once their lease has run out
        for video_id in run.videos:
            record = db.get_video(video_id, consistent=True)
            if record is not None and record.deleting_at is not None:
                deletion.delete_video(video_id, now + LATER)
        return
    record = _pick(run, operation[1])
    if record is None or record.deleting_at is not None:
        return
    if kind == "save":
        if (claimed := _claim(record, "lease-1", now)) is not None:
            _record(claimed, "lease-1", operation[2], operation[3], now)
    elif kind == "fail":
        if _claim(record, "lease-1", now) is not None:
            db.fail_save(record.video_id, "lease-1", "source_too_large", "too large", now, cleaned_up=operation[2])
    elif kind == "retry_then_save":
        if _claim(record, "lease-1", now) is not None:
            assert db.retry_save_later(record.video_id, "lease-1", "timed_out", "out of time", now)
            claimed = db.claim_save(record.video_id, "lease-2", now + timedelta(minutes=1), now)
            assert claimed is not None
            _record(claimed, "lease-2", operation[2], operation[3], now)
    elif kind == "record_twice":
        if (claimed := _claim(record, "lease-1", now)) is not None:
            _record(claimed, "lease-1", operation[2], operation[3], now)
            with pytest.raises(db.LeaseLost):  # an answer lost, the same write sent again: counted once
                _record(claimed, "lease-1", operation[2], operation[3], now)
    elif kind == "record_after_losing_the_lease":
        if (claimed := _claim(record, "lease-1", now)) is not None:
            # the lease ran out and another attempt took the save over: the first one may not record anything
            taken = db.claim_save(record.video_id, "lease-2", now + LATER + timedelta(minutes=1), now + LATER)
            assert taken is not None
            with pytest.raises(db.LeaseLost):
                _record(claimed, "lease-1", operation[2], 0, now)
            assert db.fail_save(record.video_id, "lease-2", "gave_up", "gave up", now, cleaned_up=True)
    elif kind == "delete":
        deletion.delete_video(record.video_id, now, db.VideoRecord.user_id == record.user_id)
    elif kind == "delete_while_r2_refuses":

        def refuse(*args: Any) -> None:
            raise StorageUnavailable("R2 refused")

        with patch.context() as refusing:
            refusing.setattr(deletion, "remove_objects", refuse)
            deletion.delete_video(record.video_id, now)


def recount() -> dict[tuple[str, str | None], tuple[int, int]]:
    """Saved videos and their bytes per user and per (user, campaign), from every record (a Query per user)."""
    counted: dict[tuple[str, str | None], list[int]] = defaultdict(lambda: [0, 0])
    for user in USERS:
        for record in db.VideoRecord.by_user.query(user):
            if record.saved_to_r2:
                for scope in ((user, None), (user, record.campaign_id)):
                    counted[scope][0] += 1
                    counted[scope][1] += int(record.stored_bytes or 0)
    return {scope: (values[0], values[1]) for scope, values in counted.items()}


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(operations=st.lists(OPERATIONS, min_size=1, max_size=25))
def test_the_counters_always_equal_a_recount_of_the_records(operations: list[tuple[Any, ...]]) -> None:
    with mock_aws(), pytest.MonkeyPatch.context() as patch:
        patch.setenv("MOTO_S3_CUSTOM_ENDPOINTS", R2_ENDPOINT)
        patch.setenv("R2_ENDPOINT_URL", R2_ENDPOINT)
        patch.setenv("R2_BUCKET", BUCKET)
        patch.setenv("R2_ACCESS_KEY_ID", "r2-key-id")
        patch.setenv("R2_SECRET_ACCESS_KEY", "r2-secret")
        get_settings.cache_clear()
        db.create_tables()
        boto3.client("s3", region_name="us-east-1", endpoint_url=R2_ENDPOINT).create_bucket(Bucket=BUCKET)
        run = Run(videos=[], now=db.utcnow())

        for operation in operations:
            apply(operation, run, patch)

        expected = recount()
        for user in USERS:
            counts = usage.counts(user)
            assert (counts.saved_videos, counts.saved_bytes) == expected.get((user, None), (0, 0)), operations
            for campaign in CAMPAIGNS:
                counts = usage.counts(user, campaign)
                assert (counts.saved_videos, counts.saved_bytes) == expected.get((user, campaign), (0, 0)), operations
        for video_id in run.videos:  # what a saved record counts is exactly its video and thumbnail
            record = db.get_video(video_id, consistent=True)
            if record is not None and record.saved_to_r2:
                assert record.stored_bytes == int(record.size_bytes or 0) + int(record.thumbnail_bytes or 0)
    get_settings.cache_clear()
