"""The save queue (SQS): the API asks for transfers, the worker takes them.

A message only says "video X has a save to make": the record is the truth (its ``save_state``, lease and
attempts), so a duplicate, late or lost message does no harm — the worker does nothing for a video that is not
waiting, and the sweep sends a message again for a save that has waited too long.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from functools import lru_cache
from typing import TYPE_CHECKING, Any

import boto3
from botocore.config import Config
from pydantic import BaseModel, ConfigDict, Field

from video_library.errors import ServiceNotConfigured
from video_library.settings import Settings, get_settings

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient

SEND_BATCH = 10  # SendMessageBatch's limit
# SQS allows a message to stay invisible for at most 12 hours.
MAX_VISIBILITY_S = 12 * 3600


class SaveMessage(BaseModel):
    """The body of a save-queue message."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    video_id: str = Field(min_length=1, max_length=128)
    requested_at: datetime | None = None


@lru_cache(maxsize=1)
def _client_for(settings: Settings) -> SQSClient:
    return boto3.client(
        "sqs",
        region_name=settings.aws_region,
        endpoint_url=settings.sqs_endpoint_url,
        config=Config(connect_timeout=3, read_timeout=5, retries={"mode": "standard", "max_attempts": 3}),
    )


def _queue() -> tuple[SQSClient, str]:
    settings = get_settings()
    if not settings.save_queue_url:
        raise ServiceNotConfigured("the save queue is not configured (SAVE_QUEUE_URL)")
    return _client_for(settings), settings.save_queue_url


def send(messages: Sequence[SaveMessage]) -> list[str]:
    """Queue one message per video; returns the ids whose message SQS did not take (the caller undoes those)."""
    client, url = _queue()
    refused: list[str] = []
    for start in range(0, len(messages), SEND_BATCH):
        batch = messages[start : start + SEND_BATCH]
        entries: list[Any] = [
            {"Id": str(index), "MessageBody": message.model_dump_json()} for index, message in enumerate(batch)
        ]
        try:
            answer = client.send_message_batch(QueueUrl=url, Entries=entries)
        except Exception:
            refused += [message.video_id for message in batch]
            continue
        refused += [batch[int(failure["Id"])].video_id for failure in answer.get("Failed", [])]
    return refused


def postpone(receipt_handle: str, seconds: int) -> None:
    """Make a message that failed come back after ``seconds`` (the retry's backoff) instead of the queue's
    whole visibility timeout."""
    client, url = _queue()
    client.change_message_visibility(
        QueueUrl=url, ReceiptHandle=receipt_handle, VisibilityTimeout=max(0, min(seconds, MAX_VISIBILITY_S))
    )
