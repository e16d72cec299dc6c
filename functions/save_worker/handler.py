"""SQS save queue → Save to Library's worker: copies a provider's file into R2 (see video_library.transfer).

Each record of the batch is one save attempt; failed ones are reported back (partial batch failures) so only
they come back, after their retry's backoff.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.typing import LambdaContext

from video_library.observability import logger, metrics, trace_downloads, tracer
from video_library.worker import process_save_record

trace_downloads()
# A batch whose every record is retried is not the function's failure: the messages come back by themselves.
processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)


@logger.inject_lambda_context
@metrics.log_metrics
@tracer.capture_lambda_handler(capture_response=False)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return dict(
        process_partial_response(event=event, record_handler=process_save_record, processor=processor, context=context)
    )
