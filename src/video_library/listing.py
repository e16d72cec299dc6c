"""The Query behind every list of a user's videos: which index, which key condition, which filter, and how far
one request may read.

Every list is a Query on one of the user's indexes, never a Scan:

- newest / oldest first: ``by_user`` (or ``by_user_campaign`` for one campaign), on ``created_at``;
- largest first: ``saved_by_size``, which only saved videos are in (the others have no size yet);
- "expiring soon" adds a key condition on ``created_at``: only a window of creation times can hold a preview
  whose expiry is near (see ``expiry.ExpiringWindow``), so it never reads the user's older, saved videos.

Filters (saved or not, failed, a status, a search in the prompt) are DynamoDB filter expressions on that Query.
DynamoDB applies them after reading, so a selective filter could read a whole partition to fill one page: a
request reads at most ``READ_BUDGET`` items and then hands back a cursor where it stopped. A page may therefore
hold fewer items than asked (even none) with a ``next_cursor``: the caller keeps paging until it is null.

This module is data access (PynamoDB), like ``db``; what the page asks for is decided in ``library``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from pynamodb.expressions.condition import Condition, Or
from pynamodb.indexes import GlobalSecondaryIndex

from video_library import db
from video_library.cursor import BadCursor as BadCursor
from video_library.cursor import KeyType, decode_cursor, encode_cursor
from video_library.save_state import SaveState
from video_library.status import VideoStatus

# Items one listing request may read from DynamoDB (matching or not) before it answers with a cursor.
READ_BUDGET = 1000
# Items per DynamoDB request once a filter has dropped some: fewer round trips for selective filters.
FILTERED_PAGE = 200


class Sort(StrEnum):
    NEWEST = "newest"
    OLDEST = "oldest"
    LARGEST = "largest"  # saved videos only


class Show(StrEnum):
    ALL = "all"
    SAVED = "saved"
    UNSAVED = "unsaved"
    FAILED = "failed"  # the generation failed, or the last save did
    EXPIRING = "expiring"  # a preview that may still be saved, expiring soon (or overdue)


@dataclass(frozen=True)
class ExpiringWindow:
    """Which previews "expire soon", as conditions on their times: the provider's file is estimated gone by
    ``completed_at + provider retention`` and the purge deletes the record at ``created_at + purge days``, so a
    preview expires within the window if ``completed_at <= completed_by`` or ``created_at <= created_by``.
    Only records created between ``created_from`` and ``created_to`` can do so (the key condition)."""

    created_from: datetime
    created_to: datetime
    completed_by: datetime
    created_by: datetime


@dataclass(frozen=True)
class Listing:
    user_id: str
    campaign_id: str | None = None
    show: Show = Show.ALL
    sort: Sort = Sort.NEWEST
    search: str | None = None  # case folded already
    status: VideoStatus | None = None
    saved: bool | None = None
    limit: int = 24
    cursor: str | None = None
    expiring: ExpiringWindow | None = None  # required with Show.EXPIRING


@dataclass(frozen=True)
class _IndexPlan:
    index: GlobalSecondaryIndex[db.VideoRecord]
    hash_name: str
    hash_key: str
    range_name: str
    range_type: KeyType

    @property
    def cursor_shape(self) -> dict[str, KeyType]:
        return {self.hash_name: "S", self.range_name: self.range_type, "video_id": "S"}


def _plan(listing: Listing) -> _IndexPlan:
    table = db.VideoRecord
    if listing.sort is Sort.LARGEST:
        return _IndexPlan(table.saved_by_size, "user_id", listing.user_id, "saved_size_bytes", "N")
    if listing.campaign_id is None:
        return _IndexPlan(table.by_user, "user_id", listing.user_id, "created_at", "S")
    key = db.user_campaign_key(listing.user_id, listing.campaign_id)
    return _IndexPlan(table.by_user_campaign, "user_campaign", key, "created_at", "S")


def _all_of(conditions: list[Condition]) -> Condition | None:
    combined: Condition | None = None
    for condition in conditions:
        combined = condition if combined is None else combined & condition
    return combined


def _filter(listing: Listing) -> Condition | None:
    table = db.VideoRecord
    conditions: list[Condition] = [table.deleting_at.does_not_exist()]  # a video being deleted is gone
    if listing.sort is Sort.LARGEST and listing.campaign_id is not None:
        conditions.append(table.campaign_id == listing.campaign_id)
    if listing.status is not None:
        conditions.append(table.status == listing.status.value)
    if listing.saved is not None:
        conditions.append(table.saved_to_r2 == listing.saved)
    if listing.show is Show.SAVED:
        conditions.append(table.saved_to_r2 == True)  # noqa: E712 (a PynamoDB condition, not a comparison)
    elif listing.show is Show.UNSAVED:
        conditions.append(table.saved_to_r2 == False)  # noqa: E712
    elif listing.show is Show.FAILED:
        conditions.append(Or(table.status == VideoStatus.FAILED.value, table.save_state == SaveState.FAILED.value))
    elif listing.show is Show.EXPIRING:
        window = listing.expiring
        if window is None:
            raise ValueError("an expiring-soon listing needs its window")
        conditions += [
            table.saved_to_r2 == False,  # noqa: E712
            table.status == VideoStatus.COMPLETED.value,
            table.preview_expired_at.does_not_exist(),
            Or(
                Or(table.completed_at <= window.completed_by, table.created_at <= window.created_by),
                # a record without a completion time (none was delivered): its creation stands in for it
                table.completed_at.does_not_exist() & (table.created_at <= window.completed_by),
            ),
        ]
    if listing.search:
        conditions.append(
            Or(
                table.prompt_search.contains(listing.search),
                # records stored before prompts were kept case folded: matched as written
                table.prompt_search.does_not_exist() & table.prompt.contains(listing.search),
            )
        )
    return _all_of(conditions)


def _start(listing: Listing, plan: _IndexPlan) -> dict[str, Any] | None:
    start = decode_cursor(listing.cursor, plan.cursor_shape)
    if start is not None and start[plan.hash_name] != {"S": plan.hash_key}:
        raise BadCursor("the cursor belongs to another listing")
    return start


def _range_condition(listing: Listing, start: dict[str, Any] | None) -> Condition | None:
    if listing.show is not Show.EXPIRING or listing.expiring is None:
        return None
    low, high = listing.expiring.created_from, listing.expiring.created_to
    if start is not None:
        # The window moves with the clock between two pages: a cursor from the previous page may lie just outside
        # it now, and DynamoDB refuses a start key outside the key condition. Widen the window to include it (the
        # filter still decides what is shown).
        try:
            # as PynamoDB's UTCDateTimeAttribute writes times
            position = datetime.strptime(start["created_at"]["S"], "%Y-%m-%dT%H:%M:%S.%f%z")
        except ValueError:
            raise BadCursor("the cursor is not one this API handed out") from None
        low, high = min(low, position), max(high, position)
    return db.VideoRecord.created_at.between(low, high)


def list_videos(listing: Listing) -> tuple[list[db.VideoRecord], str | None]:
    """One page of the listing and the cursor of the next one (None at the end). Raises :class:`BadCursor` for a
    cursor this listing did not issue."""
    db.bind()
    plan = _plan(listing)
    start = _start(listing, plan)
    results = plan.index.query(
        plan.hash_key,
        range_key_condition=_range_condition(listing, start),
        filter_condition=_filter(listing),
        scan_index_forward=listing.sort is Sort.OLDEST,
        last_evaluated_key=start,
        page_size=min(listing.limit, READ_BUDGET),
    )
    pages = results.page_iter
    key_names = ("video_id", plan.hash_name, plan.range_name)
    found: list[db.VideoRecord] = []
    read = 0
    while True:
        page = next(pages)
        read += int(page.get("ScannedCount", 0))
        items = page.get("Items", [])
        for position, item in enumerate(items):
            found.append(db.VideoRecord.from_raw_data(item))
            if len(found) == listing.limit:
                more = position < len(items) - 1 or pages.last_evaluated_key is not None
                return found, encode_cursor({name: item[name] for name in key_names}) if more else None
        if pages.last_evaluated_key is None:
            return found, None
        if read >= READ_BUDGET:
            return found, encode_cursor(pages.last_evaluated_key)
        pages.page_size = min(FILTERED_PAGE, READ_BUDGET - read)
