"""Per-user quotas on what costs money: each generation is paid to PiAPI, so a user may start at most
``GENERATE_QUOTA_PER_HOUR`` of them per clock hour (UTC).

One counter item per user, action and hour in the quotas table. Taking a unit is one conditional UpdateItem —
add 1 if the counter is still below the limit — and DynamoDB applies the writes to one item one after the other,
so any number of concurrent requests takes at most the limit: the one after is refused (429 with
``Retry-After``: the seconds until the next hour). A counter expires (DynamoDB TTL) a day after its hour, so the
table holds only the last day's counters.

Windows are clock hours, not a sliding hour: at most N in any clock hour, hence at most 2N in 60 minutes that
straddle one. That bounds the bill the same way at half the cost of a sliding window (one write per request, no
read and no retries under contention).

A request PiAPI refused outright (or that never reached it) gives its unit back; one whose fate is unknown (a
timeout) keeps it, since PiAPI may have started the task.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from pynamodb.attributes import NumberAttribute, TTLAttribute, UnicodeAttribute
from pynamodb.constants import PAY_PER_REQUEST_BILLING_MODE
from pynamodb.exceptions import UpdateError
from pynamodb.models import Model

from video_library.dynamodb import CONDITION_FAILED, point_at
from video_library.errors import QuotaExceeded
from video_library.observability import MetricUnit, logger, metrics
from video_library.settings import Settings, get_settings

WINDOW = timedelta(hours=1)
# Counters outlive their hour by a day: long enough to look at yesterday's, short enough to keep the table small.
KEEP_FOR = timedelta(days=1)
GENERATE = "generate"


def utcnow() -> datetime:
    return datetime.now(UTC)


class QuotaCounter(Model):
    """How many units of one action one user took in one window."""

    class Meta:
        table_name = "quotas"  # replaced from the settings by bind()
        region = "us-east-1"
        host: str | None = None
        billing_mode = PAY_PER_REQUEST_BILLING_MODE
        connect_timeout_seconds = 3
        read_timeout_seconds = 5
        max_retry_attempts = 3

    counter_id = UnicodeAttribute(hash_key=True)  # "<action>#<user>#<window start, %Y-%m-%dT%H>"
    used = NumberAttribute(default=0)
    expires_at = TTLAttribute(null=True)


_bound_to: tuple[str, str, str | None] | None = None


def bind(settings: Settings | None = None) -> type[QuotaCounter]:
    """Point the model at the configured table and endpoint (again, if the settings object changed)."""
    global _bound_to
    settings = settings or get_settings()
    where = (settings.quotas_table, settings.aws_region, settings.dynamodb_endpoint_url)
    if _bound_to != where:
        point_at(QuotaCounter, settings.quotas_table, settings)
        _bound_to = where
    return QuotaCounter


def create_table(settings: Settings | None = None, *, wait: bool = True) -> None:
    """Create the quotas table, with its TTL, if it does not exist (idempotent)."""
    table = bind(settings)
    if not table.exists():
        table.create_table(wait=wait, billing_mode=PAY_PER_REQUEST_BILLING_MODE)


def window_start(now: datetime) -> datetime:
    return now.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


@dataclass(frozen=True)
class Taken:
    """One unit taken: what to give back if the request never cost anything."""

    counter_id: str


def counter_id(action: str, user_id: str, now: datetime) -> str:
    return f"{action}#{user_id}#{window_start(now):%Y-%m-%dT%H}"


def take(action: str, user_id: str, limit: int, now: datetime) -> Taken:
    """Take one unit of ``action`` for ``user_id`` in the window of ``now``; QuotaExceeded when ``limit`` are taken."""
    table = bind()
    key = counter_id(action, user_id, now)
    ends = window_start(now) + WINDOW
    try:
        table(key).update(
            actions=[table.used.add(1), table.expires_at.set(ends + KEEP_FOR)],
            condition=table.used.does_not_exist() | (table.used < limit),
        )
    except UpdateError as exc:
        if exc.cause_response_code != CONDITION_FAILED:
            raise
        retry_after_s = max(1, math.ceil((ends - now).total_seconds()))
        metrics.add_metric(name="QuotaRefusals", unit=MetricUnit.Count, value=1)
        logger.warning("quota exceeded", extra={"action": action, "limit": limit, "retry_after_s": retry_after_s})
        raise QuotaExceeded(
            f"you may {action} at most {limit} times per hour; try again in {retry_after_s} s",
            limit=limit,
            retry_after_s=retry_after_s,
        ) from None
    return Taken(key)


def give_back(taken: Taken) -> None:
    """Return a unit whose request cost nothing (best effort: a lost give-back only costs the user one unit)."""
    table = bind()
    try:
        table(taken.counter_id).update(actions=[table.used.add(-1)], condition=table.used > 0)
    except UpdateError:
        logger.warning("a quota unit could not be given back", extra={"counter_id": taken.counter_id})
