"""Usage counters: per user and per campaign, how many videos are saved and the bytes they keep in R2 — read in
one request, whatever the size of the library — and the campaigns a user has made videos in.

The counters live in their own table (``USAGE_TABLE``), one item per user (scope ``all``) and one per campaign
of that user (scope ``campaign#<campaign_id>``). They are never computed and never written on their own: the two
writes that change what they count — a save recorded, a saved record deleted — are each one DynamoDB transaction
carrying the record's conditional write *and* the counters' increments (``db``). Either both land or neither
does, so the counters cannot drift from the records.

What is deliberately not counted: previews. The purge deletes them in bulk, concurrently; counting them would turn
each of its deletes into a multi-item transaction on one hot counter item per user (conflicting with each other
and with the user's own saves), for a figure that changes by itself every day. A campaign's item is created when
its first video is (``register_campaign``, idempotent), so the campaign list knows every campaign used.

This module is data access for the counters: the model, the increments a change makes, and the reads.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pynamodb.attributes import NumberAttribute, UnicodeAttribute, UTCDateTimeAttribute
from pynamodb.constants import PAY_PER_REQUEST_BILLING_MODE
from pynamodb.exceptions import UpdateError
from pynamodb.expressions.condition import Or
from pynamodb.expressions.update import Action
from pynamodb.models import Model

from video_library.cursor import BadCursor, KeyType, decode_cursor, encode_cursor
from video_library.dynamodb import point_at
from video_library.settings import Settings

USER_SCOPE = "all"
CAMPAIGN_SCOPE_PREFIX = "campaign#"


def campaign_scope(campaign_id: str) -> str:
    return f"{CAMPAIGN_SCOPE_PREFIX}{campaign_id}"


class UsageRecord(Model):
    """The counters of one user (``scope`` = ``all``) or of one of their campaigns (``campaign#<id>``)."""

    class Meta:
        table_name = "video-usage"  # replaced from the settings by bind()
        region = "us-east-1"
        host: str | None = None
        billing_mode = PAY_PER_REQUEST_BILLING_MODE
        connect_timeout_seconds = 3
        read_timeout_seconds = 10
        max_retry_attempts = 5

    user_id = UnicodeAttribute(hash_key=True)
    scope = UnicodeAttribute(range_key=True)
    campaign_id = UnicodeAttribute(null=True)  # campaign scopes only
    # Saved videos (a video being deleted counts until its record is gone).
    saved_videos = NumberAttribute(null=True)
    # What the saved videos keep in R2: each video and its thumbnail.
    saved_bytes = NumberAttribute(null=True)
    last_video_at = UTCDateTimeAttribute(null=True)  # campaign scopes: when its latest video was created


def bind(settings: Settings) -> None:
    """Point the model at the configured table and endpoint (``db.bind`` calls this with the same settings)."""
    point_at(UsageRecord, settings.usage_table, settings)


@dataclass(frozen=True)
class UsageChange:
    """How one write moves the counters of the record's user and campaign."""

    saved_videos: int = 0
    saved_bytes: int = 0

    def actions(self, *, campaign_id: str | None) -> list[Action]:
        table = UsageRecord
        # ADD of 0 is a no-op that still creates the item: every counter a transaction names exists afterwards.
        actions: list[Action] = [table.saved_videos.add(self.saved_videos), table.saved_bytes.add(self.saved_bytes)]
        if campaign_id is not None:
            actions.append(table.campaign_id.set(campaign_id))
        return actions


def register_campaign(user_id: str, campaign_id: str, video_created_at: datetime) -> None:
    """Note that the user has a video in ``campaign_id``: creates the campaign's item if needed, and keeps the
    latest creation time (an older one leaves it as it is). Idempotent."""
    table = UsageRecord
    try:
        table(user_id, campaign_scope(campaign_id)).update(
            actions=[
                table.campaign_id.set(campaign_id),
                table.saved_videos.add(0),
                table.saved_bytes.add(0),
                table.last_video_at.set(video_created_at),
            ],
            condition=Or(table.last_video_at.does_not_exist(), table.last_video_at < video_created_at),
        )
    except UpdateError as exc:
        if exc.cause_response_code != "ConditionalCheckFailedException":
            raise


def counters_of(user_id: str, campaign_id: str) -> list[tuple[UsageRecord, str | None]]:
    """The two counter items a record's changes move: its user's, and its campaign's (with the campaign id)."""
    return [(UsageRecord(user_id, USER_SCOPE), None), (UsageRecord(user_id, campaign_scope(campaign_id)), campaign_id)]


@dataclass(frozen=True)
class Counts:
    saved_videos: int
    saved_bytes: int
    last_video_at: datetime | None = None
    campaign_id: str | None = None

    @classmethod
    def of(cls, record: UsageRecord | None) -> Counts:
        if record is None:
            return cls(saved_videos=0, saved_bytes=0)
        return cls(
            saved_videos=int(record.saved_videos or 0),
            saved_bytes=int(record.saved_bytes or 0),
            last_video_at=record.last_video_at,
            campaign_id=record.campaign_id,
        )


def counts(user_id: str, campaign_id: str | None = None) -> Counts:
    """The counters of a user, or of one of their campaigns: one GetItem."""
    scope = USER_SCOPE if campaign_id is None else campaign_scope(campaign_id)
    try:
        return Counts.of(UsageRecord.get(user_id, scope))
    except UsageRecord.DoesNotExist:
        return Counts.of(None)


_CAMPAIGN_CURSOR_SHAPE: dict[str, KeyType] = {"user_id": "S", "scope": "S"}


def campaigns(user_id: str, *, limit: int, cursor: str | None) -> tuple[list[Counts], str | None]:
    """A page of the campaigns a user has made videos in, in campaign id order, with their counters: a Query on the
    user's counter items (``campaign#`` scopes), never a Scan. Raises ``cursor.BadCursor`` for a cursor this
    listing did not issue."""
    start: dict[str, Any] | None = decode_cursor(cursor, _CAMPAIGN_CURSOR_SHAPE)
    if start is not None and (
        start["user_id"] != {"S": user_id} or not start["scope"]["S"].startswith(CAMPAIGN_SCOPE_PREFIX)
    ):
        raise BadCursor("the cursor belongs to another listing")
    results = UsageRecord.query(
        user_id,
        range_key_condition=UsageRecord.scope.startswith(CAMPAIGN_SCOPE_PREFIX),
        limit=limit,
        last_evaluated_key=start,
    )
    page = [Counts.of(record) for record in results]
    return page, encode_cursor(results.last_evaluated_key if len(page) == limit else None)
