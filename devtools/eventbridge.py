"""Build the events an EventBridge schedule hands to Lambda ("Scheduled Event" from source ``aws.events``).

Used by the sample events in ``events/``, by the tests and by the benchmark, so that all three send the
purge handler the shape AWS does:
https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-run-lambda-schedule.html
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

ACCOUNT_ID = "123456789012"
REGION = "us-east-1"
# The rule osls creates for the purge function's `schedule` event (CloudFormation adds the suffix).
PURGE_RULE_NAME = "video-library-dev-PurgeEventsRuleSchedule1-1X2Y3Z4A5B6C7"


def scheduled_event(
    when: datetime,
    *,
    detail: Mapping[str, Any] | None = None,
    rule_name: str = PURGE_RULE_NAME,
    event_id: str | None = None,
) -> dict[str, Any]:
    """One scheduled event as EventBridge delivers it; ``time`` is the minute the rule was due, in UTC."""
    return {
        "version": "0",
        "id": event_id or str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": ACCOUNT_ID,
        "time": when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": REGION,
        "resources": [f"arn:aws:events:{REGION}:{ACCOUNT_ID}:rule/{rule_name}"],
        "detail": dict(detail or {}),
    }
