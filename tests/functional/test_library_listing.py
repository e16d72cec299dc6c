"""GET /api/video/library (show, sort, search, counts) and GET /api/video/campaigns through the real handler,
against moto's DynamoDB. Every list is a Query; these tests pin what each one returns, in which order, page by
page, and that what it cannot answer is a 4xx."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from devtools.apigw import http_api_event
from devtools.lambda_context import LocalLambdaContext
from functions.library_api.handler import handler
from tests.conftest import make_video
from video_library import db, listing
from video_library.models import TaskProgress
from video_library.r2 import thumbnail_object_key, video_object_key
from video_library.save_state import SaveState
from video_library.settings import get_settings
from video_library.status import VideoStatus

pytestmark = pytest.mark.usefixtures("aws", "r2_configured")

NOW = datetime.now(UTC)


@pytest.fixture
def r2_configured(monkeypatch: pytest.MonkeyPatch) -> None:
    """Saved videos' views carry presigned URLs: signing needs R2's settings, not R2."""
    monkeypatch.setenv("R2_ENDPOINT_URL", "https://0123456789abcdef0123456789abcdef.r2.cloudflarestorage.com")
    monkeypatch.setenv("R2_ACCESS_KEY_ID", "r2-key-id")
    monkeypatch.setenv("R2_SECRET_ACCESS_KEY", "r2-secret")
    get_settings.cache_clear()


def call(path: str, query: str = "", *, user: str = "alice") -> tuple[int, Any]:
    event = http_api_event("GET", path, query=query, claims={"sub": user})
    response = handler(event, LocalLambdaContext())
    return response["statusCode"], json.loads(response["body"])


def ids(page: dict[str, Any]) -> list[str]:
    return [item["video_id"] for item in page["items"]]


def every_page(query: str, *, user: str = "alice") -> tuple[list[str], int]:
    """Follow next_cursor to the end; the ids in order and how many pages it took."""
    found: list[str] = []
    cursor: str | None = None
    pages = 0
    while True:
        status, page = call("/api/video/library", query + (f"&cursor={cursor}" if cursor else ""), user=user)
        assert status == 200, page
        pages += 1
        found += ids(page)
        cursor = page["next_cursor"]
        if cursor is None:
            return found, pages
        assert pages < 100, "the listing never ended"


def video(
    *,
    user: str = "alice",
    campaign: str = "42",
    prompt: str = "a paper boat",
    age: timedelta = timedelta(minutes=1),
    completed_after: timedelta | None = timedelta(minutes=2),
    status: VideoStatus = VideoStatus.COMPLETED,
) -> db.VideoRecord:
    """A video created ``age`` ago; completed ``completed_after`` its creation (or left in ``status``)."""
    created_at = NOW - age
    record = make_video(
        f"task-{db.new_video_id()}", user_id=user, campaign_id=campaign, prompt=prompt, created_at=created_at
    )
    assert record.task_id is not None
    if status is VideoStatus.COMPLETED and completed_after is not None:
        db.apply_task_progress(
            record.video_id,
            TaskProgress(
                task_id=record.task_id,
                status=VideoStatus.COMPLETED,
                provider_video_url=f"https://cdn.theapi.app/{record.video_id}.mp4",
                completed_at=created_at + completed_after,
            ),
        )
    elif status is not VideoStatus.PENDING:
        db.apply_task_progress(
            record.video_id, TaskProgress(task_id=record.task_id, status=status, error="the model refused")
        )
    current = db.get_video(record.video_id, consistent=True)
    assert current is not None
    return current


def saved(record: db.VideoRecord, size: int, *, thumbnail_bytes: int = 0) -> db.VideoRecord:
    """What the worker records for a save (the transfer itself is not what these tests are about)."""
    now = db.utcnow()
    assert db.queue_save(record.video_id, record.user_id, now)
    claimed = db.claim_save(record.video_id, "lease", now + timedelta(minutes=1), now)
    assert claimed is not None
    db.record_saved(
        claimed,
        "lease",
        r2_key=video_object_key(record.campaign_id, record.video_id),
        url=f"https://r2.example/{record.video_id}.mp4",
        size_bytes=size,
        sha256="0" * 64,
        saved_at=now,
        content_type="video/mp4",
        thumbnail_key=thumbnail_object_key(record.campaign_id, record.video_id, "image/jpeg")
        if thumbnail_bytes
        else None,
        thumbnail_bytes=thumbnail_bytes,
    )
    current = db.get_video(record.video_id, consistent=True)
    assert current is not None and current.saved_to_r2
    return current


def failed_save(record: db.VideoRecord) -> None:
    now = db.utcnow()
    assert db.queue_save(record.video_id, record.user_id, now)
    assert db.claim_save(record.video_id, "lease", now + timedelta(minutes=1), now) is not None
    assert db.fail_save(record.video_id, "lease", "source_too_large", "too large", now, cleaned_up=True)


# --- show and sort ---------------------------------------------------------------------------------------------


def test_each_filter_shows_exactly_its_videos_newest_first() -> None:
    # GIVEN alice's videos in every state (oldest first here), and one of bob's
    small = saved(video(age=timedelta(hours=6)), 1_000)
    big = saved(video(age=timedelta(hours=5)), 9_000, thumbnail_bytes=500)
    preview = video(age=timedelta(hours=4))
    generation_failed = video(age=timedelta(hours=3), status=VideoStatus.FAILED)
    save_failed = video(age=timedelta(hours=2))
    failed_save(save_failed)
    pending = video(age=timedelta(hours=1), status=VideoStatus.PENDING)
    saved(video(user="bob"), 5_000)

    # WHEN each filter is listed
    shown = {show: every_page(f"show={show}")[0] for show in ("all", "saved", "unsaved", "failed")}

    # THEN each shows its own, newest first, and nothing of bob's
    assert shown["all"] == [v.video_id for v in (pending, save_failed, generation_failed, preview, big, small)]
    assert shown["saved"] == [big.video_id, small.video_id]
    assert shown["unsaved"] == [v.video_id for v in (pending, save_failed, generation_failed, preview)]
    assert shown["failed"] == [save_failed.video_id, generation_failed.video_id]


def test_oldest_first_is_the_reverse_and_pages_the_same_way() -> None:
    videos = [video(age=timedelta(minutes=10 - i)) for i in range(5)]

    newest, _ = every_page("sort=newest&limit=2")
    oldest, pages = every_page("sort=oldest&limit=2")

    assert oldest == [v.video_id for v in videos]
    assert newest == list(reversed(oldest))
    assert pages == 3


def test_largest_first_lists_saved_videos_by_size_in_one_campaign_or_all() -> None:
    sizes = {"42": [3_000, 10_000, 7_000], "43": [8_000]}
    made = {
        campaign: [saved(video(campaign=campaign), size) for size in campaign_sizes]
        for campaign, campaign_sizes in sizes.items()
    }
    video()  # a preview has no size yet: never in this list
    saved(video(user="bob"), 50_000)

    everything, pages = every_page("sort=largest&limit=1")
    in_42, _ = every_page("sort=largest&campaign_id=42&limit=2")

    by_id = {v.video_id: v for vs in made.values() for v in vs}
    assert [by_id[video_id].size_bytes for video_id in everything] == [10_000, 8_000, 7_000, 3_000]
    assert pages == 4
    assert [by_id[video_id].size_bytes for video_id in in_42] == [10_000, 7_000, 3_000]


@pytest.mark.parametrize(
    "query", ["sort=largest&show=unsaved", "sort=largest&show=expiring", "sort=largest&saved=false"]
)
def test_largest_first_with_a_filter_that_excludes_saved_videos_is_a_400(query: str) -> None:
    status, body = call("/api/video/library", query)

    assert status == 400
    assert body["error"]["code"] == "bad_request" and "largest" in body["error"]["message"]


@pytest.mark.parametrize("query", ["show=everything", "sort=biggest", "q=", f"q={'x' * 101}", "limit=0"])
def test_unknown_filters_and_sorts_are_4xx_json(query: str) -> None:
    status, body = call("/api/video/library", query)

    assert status in (400, 422)
    assert body["error"]["code"] in ("bad_request", "invalid_request")


# --- search ------------------------------------------------------------------------------------------------------


def test_search_finds_a_case_insensitive_substring_of_the_prompt() -> None:
    boat = video(prompt="A Paper BOAT drifting down a rainy street")
    street = video(prompt="Die Straße bei Nacht")
    video(prompt="a fox in the snow")
    video(prompt="paper boat", user="bob")

    found = {q: every_page(f"q={q}")[0] for q in ("boat", "PAPER%20boat", "STRASSE", "rainy%20street", "whale")}

    assert found["boat"] == [boat.video_id]
    assert found["PAPER%20boat"] == [boat.video_id]
    assert found["STRASSE"] == [street.video_id]  # casefolded: ß is ss
    assert found["rainy%20street"] == [boat.video_id]
    assert found["whale"] == []


def test_search_combines_with_the_campaign_and_the_filter() -> None:
    kept = saved(video(prompt="boat at dawn", campaign="43"), 2_000)
    video(prompt="boat at noon", campaign="43")
    saved(video(prompt="boat at dusk", campaign="42"), 2_000)

    found, _ = every_page("q=boat&campaign_id=43&show=saved")

    assert found == [kept.video_id]


def test_a_selective_filter_reads_a_bounded_amount_per_request_and_paging_finds_every_match(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # GIVEN 24 videos of which 3 match, and a listing that may read only 5 items per request
    monkeypatch.setattr(listing, "READ_BUDGET", 5)
    monkeypatch.setattr(listing, "FILTERED_PAGE", 5)
    matches = []
    for i in range(24):
        record = video(prompt=f"whale {i}" if i in (2, 11, 20) else f"a fox {i}", age=timedelta(minutes=30 - i))
        if i in (2, 11, 20):
            matches.append(record.video_id)

    # WHEN the search is paged to its end
    found, pages = every_page("q=whale&limit=24")

    # THEN every match came, once, newest first, over several bounded requests (some pages empty)
    assert found == list(reversed(matches))
    assert pages >= 24 // 5


# --- expiring soon -----------------------------------------------------------------------------------------------


def test_expiring_soon_lists_the_previews_that_expire_within_three_days_or_are_overdue() -> None:
    # GIVEN previews at every distance from their expiry (provider 7 days after completion, purge 30 days)
    in_two_days = video(age=timedelta(days=5))
    in_six_days = video(age=timedelta(days=1))
    overdue = video(age=timedelta(days=9))
    purged_soon = video(age=timedelta(days=29), completed_after=timedelta(days=25))  # the purge comes first
    found_gone = video(age=timedelta(days=6))
    db.mark_preview_expired(found_gone.video_id, db.utcnow())
    saved(video(age=timedelta(days=6)), 1_000)
    video(age=timedelta(days=29), status=VideoStatus.PENDING)  # nothing to save
    video(age=timedelta(days=40))  # past the purge's slack: not read at all
    video(age=timedelta(days=5), user="bob")

    found, _ = every_page("show=expiring")
    soonest_first, _ = every_page("show=expiring&sort=oldest&limit=1")

    assert set(found) == {in_two_days.video_id, overdue.video_id, purged_soon.video_id}
    assert soonest_first == [purged_soon.video_id, overdue.video_id, in_two_days.video_id]
    assert in_six_days.video_id not in found


def test_an_expiring_listing_cursor_from_a_moment_ago_still_pages_when_the_window_has_moved(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # GIVEN two expiring previews and the first page of their listing
    first = video(age=timedelta(days=31, hours=12))
    second = video(age=timedelta(days=31, hours=11))
    status, page = call("/api/video/library", "show=expiring&sort=oldest&limit=1")
    assert status == 200 and ids(page) == [first.video_id] and page["next_cursor"]

    # WHEN the clock has moved on (the window no longer holds the cursor's position) and the next page is asked
    later = NOW + timedelta(hours=12, minutes=30)
    monkeypatch.setattr(db, "utcnow", lambda: later)
    status, rest = call("/api/video/library", f"show=expiring&sort=oldest&limit=5&cursor={page['next_cursor']}")

    # THEN it answers (the window widens to the cursor) instead of a refused query
    assert status == 200
    assert ids(rest) == [second.video_id]


def test_a_tampered_expiring_cursor_is_a_400() -> None:
    video(age=timedelta(days=5))
    video(age=timedelta(days=6))
    _, page = call("/api/video/library", "show=expiring&limit=1")
    key = json.loads(base64.urlsafe_b64decode(page["next_cursor"] + "=" * (-len(page["next_cursor"]) % 4)))
    key["created_at"] = {"S": "not a time"}
    forged = base64.urlsafe_b64encode(json.dumps(key, separators=(",", ":")).encode()).decode().rstrip("=")

    status, body = call("/api/video/library", f"show=expiring&cursor={forged}")

    assert status == 400 and body["error"]["code"] == "bad_request"


# --- counts and campaigns ----------------------------------------------------------------------------------------


def test_the_listing_carries_the_scopes_saved_counts() -> None:
    saved(video(campaign="42"), 1_000, thumbnail_bytes=200)
    saved(video(campaign="43"), 4_000)
    video(campaign="42")

    _, everything = call("/api/video/library", "show=unsaved")
    _, in_42 = call("/api/video/library", "campaign_id=42")
    _, in_44 = call("/api/video/library", "campaign_id=44")

    assert everything["counts"] == {"saved_videos": 2, "saved_bytes": 5_200}
    assert in_42["counts"] == {"saved_videos": 1, "saved_bytes": 1_200}
    assert in_44["counts"] == {"saved_videos": 0, "saved_bytes": 0}


def test_campaigns_lists_the_callers_campaigns_with_their_counts_in_pages() -> None:
    saved(video(campaign="42"), 1_000)
    saved(video(campaign="42"), 2_000, thumbnail_bytes=100)
    video(campaign="43")
    latest = video(campaign="7", age=timedelta(seconds=1))
    video(campaign="99", user="bob")

    status, first = call("/api/video/campaigns", "limit=2")
    _, second = call("/api/video/campaigns", f"limit=2&cursor={first['next_cursor']}")

    assert status == 200
    listed = first["items"] + second["items"]
    assert second["next_cursor"] is None
    assert [c["campaign_id"] for c in listed] == ["42", "43", "7"]  # in campaign id order
    assert [(c["saved_videos"], c["saved_bytes"]) for c in listed] == [(2, 3_100), (0, 0), (0, 0)]
    assert datetime.fromisoformat(listed[2]["last_video_at"]) == latest.created_at


@pytest.mark.parametrize("cursor", ["bobs", "%%%", "eyJmb28iOiAxfQ"])
def test_a_campaigns_cursor_not_issued_to_the_caller_is_a_400(cursor: str) -> None:
    video(campaign="1", user="bob")
    video(campaign="2", user="bob")
    if cursor == "bobs":
        _, bobs = call("/api/video/campaigns", "limit=1", user="bob")
        cursor = bobs["next_cursor"]

    status, body = call("/api/video/campaigns", f"cursor={cursor}")

    assert status == 400 and body["error"]["code"] == "bad_request"


def test_a_largest_first_cursor_with_an_impossible_size_is_a_400() -> None:
    for size in (1_000, 2_000):
        saved(video(), size)
    _, page = call("/api/video/library", "sort=largest&limit=1")
    key = json.loads(base64.urlsafe_b64decode(page["next_cursor"] + "=" * (-len(page["next_cursor"]) % 4)))
    assert set(key) == {"user_id", "saved_size_bytes", "video_id"}
    key["saved_size_bytes"] = {"N": "1e200"}
    forged = base64.urlsafe_b64encode(json.dumps(key, separators=(",", ":")).encode()).decode().rstrip("=")

    status, body = call("/api/video/library", f"sort=largest&cursor={forged}")

    assert status == 400 and body["error"]["code"] == "bad_request"


def test_storage_usage_is_the_counters_of_the_saved_videos() -> None:
    saved(video(campaign="42"), 3_000, thumbnail_bytes=120)
    saved(video(campaign="43"), 500)
    failed_save(video(campaign="42"))

    _, everything = call("/api/video/storage-usage")
    _, in_42 = call("/api/video/storage-usage", "campaign_id=42")

    assert (everything["saved_videos"], everything["total_bytes"]) == (2, 3_620)
    assert (in_42["saved_videos"], in_42["total_bytes"]) == (1, 3_120)
    record = db.get_video(every_page("show=failed")[0][0], consistent=True)
    assert record is not None and record.save_status is SaveState.FAILED
