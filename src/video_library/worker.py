"""The save worker's side of the queue: one SQS record → one save attempt → keep or let go of the message.

The Lambda event source mapping deletes the messages of a batch that succeeded and leaves the ones reported as
failed (``ReportBatchItemFailures``, through Powertools' batch processor). A failed message comes back when its
visibility timeout ends, so the worker first sets that timeout to the retry's backoff; after
``SAVE_MAX_ATTEMPTS`` receives the queue's redrive policy moves it to the dead-letter queue instead (the record
already says failed, with why).
"""

from __future__ import annotations

from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import ValidationError

from video_library import save_queue, transfer
from video_library.errors import VideoLibraryError
from video_library.observability import logger
from video_library.save_queue import SaveMessage
from video_library.transfer import Outcome, attempt_save


class MessageKept(Exception):
    """The message must be delivered again (a retry after its backoff, or a last failure on its way to the DLQ)."""


def _let_back(record: SQSRecord, seconds: int) -> None:
    try:
        save_queue.postpone(record.receipt_handle, seconds)
    except Exception:
        # The queue's own visibility timeout brings it back all the same, only later.
        logger.warning("could not set the message's retry delay", extra={"message_id": record.message_id})


def process_save_record(record: SQSRecord, lambda_context: LambdaContext) -> str:
    """Run one save attempt for one message; raises :class:`MessageKept` when the message must come back."""
    try:
        message = SaveMessage.model_validate_json(record.body)
    except ValidationError:
        # Not a message of ours: it goes to the dead-letter queue (kept for a person to look at), quickly.
        logger.error("malformed save message", extra={"message_id": record.message_id})
        _let_back(record, 0)
        raise MessageKept("malformed save message") from None
    receive_count = int(record.attributes.approximate_receive_count or 1)
    try:
        result = attempt_save(
            message.video_id, receive_count=receive_count, remaining_ms=lambda_context.get_remaining_time_in_millis
        )
    except VideoLibraryError as exc:
        # DynamoDB did not answer the claim in time (or refused it for a reason of its own): nothing started.
        logger.warning("save attempt could not start", extra={"video_id": message.video_id, "reason": exc.code})
        _let_back(record, transfer.backoff_s(receive_count))
        raise MessageKept(f"could not start: {exc.code}") from exc
    logger.info(
        "save attempt finished",
        extra={
            "video_id": result.video_id,
            "outcome": result.outcome.value,
            "receive_count": receive_count,
            "retry_after_s": result.retry_after_s if result.outcome is Outcome.RETRY else None,
            "error_code": result.error_code,
        },
    )
    if result.keeps_message:
        _let_back(record, result.retry_after_s if result.outcome is Outcome.RETRY else 0)
        raise MessageKept(f"{result.outcome.value}: {result.message or result.error_code}")
    return result.outcome.value
