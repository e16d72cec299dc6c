"""Property: whatever the records and however saves interleave with the purge, no saved video is ever
deleted, and once a run completes every expired preview nobody saved or is saving is gone."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from moto import mock_aws
from pynamodb.exceptions import UpdateError

from devtools.lambda_context import LocalLambdaContext
from functions.purge.handler import handler
from tests.conftest import load_event, make_video
from tests.functional.test_purge import CUTOFF, hold_save_lease, mark_saved
from video_library import db, purge
from video_library.purge import PurgeLimits
from video_library.status import VideoStatus

# Around the cutoff, boundaries included: exactly at it (kept), a microsecond either side, far either side.
AGES = st.one_of(
    st.sampled_from([timedelta(0), timedelta(microseconds=-1), timedelta(microseconds=1), timedelta(seconds=-1)]),
    st.integers(min_value=-40 * 86_400, max_value=5 * 86_400).map(lambda s: timedelta(seconds=s)),
)
LEASES = st.sampled_from(["none", "live", "expired"])
# When a user saves the video during the run: never, right after the purge reads the page with it in, or
# just before the purge's n-th delete call (of any record, from any of its threads).
SAVES_DURING_RUN = st.one_of(
    st.none(),
    st.just(("after_query", 0)),
    st.tuples(st.just("before_delete"), st.integers(min_value=0, max_value=30)),
)


@dataclass(frozen=True)
class Spec:
    age: timedelta  # created_at relative to the cutoff
    status: VideoStatus
    saved: bool  # before the run (only a completed video can have been saved)
    lease: str
    save_during_run: tuple[str, int] | None


SPECS = st.builds(
    Spec,
    age=AGES,
    status=st.sampled_from(list(VideoStatus)),
    saved=st.booleans(),
    lease=LEASES,
    save_during_run=SAVES_DURING_RUN,
)


@dataclass
class Record:
    spec: Spec
    video_id: str
    saved: bool = False
    save_failed: bool = False  # the injected save came after the purge had deleted the record


class UserSaves:
    """Applies the saves the example scheduled, at the points of the run it scheduled them."""

    def __init__(self, records: list[Record]) -> None:
        self._records = records
        self._lock = threading.Lock()
        self._delete_calls = 0

    def save(self, record: Record) -> None:
        if record.saved or record.save_failed:
            return
        try:
            mark_saved(record.video_id)
        except UpdateError as exc:
            if exc.cause_response_code != db.CONDITION_FAILED:
                raise
            record.save_failed = True  # the record is gone: the save lost the race and finds nothing
            return
        record.saved = True

    def after_query(self, page: list[db.VideoRecord]) -> None:
        ids = {video.video_id for video in page}
        for record in self._records:
            if record.spec.save_during_run == ("after_query", 0) and record.video_id in ids:
                self.save(record)

    def before_delete(self) -> None:
        with self._lock:
            call = self._delete_calls
            self._delete_calls += 1
            for record in self._records:
                if record.spec.save_during_run == ("before_delete", call):
                    self.save(record)


def store(spec: Spec) -> Record:
    status = VideoStatus.COMPLETED if spec.saved else spec.status
    video = make_video(created_at=CUTOFF + spec.age, status=status)
    record = Record(spec, video.video_id)
    if spec.saved:
        mark_saved(video.video_id)
        record.saved = True
    elif spec.lease == "live":
        hold_save_lease(video.video_id, db.utcnow() + timedelta(minutes=10))
    elif spec.lease == "expired":
        hold_save_lease(video.video_id, db.utcnow() - timedelta(minutes=10))
    return record


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    specs=st.lists(SPECS, min_size=1, max_size=20),
    page_size=st.sampled_from([1, 3, 500]),
    max_items=st.one_of(st.none(), st.integers(min_value=1, max_value=7)),
)
def test_no_saved_video_is_ever_purged_and_a_complete_run_leaves_no_expired_preview(
    specs: list[Spec], page_size: int, max_items: int | None
) -> None:
    with mock_aws(), pytest.MonkeyPatch.context() as patch:
        db.create_tables()
        records = [store(spec) for spec in specs]
        user = UserSaves(records)
        real_query, real_delete = db.expired_unsaved, db.delete_if_never_saved

        def query(*args: Any, **kwargs: Any) -> tuple[list[db.VideoRecord], Any]:
            page, next_key = real_query(*args, **kwargs)
            user.after_query(page)
            return page, next_key

        def delete(video_id: str, now: datetime, condition: Any = None) -> bool:
            user.before_delete()
            return real_delete(video_id, now, condition)

        patch.setattr(db, "expired_unsaved", query)
        patch.setattr(db, "delete_if_never_saved", delete)
        patch.setattr(purge, "DEFAULT_LIMITS", PurgeLimits(page_size=page_size, workers=4))
        event = {**load_event("purge"), "detail": {"max_items": max_items} if max_items else {}}

        # Run as the schedule would, again and again, until a run says it finished the job.
        summaries = []
        for _ in range(len(specs) + 2):
            summaries.append(handler(event, LocalLambdaContext()))
            if summaries[-1]["complete"]:
                break

        assert summaries[-1]["complete"] is True
        deleted = 0
        for record in records:
            stored = db.get_video(record.video_id, consistent=True)
            expired = CUTOFF + record.spec.age < CUTOFF
            if record.saved:
                assert stored is not None, f"a saved video was purged: {record}"
                assert stored.saved_to_r2 is True
            elif record.spec.lease == "live" or not expired:
                assert stored is not None, f"a video being saved or still young was purged: {record}"
            else:
                assert stored is None, f"an expired preview survived a complete run: {record}"
            deleted += stored is None
        assert sum(summary["deleted"] for summary in summaries) == deleted
        assert all(summary["cutoff"] == CUTOFF.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ") for summary in summaries)
